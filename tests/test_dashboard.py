"""`arena monitor`'s figures and dashboard: from hand-built trace messages (every count
known in advance), from a recording (`--from`), and from a real run recorded with
`--jsonl`. The dashboard is rendered to text without a terminal."""

from __future__ import annotations

import doctest
import io
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner
from rich.console import Console

import bin.dashboard
import bin.monitor
from agents.trace_figures import TraceFigures
from bin.cli import main
from bin.dashboard import render
from bin.stack import Stack
from protocol import pack
from protocol.compact import ACTION_BY_CODE
from protocol.jsonl import JsonlWriter, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
SOLO = str(ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml")
ARENA = [sys.executable, "-m", "bin"]

SCAN, FIND_SERVICES, EXPLOIT, BLOCK = [0, "192.168.1.0/24"], [1, "192.168.1.2"], [3, "192.168.1.2", "ssh"], [5, "x"]


def event(kind: str, task: str, game: str, seat: str, role: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "task": task, "game": game, "seat": seat, "role": role, **fields}


def step(task: str, game: str, seat: str, role: str, action: list[Any]) -> dict[str, Any]:
    return event("step", task, game, seat, role, action=action, reward=-1, end=False, end_reason=None)


def episode(task: str, game: str, seat: str, role: str, value: float, reason: str) -> dict[str, Any]:
    return event("episode", task, game, seat, role, steps=3, end_reason=reason, **{"return": value})


def duel_messages() -> list[dict[str, Any]]:
    """Two tasks, three games, two publishers: world w1 loses two messages (seq 3 and 4),
    w2 restarts (its seq starts again: nothing lost)."""
    duel = [
        event("join", "duel", "g1", "a1", "Attacker"), event("join", "duel", "g1", "d1", "Defender"),
        step("duel", "g1", "a1", "Attacker", SCAN), step("duel", "g1", "d1", "Defender", BLOCK),
        step("duel", "g1", "a1", "Attacker", FIND_SERVICES), step("duel", "g1", "a1", "Attacker", EXPLOIT),
        episode("duel", "g1", "a1", "Attacker", 95, "AgentStatus.Success"),
        episode("duel", "g1", "d1", "Defender", -5, "AgentStatus.Success"),
        event("reset", "duel", "g1", "a1", "Attacker"), event("reset", "duel", "g1", "d1", "Defender"),
        step("duel", "g1", "a1", "Attacker", SCAN), step("duel", "g1", "a1", "Attacker", SCAN),
        episode("duel", "g1", "a1", "Attacker", -12, "AgentStatus.Fail"),
        episode("duel", "g1", "d1", "Defender", 20, "AgentStatus.Fail"),
        event("quit", "duel", "g1", "d1", "Defender"),
    ]
    solo = [
        step("solo", "s1", "x1", "Attacker", SCAN),  # the monitor missed x1's join: its steps show it
        episode("solo", "s1", "x1", "Attacker", -50, "AgentStatus.TimeoutReached"),
        event("join", "solo", "s2", "x2", "Attacker"), event("quit", "solo", "s2", "x2", "Attacker"),
    ]
    return [
        {"publisher": "w1", "seq": 1, "events": [{"kind": "alive", "world": "w1", "games": 1, "seats": 2}]},
        {"publisher": "w1", "seq": 2, "events": duel[:6]},
        {"publisher": "w1", "seq": 5, "events": duel[6:]},
        {"publisher": "w2", "seq": 7, "events": solo[:2]},
        {"publisher": "w2", "seq": 1, "events": solo[2:]},
    ]


def check_duel_figures(snapshot: dict[str, Any]) -> None:
    assert (snapshot["messages"], snapshot["gaps"]) == (5, 2)
    assert snapshot["publishers"] == {"w1": {"messages": 3, "gaps": 2, "seq": 5, "games": 1, "seats": 2},
                                      "w2": {"messages": 2, "gaps": 0, "seq": 1}}
    duel, solo = snapshot["tasks"]["duel"], snapshot["tasks"]["solo"]
    assert (duel["steps"], duel["episodes"], duel["wins"], duel["detections"], duel["timeouts"]) == (6, 2, 1, 1, 0)
    assert duel["resets"] == 2 and duel["games"] == 1 and duel["active_games"] == 1
    assert duel["agents"] == {"Attacker": 1}, "the defender quit"
    assert duel["mean_return"] == pytest.approx((95 - 12) / 2)
    assert duel["episodes_by_role"] == {"Attacker": 2, "Defender": 2}
    assert duel["mean_return_by_role"] == pytest.approx({"Attacker": 41.5, "Defender": 7.5})
    assert list(duel["actions"].items()) == [("ScanNetwork", 3), ("BlockIP", 1), ("ExploitService", 1),
                                             ("FindServices", 1)], "most frequent first, ties by name"
    assert (solo["steps"], solo["episodes"], solo["timeouts"], solo["mean_return"]) == (1, 1, 1, -50)
    assert solo["agents"] == {"Attacker": 1} and (solo["games"], solo["active_games"]) == (2, 1)
    games = {game["game"]: game for game in snapshot["games"]}
    assert [game["game"] for game in snapshot["games"]][:1] == ["g1"], "busiest first"
    assert games["g1"]["task"] == "duel" and games["g1"]["steps"] == 6 and games["g1"]["wins"] == 1
    assert games["s1"]["agents"] == {"Attacker": 1} and games["s2"]["agents"] == {}
    assert games["s2"]["steps"] == 0 and games["s1"]["timeouts"] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def duel_figures() -> TraceFigures:
    """The duel messages, received at 100 s and looked at 4 s later."""
    clock = Clock()
    figures = TraceFigures(clock=clock)
    for message in duel_messages():
        figures.add_message(message)
    clock.now = 104.0
    return figures


def test_figures_per_task_game_and_publisher_from_hand_built_messages() -> None:
    figures = duel_figures()
    check_duel_figures(figures.snapshot())
    assert figures.gaps == 2 and figures.last_seq == {"w1": 5, "w2": 1}
    assert len(figures.snapshot(top=1)["games"]) == 1


def test_steps_per_second_overall_and_over_the_last_window() -> None:
    clock = Clock()
    figures = TraceFigures(clock=clock, window=5.0)
    clock.now = 101.0
    figures.add_message({"publisher": "w", "seq": 1, "events": [step("t", "g", "a", "Attacker", SCAN)] * 5})
    clock.now = 108.0
    figures.add_message({"publisher": "w", "seq": 2, "events": [step("t", "g", "a", "Attacker", SCAN)] * 10})
    clock.now = 110.0
    task = figures.snapshot()["tasks"]["t"]
    assert task["steps_per_second"] == pytest.approx(15 / 10)
    assert task["recent_steps_per_second"] == pytest.approx(10 / 5), "the 5 steps at 101 s left the window"
    assert figures.snapshot()["games"][0]["recent_steps_per_second"] == pytest.approx(2.0)


def test_a_recording_replays_with_its_own_receive_times() -> None:
    records = [{"topic": "trace.t.g", **message, "received": 1000.0 + index}
               for index, message in enumerate(duel_messages())]
    snapshot = TraceFigures.replay(records).snapshot()
    check_duel_figures(snapshot)
    assert snapshot["seconds"] == pytest.approx(4.0)
    assert snapshot["tasks"]["duel"]["steps_per_second"] == pytest.approx(6 / 4)
    untimed = TraceFigures.replay(duel_messages()).snapshot()
    assert untimed["seconds"] == 0 and untimed["tasks"]["duel"]["steps"] == 6


def dashboard_text(snapshot: dict[str, Any], width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(render(snapshot, source="tcp://127.0.0.1:5572"))
    return console.export_text()


def test_the_dashboard_shows_the_figures() -> None:
    figures = duel_figures()
    text = dashboard_text(figures.snapshot())
    assert "tcp://127.0.0.1:5572" in text and "5 messages" in text and "2 gaps" in text
    assert "duel" in text and "solo" in text and "g1" in text and "s2" in text
    lines = text.splitlines()
    assert any("wins" in line and "1 (50%)" in line for line in lines)
    assert any("detections" in line and "1 (50%)" in line for line in lines)
    assert any("timeouts" in line and "1 (100%)" in line for line in lines)
    assert any("mean return" in line and "41.5" in line and "Defender 7.5" in line for line in lines)
    assert any("ScanNetwork" in line and " 3 " in line and "50%" in line for line in lines)
    assert any(line.split()[:1] == ["w1"] and line.split()[1:4] == ["3", "5", "2"] for line in lines)
    game = next(line for line in lines if line.strip().startswith("g1 "))
    assert game.split()[1:] == ["A", "1", "1.5", "6", "2", "1", "1", "0", "A", "41.5", "·", "D", "7.5"]
    assert "waiting for trace events" in dashboard_text(TraceFigures().snapshot())
    assert "duel" in dashboard_text(figures.snapshot(), width=60), "a narrow terminal still renders"


def test_the_dashboard_module_doctests() -> None:
    assert doctest.testmod(bin.dashboard).failed == 0


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "rec.jsonl"
    with JsonlWriter(path) as writer:
        for index, message in enumerate(duel_messages()):
            writer.append({"topic": "trace.x", **message, "received": 50.0 + index / 2})
    return path


def test_arena_monitor_from_a_recording(recording: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["monitor", "--from", str(recording), "--once", "--json"])
    assert done.exit_code == 0, done.output
    snapshot = json.loads(done.output)
    check_duel_figures(snapshot)
    assert snapshot == json.loads(json.dumps(TraceFigures.replay(read_jsonl(recording)).snapshot(top=10)))
    plain = runner.invoke(main, ["monitor", "--from", str(recording)])  # not a terminal: text lines
    assert plain.exit_code == 0 and "duel: 6 steps" in plain.output and "2 gaps" in plain.output
    svg = tmp_path / "dashboard.svg"
    shown = runner.invoke(main, ["monitor", "--from", str(recording), "--once", "--json", "--svg", str(svg)])
    assert shown.exit_code == 0 and svg.read_text().startswith("<svg") and "ScanNetwork" in svg.read_text()
    both = runner.invoke(main, ["monitor", "--from", str(recording), "--jsonl", str(tmp_path / "x.jsonl")])
    assert both.exit_code == 2 and "use one" in both.output


def test_without_rich_the_monitor_prints_text_lines(recording: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bin.monitor, "_dashboard_module", lambda: None)
    monkeypatch.setattr(bin.monitor, "_is_terminal", lambda: True)
    done = CliRunner().invoke(main, ["monitor", "--from", str(recording)])
    assert done.exit_code == 0 and done.stdout.startswith("[2s] 5 messages, 2 gaps")
    assert "the live dashboard needs rich, the monitor extra" in done.stderr  # on a terminal: says why
    assert "--svg needs rich" in CliRunner().invoke(main, ["monitor", "--from", str(recording), "--svg", "x"]).output


def test_the_live_dashboard_follows_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in publisher sends until the monitor stops; the dashboard shows its task."""
    monkeypatch.setattr(bin.monitor, "_is_terminal", lambda: True)
    context = zmq.Context.instance()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.LINGER, 0)
    publisher.bind("tcp://127.0.0.1:*")
    address = publisher.getsockopt_string(zmq.LAST_ENDPOINT)
    stop = threading.Event()

    def publish() -> None:
        seq = 0
        while not stop.wait(0.02):  # until the monitor is done: a late subscription loses only the first ones
            seq += 1
            publisher.send_multipart([b"trace.live.g", pack({"publisher": "w", "seq": seq, "events": [
                step("live", "g", "a", "Attacker", SCAN)]})])

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        done = CliRunner().invoke(main, ["monitor", "--trace", address, "--duration", "1.5"])
    finally:
        stop.set()
        thread.join(timeout=10)
        publisher.close(linger=0)
    assert done.exit_code == 0, done.output
    assert "arena monitor" in done.output and "live" in done.output and "ScanNetwork" in done.output


def test_a_recorded_real_run_gives_the_players_figures(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    with Stack(worlds=1, tasks=[SOLO], heartbeat=0.2) as stack:
        stack.wait_registered()
        watcher = subprocess.Popen([*ARENA, "monitor", "--trace", stack.endpoints["trace"], "--jsonl", str(rec),
                                    "--json", "--seconds", "5", "--duration", "60"],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not (rec.exists() and '"alive"' in rec.read_text()) and time.monotonic() < deadline:
                time.sleep(0.05)  # the monitor's subscription reached the world: it recorded an alive event
            played = []
            for agent, episodes in (("kill-chain", 3), ("random", 2)):
                done = subprocess.run([*ARENA, "play", "--broker", stack.endpoints["frontend"], "--agent", agent,
                                       "--episodes", str(episodes), "--json"], cwd=ROOT, capture_output=True,
                                      text=True, timeout=120, check=False)
                assert done.returncode == 0, done.stderr
                played.append(json.loads(done.stdout))
            records: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                records = list(read_jsonl(rec))
                if sum(e["kind"] == "episode" for r in records for e in r["events"]) == 5:
                    break
                time.sleep(0.05)
        finally:
            watcher.send_signal(signal.SIGINT)
            watcher.communicate(timeout=30)
    assert watcher.returncode == 0
    done = CliRunner().invoke(main, ["monitor", "--from", str(rec), "--once", "--json"])
    assert done.exit_code == 0, done.output
    snapshot = json.loads(done.output)
    task = snapshot["tasks"]["scenario1_small_attacker"]
    assert snapshot["gaps"] == 0 and all(r["topic"].startswith("trace.") and "received" in r for r in records)
    assert task["steps"] == sum(summary["steps"] for summary in played)
    assert task["episodes"] == 5
    for key in ("wins", "detections", "timeouts"):
        assert task[key] == sum(summary[key] for summary in played), key
    total = sum(summary["mean_return"] * summary["episodes"] for summary in played)
    assert task["mean_return"] == pytest.approx(total / 5)
    assert task["agents"] == {}, "both players quit"
    actions = Counter(ACTION_BY_CODE[e["action"][0]].value for r in records for e in r["events"] if e["kind"] == "step")
    assert task["actions"] == dict(actions) and list(task["actions"].values()) == sorted(actions.values(), reverse=True)
    assert sum(game["steps"] for game in snapshot["games"]) == task["steps"]
    assert "scenario1_small_attacker" in dashboard_text(snapshot)
