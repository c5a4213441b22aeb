"""``arena demo`` as a user runs it (issue 13, items 10, 11 and 17): every shipped task
demos, the same seed plays the same episodes, and Ctrl-C (or SIGTERM) stops it at once,
quietly, with the summary so far. Every run is ``python -m bin demo`` in a subprocess, with
its own stack; every wait is bounded."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bin.demo import DemoError, seat_plan
from protocol import AgentRole, AgentStatus
from world import load_task

ROOT = Path(__file__).resolve().parents[1]
TASKS = sorted((ROOT / "world" / "tasks").glob("*.yaml"))
ENDS = {str(AgentStatus.Success), str(AgentStatus.Fail), str(AgentStatus.TimeoutReached)}


def run_demo(*arguments: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bin", "demo", *arguments], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


def demo_json(*arguments: str) -> dict[str, Any]:
    done = run_demo(*arguments, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("task_file", TASKS, ids=[path.stem for path in TASKS])
def test_demo_seats_every_role_of_every_shipped_task(task_file: Path) -> None:
    task = load_task(task_file)
    summary = demo_json("--task", str(task_file), "--episodes", "2")
    seats = [(seat["role"], seat["agent"]) for seat in summary["seats"]]
    assert sorted(role for role, _ in seats) == sorted(role.value for role, n in task.seats.items()
                                                       for _ in range(n))
    assert summary["task"] == task.name and summary["episodes"] == 2 and not summary["interrupted"]
    assert [entry["ref"] for entry in summary["scripted"]] == [spec.ref for spec in task.scripted_agents]
    attackers = sum(role == "Attacker" for role, _ in seats)
    assert summary["wins"] + summary["detections"] + summary["timeouts"] == 2 * attackers
    steps = 0
    for number, episode in enumerate(summary["per_episode"]):
        assert episode["episode"] == number
        assert [(seat["role"], seat["agent"]) for seat in episode["seats"]] == seats
        for seat in episode["seats"]:
            assert seat["end_reason"] in ENDS and seat["steps"] >= 1, seat
            steps += seat["steps"]
    assert len(summary["per_episode"]) == 2 and summary["steps"] == steps
    if task.seats.get(AgentRole.Defender):
        assert "mean_defender_return" in summary


def test_demo_seat_plan_covers_every_role_and_refuses_a_crowd(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "world" / "tasks" / "defended_tiny.yaml").read_text())
    document["arena"] = {"name": "crowd", "seats": {"Attacker": 3, "Defender": 2, "Benign": 1},
                         "start": {"Attacker": 1}}
    document.pop("agents")
    (tmp_path / "crowd.yaml").write_text(yaml.safe_dump(document))
    assert [agent for _, agent in seat_plan(load_task(tmp_path / "crowd.yaml"))] == [
        "kill-chain", "random", "kill-chain", "defender", "defender", "benign"]
    document["arena"]["seats"]["Benign"] = 100
    (tmp_path / "crowd.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(DemoError, match="105 seats"):
        seat_plan(load_task(tmp_path / "crowd.yaml"))
    done = run_demo("--task", str(tmp_path / "crowd.yaml"), timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "Error: task crowd has 105 seats per game (arena.seats); the demo plays at most 64"]


def test_demo_with_the_same_seed_plays_the_same_episodes() -> None:
    first = demo_json("--seed", "7", "--episodes", "3")
    again = demo_json("--seed", "7", "--episodes", "3")
    other = demo_json("--seed", "8", "--episodes", "3")
    assert len(first["per_episode"]) == 3
    assert first["per_episode"] == again["per_episode"]
    assert {key: first[key] for key in ("wins", "detections", "timeouts", "mean_return", "mean_defender_return",
                                        "steps")} == {key: again[key] for key in ("wins", "detections", "timeouts",
                                                                                  "mean_return",
                                                                                  "mean_defender_return", "steps")}
    assert other["per_episode"] != first["per_episode"]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc): the demo's stack."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _lines(stream: Any, into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


@pytest.mark.parametrize(("sig", "whole_group", "status"), [
    (signal.SIGINT, True, 130),    # Ctrl-C in a terminal: the demo's whole process group gets it
    (signal.SIGINT, False, 130),   # kill -INT of the demo alone
    (signal.SIGTERM, False, 143),
], ids=["ctrl-c", "sigint", "sigterm"])
def test_demo_stops_at_once_and_quietly_on_a_signal(sig: signal.Signals, whole_group: bool, status: int) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "bin", "demo", "--episodes", "10000"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(demo.stderr, lines), daemon=True)
    reader.start()
    stderr: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("episode 1/") for line in stderr):  # it plays: an episode finished
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "".join(stderr)
            stderr.append(line)
        stack = children_of(demo.pid)
        assert len(stack) >= 2, "a broker and a world"
        sent = time.monotonic()
        if whole_group:
            os.killpg(demo.pid, sig)
        else:
            demo.send_signal(sig)
        demo.wait(30)
        stopped = time.monotonic() - sent
        reader.join(30)
        while (line := lines.get_nowait()) is not None:
            stderr.append(line)
        out = demo.stdout.read() if demo.stdout else ""
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        if demo.stdout:
            demo.stdout.close()
    print(f"arena demo stopped {stopped:.2f} s after {sig.name} ({'group' if whole_group else 'process'})")
    text = "".join(stderr)
    assert demo.returncode == status, text
    assert stopped < 4.0, f"took {stopped:.1f} s"
    # quiet: the start line, episode lines and one "interrupted" line; no warning, no traceback
    assert all(line.startswith(("episode ", "arena demo: ")) for line in stderr), text
    assert [line for line in stderr if line.startswith("arena demo: interrupted after ")], text
    assert "episodes: the attacker" in out and "defender mean return" in out
    for pid in stack:  # the stack went with it (stopped and reaped by the demo)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
