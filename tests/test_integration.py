"""The distributed server end to end: real `arena broker` / `arena world` processes on
loopback `*` ports, real clients, real trace. Every process is torn down by the
fixtures; every wait is bounded."""

from __future__ import annotations

import http.server
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import BaseAgent, ParallelBaseAgent
from agents.monitor import TraceFigures, TraceMonitor
from agents.play import play_episodes
from agents.policies import POLICIES, random_attacker
from agents.status import query_status
from bin.stack import Stack, read_endpoints
from protocol import AgentRole, ErrorCode

ROOT = Path(__file__).resolve().parents[1]
SOLO = str(ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml")
ARENA = [sys.executable, "-m", "bin"]


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A broker and worlds; parametrize indirectly with {"worlds": n, "tasks": [...]}."""
    options = {"worlds": 2, "tasks": [], "heartbeat": 0.2, **getattr(request, "param", {})}
    running = Stack(**options)
    running.start()
    try:
        running.wait_registered()
        yield running
    finally:
        codes = running.stop()
        assert all(code is not None for code in codes)


def stop_process(process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    """SIGTERM, a bounded wait, then SIGKILL."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_arena(*arguments: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ARENA, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.mark.parametrize("stack", [{"tasks": [SOLO]}], indirect=True)
def test_fifty_single_agent_games_at_once_across_two_worlds(stack: Stack) -> None:
    agent = ParallelBaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, 50, timeout=60)
    try:
        observations = agent.register()
        assert all(observation is not None for observation in observations)
        status = query_status(stack.endpoints["frontend"])
        assert status["seats"] == 50 and len(status["games"]) == 50
        assert all(world["games"] > 0 for world in status["worlds"]), "both worlds host games"
        rngs = [random.Random(index) for index in range(50)]
        finished = [False] * 50
        for _ in range(60):  # max_steps is 50: every episode ends within it
            if agent.all_done:
                break
            actions = [None if done else random_attacker(observations[i], rngs[i])
                       for i, done in enumerate(agent.done_mask)]
            for index, result in enumerate(agent.make_step(actions)):
                if result is not None:
                    observations[index] = result
                    finished[index] = finished[index] or result.end
        assert all(finished), "every game finished its episode"
    finally:
        agent.terminate_connection()


def test_attacker_and_defender_in_separate_processes_play_one_named_game(stack: Stack) -> None:
    """The defender (a benign policy in the Defender seat: it never blocks, so no false
    positives) runs as `arena play`; the attacker here. Final rewards: reference §3.4."""
    defender = subprocess.Popen([*ARENA, "play", "--broker", stack.endpoints["frontend"], "--agent", "benign",
                                 "--role", "Defender", "--game", "duel", "--episodes", "1", "--json"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the defender's seat first: both start together
            games = query_status(stack.endpoints["frontend"]).get("games", [])
            if any(g["game"] == "duel" and g["seats"].get("Defender") for g in games):
                break
            time.sleep(0.05)
        attacker = BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, game="duel", timeout=60)
        try:
            (outcome,) = list(play_episodes(attacker, POLICIES["kill-chain"], 1, random.Random(3)))
        finally:
            attacker.terminate_connection()
        out, err = defender.communicate(timeout=60)
    finally:
        if defender.poll() is None:
            defender.kill()
            defender.wait()
    assert defender.returncode == 0, err
    summary = json.loads(out)
    assert summary["episodes"] == 1
    final = -10 if outcome.won else 100
    assert summary["mean_return"] == -(summary["steps"] - 1) + final
    assert outcome.episode_return == -outcome.steps + (100 if outcome.won else -10)


@pytest.mark.parametrize("stack", [{"tasks": [SOLO]}], indirect=True)
def test_parallel_agent_skips_done_envs_and_batching_changes_nothing(stack: Stack) -> None:
    """Reference §10.2: done environments are not stepped; done_mask / all_done."""
    runs = []
    for batched in (True, False):
        agent = ParallelBaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, 32, batched=batched, timeout=60)
        try:
            observations = agent.register()
            assert agent.done_mask == [False] * 32 and not agent.all_done
            rngs = [random.Random(index) for index in range(32)]
            history: list[list[Any]] = [[] for _ in range(32)]
            for _ in range(60):
                if agent.all_done:
                    break
                mask = agent.done_mask
                actions = [None if done else random_attacker(observations[i], rngs[i])
                           for i, done in enumerate(mask)]
                results = agent.make_step(actions)
                for index, (done, result) in enumerate(zip(mask, results, strict=True)):
                    if done:
                        assert result is None, "a done environment is not stepped"
                        continue
                    observations[index] = result
                    history[index].append((result.state, result.reward, result.end))
            assert agent.all_done and agent.done_mask == [True] * 32
            runs.append(history)
        finally:
            agent.terminate_connection()
    for batched_run, unbatched_run in zip(*runs, strict=True):
        assert batched_run == unbatched_run, "states compared by value (sets), rewards, ends"


@pytest.mark.parametrize("stack", [{"tasks": [SOLO], "worlds": 1}], indirect=True)
def test_monitor_subscribed_first_sees_every_step_and_episode_in_order(stack: Stack) -> None:
    with TraceMonitor(stack.endpoints["trace"]) as monitor:
        assert monitor.wait_ready(timeout=30) is not None, "handshake: a world's alive event"
        done = run_arena("play", "--broker", stack.endpoints["frontend"], "--agent", "random", "--episodes", "20",
                         "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        figures = TraceFigures()
        episodes: list[dict[str, Any]] = []
        steps = 0
        deadline = time.monotonic() + 30
        while len(episodes) < 20 and time.monotonic() < deadline:
            for _, message in monitor.receive(0.5):
                figures.add_message(message)
                for event in message["events"]:
                    steps += event["kind"] == "step"
                    if event["kind"] == "episode":
                        episodes.append(event)
    assert len(episodes) == 20 and figures.gaps == 0
    assert [event["episode"] for event in episodes] == sorted(event["episode"] for event in episodes)
    assert steps == summary["steps"]
    assert sum(event["return"] for event in episodes) == pytest.approx(summary["mean_return"] * 20)


def test_unknown_task_and_disallowed_role_are_clear_errors(stack: Stack) -> None:
    lost = BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, task="chess", timeout=30)
    try:
        assert lost.register() is None
        assert lost.last_error.code is ErrorCode.UNKNOWN_TASK and "default" in str(lost.last_error)
    finally:
        lost.terminate_connection()
    benign = BaseAgent(stack.endpoints["frontend"], AgentRole.Benign, timeout=30)
    try:
        assert benign.register() is None
        assert benign.last_error.code is ErrorCode.ROLE_NOT_ALLOWED
    finally:
        benign.terminate_connection()


@pytest.fixture
def task_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "remote.yaml").write_text(Path(SOLO).read_text() + "arena:\n  name: remote\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.yaml"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_a_task_served_from_a_local_http_url(task_url: str) -> None:
    with Stack(tasks=[task_url], worlds=1, heartbeat=0.2) as running:
        running.wait_registered()
        assert query_status(running.endpoints["frontend"])["tasks"] == ["remote"]
        agent = BaseAgent(running.endpoints["frontend"], AgentRole.Attacker, task="remote", timeout=30)
        try:
            assert agent.register() is not None
        finally:
            agent.terminate_connection()


def test_arena_up_play_and_status_from_other_shells(tmp_path: Path) -> None:
    endpoints_file = tmp_path / "up.json"
    up = subprocess.Popen([*ARENA, "up", "--worlds", "2", "--endpoints-file", str(endpoints_file),
                           "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                           "--trace", "tcp://127.0.0.1:*", "--trace-input", "tcp://127.0.0.1:*"],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoints = read_endpoints(endpoints_file, 60, up)
        deadline = time.monotonic() + 30
        while len(query_status(endpoints["frontend"]).get("worlds", [])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        played = run_arena("play", "--broker", endpoints["frontend"], "--agent", "random", "--episodes", "20",
                           "--json")
        assert played.returncode == 0, played.stderr
        assert json.loads(played.stdout)["episodes"] == 20
        parallel = run_arena("play", "--broker", endpoints["frontend"], "--agent", "kill-chain", "--episodes", "8",
                             "--envs", "4", "--json")
        assert parallel.returncode == 0, parallel.stderr
        assert json.loads(parallel.stdout)["episodes"] == 8
        holder = BaseAgent(endpoints["frontend"], AgentRole.Attacker, game="kept", timeout=30)
        try:
            assert holder.register() is not None
            shown = run_arena("status", "--broker", endpoints["frontend"], "--games")
            assert shown.returncode == 0, shown.stderr
            lines = shown.stdout.splitlines()
            assert sum(line.startswith("w-") for line in lines) == 2
            assert any(line.startswith("kept ") for line in lines)
        finally:
            holder.terminate_connection()
    finally:
        stop_process(up)
    assert up.returncode == 0
    for pid in endpoints.get("pids", []):
        with pytest.raises(ProcessLookupError):
            import os

            os.kill(pid, 0)


def test_arena_demo_starts_plays_and_stops_everything() -> None:
    done = run_arena("demo", "--episodes", "3", "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 3
    assert summary["wins"] + summary["detections"] + summary["timeouts"] == 3


@pytest.mark.parametrize("stack", [{"tasks": [SOLO], "worlds": 1}], indirect=True)
def test_arena_monitor_prints_snapshots_and_writes_jsonl(stack: Stack, tmp_path: Path) -> None:
    jsonl = tmp_path / "trace.jsonl"
    watcher = subprocess.Popen([*ARENA, "monitor", "--trace", stack.endpoints["trace"], "--jsonl", str(jsonl),
                                "--json", "--seconds", "0.5", "--duration", "30"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (jsonl.exists() and '"alive"' in jsonl.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the monitor's subscription reached the world: it logged an alive event
        done = run_arena("play", "--broker", stack.endpoints["frontend"], "--agent", "kill-chain", "--episodes",
                         "3", "--json")
        assert done.returncode == 0, done.stderr
        while time.monotonic() < deadline:
            lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
            episodes = [e for line in lines for e in line["events"] if e["kind"] == "episode"]
            if len(episodes) == 3:
                break
            time.sleep(0.05)
        assert len(episodes) == 3 and all(line["topic"].startswith("trace.") for line in lines)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    snapshots = [json.loads(line) for line in out.splitlines()]
    last = snapshots[-1]["tasks"]["scenario1_small_attacker"]
    assert last["episodes"] == 3 and snapshots[-1]["gaps"] == 0


@pytest.mark.parametrize("command", ["up", "broker", "world", "gateway", "play", "monitor", "status", "demo"])
def test_every_command_has_help(command: str) -> None:
    done = run_arena(command, "--help", timeout=60)
    assert done.returncode == 0 and "Usage: " in done.stdout and "--" in done.stdout


def test_arena_up_with_the_gateway_serves_netsecgame_clients(tmp_path: Path) -> None:
    """`arena up --gateway`: the gateway is one more child process; a NetSecGame client
    (bare JSON in, JSON + EOF out) joins and steps through it."""
    from .test_gateway import NetSecGameClient, join_request

    endpoints_file = tmp_path / "up.json"
    up = subprocess.Popen([*ARENA, "up", "--worlds", "1", "--task", SOLO, "--gateway", "127.0.0.1:0",
                           "--endpoints-file", str(endpoints_file), "--frontend", "tcp://127.0.0.1:*",
                           "--backend", "tcp://127.0.0.1:*", "--trace", "tcp://127.0.0.1:*",
                           "--trace-input", "tcp://127.0.0.1:*"],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoints = read_endpoints(endpoints_file, 60, up)
        host, _, port = endpoints["gateway"].rpartition(":")
        client = NetSecGameClient((host, int(port)))
        try:
            joined = client.request(join_request())
            assert joined["status"] == "GameStatus.CREATED"
            step = client.request(json.dumps({"action_type": "ActionType.ScanNetwork", "parameters": {
                "source_host": {"ip": "192.168.2.2"}, "target_network": {"ip": "192.168.1.0", "mask": 24}}}))
            assert step["status"] == "GameStatus.OK" and step["observation"]["reward"] == -1
        finally:
            client.close()
    finally:
        stop_process(up)
    assert up.returncode == 0
