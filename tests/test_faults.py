"""Fault drills with real processes (DESIGN §7): a world worker SIGKILLed mid-episode, the
broker SIGKILLed and restarted mid-episode, an agent SIGKILLed while holding a seat.

Every process is started the way a user starts it (`python -m bin ...` through
``bin.stack.Stack``) and torn down by the fixtures; heartbeats are short (0.2 s x 3) and
every wait is bounded. Latencies are asserted with bounds derived from the configured
values (a 5x error fails) and printed for the closing note."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import BaseAgent, ParallelBaseAgent
from agents.policies import random_attacker
from agents.status import query_status
from bin.stack import Stack
from protocol import Action, AgentRole, ErrorCode
from protocol.jsonl import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "world" / "tasks"
HEARTBEAT = 0.2


def write_task(directory: Path, name: str, **arena: Any) -> str:
    """scenario1_small with one attacker (max_steps 50), renamed, with ``arena`` settings."""
    document = yaml.safe_load((TASKS / "scenario1_small_attacker.yaml").read_text())
    document.setdefault("arena", {}).update(name=name, **arena)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for ipc paths (at most 107 characters on Linux)."""
    with tempfile.TemporaryDirectory(prefix="af-", dir="/tmp") as name:
        yield Path(name)


def running_stack(**options: Any) -> Stack:
    stack = Stack(heartbeat=HEARTBEAT, **options)
    stack.start()
    try:
        stack.wait_registered()
    except BaseException:
        stack.stop()
        raise
    return stack


def play_named_games(frontend: str, games: list[str], steps: int, *, kill: Any = None, after: int = 3,
                     round_ends: list[float] | None = None) -> tuple[list[list[Any]], list[str | None], list[Any]]:
    """Every env in its own named game, seeded random actions, ``steps`` lock-step rounds;
    ``kill()`` runs after ``after`` rounds. Returns each env's (action, reward, end)
    history, the world each env sat on, and the errors seen per env; ``round_ends`` gets
    the time each round's replies were all in."""
    envs = ParallelBaseAgent(frontend, AgentRole.Attacker, len(games), game=games, timeout=30,
                             retry_interval=0.5)
    try:
        observations = envs.register()
        assert all(observation is not None for observation in observations), envs.last_errors
        worlds = list(envs.worlds)
        rngs = [random.Random(index) for index in range(len(games))]
        history: list[list[Any]] = [[] for _ in games]
        errors: list[Any] = [None] * len(games)
        for round_number in range(steps):
            if round_number == after and kill is not None:
                kill()
            if envs.all_done:
                break
            actions = [None if done else random_attacker(observations[i], rngs[i])
                       for i, done in enumerate(envs.done_mask)]
            results = envs.make_step(actions)
            if round_ends is not None:
                round_ends.append(time.monotonic())
            for index, result in enumerate(results):
                if result is not None:
                    observations[index] = result
                    history[index].append((str(actions[index]), result.reward, result.end))
                elif actions[index] is not None and errors[index] is None:
                    errors[index] = envs.last_errors[index]
        return history, worlds, errors
    finally:
        envs.terminate_connection()


def test_a_world_killed_mid_episode_loses_only_its_games(tmp_path: Path) -> None:
    task = write_task(tmp_path, "chaos")
    games = [f"g{index}" for index in range(6)]
    calm = running_stack(tasks=[task], worlds=2)
    try:
        expected, _, calm_errors = play_named_games(calm.endpoints["frontend"], games, 12)
    finally:
        calm.stop()
    assert calm_errors == [None] * 6

    stack = running_stack(tasks=[task], worlds=2)
    try:
        frontend = stack.endpoints["frontend"]
        names = [world["world"] for world in stack.endpoints["worlds"]]
        idle = BaseAgent(frontend, AgentRole.Attacker, game="idle", timeout=30, retry_interval=0.5)
        welcome = idle.register()
        assert welcome is not None
        victim = idle.world
        process = stack.processes[1 + names.index(victim)]
        killed_at: list[float] = []

        def kill() -> None:
            process.kill()
            process.wait()
            killed_at.append(time.monotonic())

        round_ends: list[float] = []
        history, worlds, errors = play_named_games(frontend, games, 12, kill=kill, round_ends=round_ends)
        lost = [index for index, world in enumerate(worlds) if world == victim]
        kept = [index for index, world in enumerate(worlds) if world != victim]
        assert lost and kept, f"the games spread over both worlds: {worlds}"
        # The round after the kill ends with the GAME_LOST replies (DESIGN §7: liveness 3 x
        # 0.2 s after the world's last message, which came shortly before the kill).
        failover = round_ends[3] - killed_at[0]
        print(f"\nin-flight requests answered GAME_LOST {failover:.2f} s after the kill (heartbeat {HEARTBEAT} s x 3)")
        assert 0.3 <= failover < HEARTBEAT * 3 + 1.2, f"GAME_LOST {failover:.2f} s after the kill, not ~0.6 s"
        for index in lost:  # in flight when the broker declared the world dead
            assert errors[index] is not None and errors[index].code is ErrorCode.GAME_LOST, errors[index]
            assert len(history[index]) == 3
        for index in kept:
            assert errors[index] is None
            assert history[index] == expected[index], f"game {games[index]} played differently after the fault"
        assert idle.make_step(random_attacker(welcome, random.Random(0))) is None, "idle through the fault"
        assert idle.last_error is not None and idle.last_error.code is ErrorCode.GAME_LOST
        newcomer = BaseAgent(frontend, AgentRole.Attacker, timeout=30)
        assert newcomer.register() is not None and newcomer.world != victim, "new games go to the survivor"
        newcomer.terminate_connection()
        idle.terminate_connection()
        assert all(world["world"] != victim for world in query_status(frontend)["worlds"])
    finally:
        stack.stop()


def test_a_broker_restarted_mid_episode_loses_no_step_and_runs_none_twice(tmp_path: Path, short_dir: Path) -> None:
    trajectories = tmp_path / "trajectories"
    task = write_task(tmp_path, "restart", trajectory_dir=str(trajectories))
    document = yaml.safe_load(Path(task).read_text())
    document["env"]["save_trajectories"] = True
    Path(task).write_text(yaml.safe_dump(document))
    addresses = {name: f"ipc://{short_dir}/{name[:5]}" for name in ("frontend", "backend", "trace", "trace_input")}
    stack = running_stack(tasks=[task], worlds=1, **addresses)
    agents: list[BaseAgent] = []
    world_pid = stack.endpoints["pids"][1]
    try:
        frontend = stack.endpoints["frontend"]
        agents = [BaseAgent(frontend, AgentRole.Attacker, name=f"solo{index}", timeout=60, retry_interval=0.3)
                  for index in range(3)]
        observations = [agent.register() for agent in agents]
        assert all(observation is not None for observation in observations)
        rngs = [random.Random(index) for index in range(3)]
        sent: list[list[Action]] = [[] for _ in agents]

        def step(index: int) -> None:
            observation = observations[index]
            assert observation is not None
            action = random_attacker(observation, rngs[index])
            sent[index].append(action)
            observations[index] = agents[index].make_step(action)

        for _ in range(5):
            for index in range(3):
                step(index)
        # A step in flight when the broker dies: the world is stopped, so the broker has
        # forwarded the request and nobody has answered it; the new broker never saw it.
        os.kill(world_pid, signal.SIGSTOP)
        try:
            in_flight = threading.Thread(target=step, args=(0,))
            started = time.monotonic()
            in_flight.start()
            wait_until(lambda: query_status(frontend)["worlds"][0]["inflight"] == 1, "the step forwarded")
            stack.restart_broker()
        finally:
            os.kill(world_pid, signal.SIGCONT)
        restarted = time.monotonic()
        in_flight.join(timeout=60)
        after_restart = time.monotonic() - restarted
        print(f"\nthe step in flight across the broker restart took {time.monotonic() - started:.2f} s, "
              f"{after_restart:.2f} s after the new broker was up (retry interval 0.3 s)")
        # README "The broker restarts": the client's resend (every 0.3 s) reaches the new
        # broker, the world re-registers at once and answers it: within two retry intervals.
        assert after_restart < 2 * 0.3 + 0.5, f"the step took {after_restart:.2f} s after the restart"
        assert observations[0] is not None, f"the episode continues: {agents[0].last_error}"
        for _ in range(60):  # max_steps 50: every episode ends within it
            for index in range(3):
                observation = observations[index]
                assert observation is not None, f"the episode continues: {agents[index].last_error}"
                if not observation.end:
                    step(index)
        assert all(observation is not None and observation.end for observation in observations)
        for agent in agents:  # a reset writes each finished episode's trajectory
            assert agent.request_game_reset() is not None, agent.last_error
        for index in range(3):
            [path] = trajectories.glob(f"*_solo{index}_*.jsonl")
            [record] = list(read_jsonl(path))
            ran = [Action.from_dict(action) for action in record["trajectory"]["actions"]]
            assert ran == sent[index], "each step ran exactly once, in order"
    finally:
        for agent in agents:
            agent.terminate_connection()
        stack.stop()


def wait_until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)  # another process's state: nothing to wait on


AGENT_THAT_HANGS = """
import sys, time
from agents import BaseAgent
agent = BaseAgent(sys.argv[1], "Attacker", task="leased", game="pair", timeout=30)
print("joined" if agent.register() is not None else f"failed {agent.last_error}", flush=True)
time.sleep(120)
"""


def test_the_lease_frees_the_seat_of_a_killed_agent_and_releases_the_other_players_hold(tmp_path: Path) -> None:
    document = yaml.safe_load((TASKS / "scenario1_small_attacker.yaml").read_text())
    document["coordinator"]["agents"]["Attacker"]["max_steps"] = 3
    document["arena"] = {"name": "leased", "seats": {"Attacker": 2}, "start": {"Attacker": 2}, "seat_lease": 1.0,
                         "hold_timeout": 30}
    task = tmp_path / "leased.yaml"
    task.write_text(yaml.safe_dump(document))
    stack = running_stack(tasks=[str(task)], worlds=1)
    frontend = stack.endpoints["frontend"]
    vanishing = subprocess.Popen([sys.executable, "-c", AGENT_THAT_HANGS, frontend], cwd=ROOT,
                                 stdout=subprocess.PIPE, text=True)
    survivor = BaseAgent(frontend, AgentRole.Attacker, task="leased", game="pair", timeout=30)
    try:
        observation = survivor.register()                             # held until both are in
        assert observation is not None, survivor.last_error
        assert vanishing.stdout is not None and vanishing.stdout.readline().strip() == "joined"
        vanishing.kill()
        vanishing.wait()
        rng = random.Random(1)
        started = time.monotonic()
        while observation is not None and not observation.end:       # 3 steps; the last one is held
            observation = survivor.make_step(random_attacker(observation, rng))   # until the other ends
        print(f"\nthe held episode end was released {time.monotonic() - started:.2f} s after the kill "
              f"(lease 1 s, hold timeout 30 s)")
        assert observation is not None and observation.end, survivor.last_error
        released = time.monotonic() - started
        # The vanished seat's lease (1 s) runs from the answer to its join, just before the
        # kill (PROTOCOL.md §7 "Leases"): not the 30 s hold timeout, and not 5x the lease.
        assert 0.7 <= released < 2.5, f"released {released:.2f} s after the kill, not ~1 s (the lease)"
        [game] = query_status(frontend)["games"]
        assert game["seats"] == {"Attacker": 1}, "the vanished agent's seat is free"
        newcomer = BaseAgent(frontend, AgentRole.Attacker, task="leased", game="pair", timeout=30)
        assert newcomer.register() is not None, "and another agent can take it"
        newcomer.terminate_connection()
    finally:
        survivor.terminate_connection()
        if vanishing.poll() is None:
            vanishing.kill()
        vanishing.wait()
        stack.stop()


def test_a_monitor_and_an_agent_that_never_read_slow_nobody_else(tmp_path: Path) -> None:
    import zmq

    from protocol import PROTOCOL_FRAME, Command, action_to_compact, pack, seq_bytes

    task = write_task(tmp_path, "slow")
    stack = running_stack(tasks=[task], worlds=1)
    context = zmq.Context()
    try:
        frontend = stack.endpoints["frontend"]
        deaf_monitor = context.socket(zmq.SUB)
        deaf_monitor.setsockopt(zmq.RCVHWM, 10)
        deaf_monitor.setsockopt(zmq.SUBSCRIBE, b"")
        deaf_monitor.connect(stack.endpoints["trace"])
        greedy = BaseAgent(frontend, AgentRole.Attacker, game="greedy", timeout=30)
        welcome = greedy.register()
        assert welcome is not None and greedy.socket is not None and greedy.seat is not None
        action = pack(action_to_compact(random_attacker(welcome, random.Random(0))))
        for seq in range(2, 3002):  # 3,000 steps, none of whose replies it ever reads
            greedy.socket.send_multipart([PROTOCOL_FRAME, Command.STEP.frame, greedy.seat.encode(), seq_bytes(seq),
                                          action])
        polite = BaseAgent(frontend, AgentRole.Attacker, game="polite", timeout=30)
        observation = polite.register()
        rng = random.Random(2)
        steps = 0
        while observation is not None and not observation.end:
            observation = polite.make_step(random_attacker(observation, rng))
            steps += 1
        assert observation is not None and observation.end, polite.last_error
        assert steps <= 50 and all(process.poll() is None for process in stack.processes)
        polite.terminate_connection()
        deaf_monitor.close(linger=0)
        greedy.socket.close(linger=0)
    finally:
        context.destroy(linger=0)
        stack.stop()
