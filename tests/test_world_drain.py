"""What SIGTERM does to a world (`arena world --help` says it; DESIGN §7 "SIGTERM drains a
world"), with a real `arena broker`, a real `arena world` and real agents.

A step in flight when the signal comes is answered with its result (the world was
SIGSTOPped with the request on its way, so it is in flight for sure); a join held for a
second player gets GAME_LOST at once; the running game is not finished: its idle agent
gets GAME_LOST on its next request; the world tells the broker (which lists it no more at
once, long before its heartbeats would expire) and exits 0."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from agents import BaseAgent
from agents.policies import random_attacker
from agents.status import query_status
from bin.stack import read_endpoints
from protocol import AgentRole, ErrorCode
from world import load_task

from .arena_processes import LOOPBACK_ANY, ROOT, SOLO, WAIT, Arena, wait_until

#: Long heartbeats: a world that leaves without saying so would stay listed for 3 x 5 s.
HEARTBEAT = 5.0


def pair_task(directory: Path) -> str:
    """scenario1_small with two attacker seats: a join waits (held) for the second player."""
    document = yaml.safe_load((ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml").read_text())
    document["arena"] = {"name": "pair", "seats": {"Attacker": 2}, "start": {"Attacker": 2}, "hold_timeout": 60}
    path = directory / "pair.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_world_help_says_what_sigterm_does() -> None:
    done = Arena("world", "--help")
    assert done.finish() == 0
    text = " ".join(done.stdout.split())
    for promise in ("SIGTERM", "new joins are refused", "requests that reached it are answered",
                    "held requests", "get GAME_LOST", "tells the broker", "Running games are not finished",
                    "GAME_LOST on their next request", "exits 0"):
        assert promise in text, promise


def test_sigterm_answers_the_step_in_flight_loses_held_and_running_games_and_tells_the_broker(
        tmp_path: Path) -> None:
    solo = load_task(SOLO).name
    broker = Arena("broker", *LOOPBACK_ANY, "--heartbeat", str(HEARTBEAT), "--endpoints-file",
                   str(tmp_path / "broker.json"))
    world: Arena | None = None
    agents: list[BaseAgent] = []
    try:
        endpoints = read_endpoints(tmp_path / "broker.json", WAIT, broker.process)
        frontend = endpoints["frontend"]
        world = Arena("world", "--backend", endpoints["backend"], "--trace-input", endpoints["trace_input"],
                      "--task", SOLO, "--task", pair_task(tmp_path), "--heartbeat", str(HEARTBEAT))
        wait_until(lambda: len(query_status(frontend).get("worlds", [])) == 1, "the world registered")

        def agent(task: str, game: str) -> BaseAgent:
            agents.append(BaseAgent(frontend, AgentRole.Attacker, task=task, game=game, timeout=WAIT))
            return agents[-1]

        rng = random.Random(3)
        idle, busy, waiting = agent(solo, "running"), agent(solo, "busy"), agent("pair", "pair")
        first = idle.register()
        assert first is not None and idle.make_step(random_attacker(first, rng)) is not None, idle.last_error
        ready = busy.register()
        assert ready is not None, busy.last_error
        answers: dict[str, Any] = {}
        threads = [threading.Thread(target=lambda: answers.update(held=waiting.register()), daemon=True)]
        threads[0].start()

        def inflight() -> int:
            return int(query_status(frontend)["worlds"][0]["inflight"])

        wait_until(lambda: inflight() == 1, "the join held at the world")
        os.kill(world.process.pid, signal.SIGSTOP)
        try:
            threads.append(threading.Thread(target=lambda: answers.update(step=busy.make_step(
                random_attacker(ready, rng))), daemon=True))
            threads[1].start()
            wait_until(lambda: inflight() == 2, "the step forwarded to the stopped world")
            world.process.send_signal(signal.SIGTERM)
        finally:
            os.kill(world.process.pid, signal.SIGCONT)
        signalled = time.monotonic()
        code = world.finish(timeout=10)
        exited = time.monotonic() - signalled
        for thread in threads:
            thread.join(WAIT)
        left = wait_until(lambda: not query_status(frontend).get("worlds"), "the broker lists the world no more",
                          timeout=3)
        print(f"\narena world SIGTERM: exited {exited:.2f} s after the signal; the broker listed it no more "
              f"{left:.2f} s later (its heartbeats would have expired after {3 * HEARTBEAT:g} s)")
        assert code == 0, world.text
        assert answers["step"] is not None, f"the step in flight was played: {busy.last_error}"
        assert answers["held"] is None and waiting.last_error is not None
        assert waiting.last_error.code is ErrorCode.GAME_LOST, waiting.last_error
        assert idle.make_step(random_attacker(first, rng)) is None
        assert idle.last_error is not None and idle.last_error.code is ErrorCode.GAME_LOST, idle.last_error
    finally:
        for client in agents:
            client.terminate_connection()
        for process in (world, broker):
            if process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
                process.finish()
