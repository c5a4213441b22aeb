"""`arena bench`: every requested case reports its figures, the echo world answers like a
world, the flatness series has its shape. No test asserts a time or a rate's size: only
that the figures are there and positive."""

from __future__ import annotations

import doctest
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agents import BaseAgent, ParallelBaseAgent
from agents.status import query_status
from bin import bench_cases, bench_echo, bench_envs, bench_measure, bench_report, bench_script
from bin.cli import main
from bin.stack import Stack
from protocol import AgentRole, GameStatus
from world import load_task

ROOT = Path(__file__).resolve().parents[1]
SOLO = str(ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml")
FIGURES = ("per_second", "server_cpu_us", "latency_p50_ms", "latency_p99_ms")
PROC = Path("/proc/self/stat").exists()  # server CPU figures need /proc


@pytest.fixture(scope="module")
def echo_stack() -> Iterator[Stack]:
    with Stack(tasks=[SOLO], worlds=1, heartbeat=0.2, world_arguments=["--echo"]) as running:
        running.wait_registered()
        yield running


def invoke(*arguments: str) -> Any:
    return CliRunner().invoke(main, ["bench", *arguments], catch_exceptions=False)


def test_list_names_every_case_once() -> None:
    result = invoke("--list")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert len(names) == len(set(names)) == len(bench_cases.all_cases())
    for name in ("inprocess", "inprocess-host", "lockstep", "echo-lockstep", "resets", "games-per-world",
                 "parallel-1-1-batched", "parallel-256-4-unbatched", "echo-parallel-64-2-batched"):
        assert name in names
    assert [line.split()[0] for line in invoke("--list", "--cases", "parallel-64-*").output.splitlines()] == [
        "parallel-64-1-batched", "parallel-64-1-unbatched", "parallel-64-2-batched", "parallel-64-2-unbatched",
        "parallel-64-4-batched", "parallel-64-4-unbatched"]


def test_an_unknown_case_is_a_usage_error() -> None:
    result = invoke("--cases", "lockstep,no-such-case")
    assert result.exit_code == 2 and "no-such-case" in result.output


def test_json_reports_every_requested_case_with_positive_figures() -> None:
    cases = ["inprocess", "inprocess-host", "lockstep", "echo-lockstep", "resets", "parallel-8-1-batched"]
    result = invoke("--json", "--cases", ",".join(cases), "--duration", "0.5")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *reports, summary = lines
    by_case = {report["case"]: report for report in reports}
    assert sorted(by_case) == sorted(cases) and len(reports) == len(cases)
    for report in reports:
        assert "error" not in report, report
        assert report["count"] > 0 and report["seconds"] > 0 and report["policy"]
        for field in FIGURES:
            if field.endswith("cpu_us") and not PROC and report["kind"] not in ("inprocess", "host"):
                continue
            assert report[field] > 0, (report["case"], field)
    for name in ("lockstep", "echo-lockstep", "resets", "parallel-8-1-batched"):
        assert by_case[name]["client_cpu_us"] > 0
        if PROC:  # CPU times come in 10 ms ticks: one process alone may have used less than one
            assert by_case[name]["world_cpu_us"] >= 0 and by_case[name]["broker_cpu_us"] >= 0
    assert by_case["resets"]["unit"] == "reset" and by_case["lockstep"]["unit"] == "step"
    assert by_case["lockstep"]["echo_fraction"] > 0  # its echo case ran first
    assert by_case["parallel-8-1-batched"]["echo_fraction"] is None  # its echo case was not asked for
    assert by_case["lockstep"]["trace"] == "steps" and by_case["echo-lockstep"]["trace"] == "off"
    assert summary["summary"] is True and summary["cases"] == len(cases) and summary["failed"] == []
    assert {target["target"] for target in summary["targets"]} >= {"in-process world steps/s",
                                                                   "lockstep steps/s ÷ NetSecGame's"}
    assert "lockstep" in result.stderr  # the table, on stderr with --json


def test_env_cases_report_env_steps_with_live_masked_actions() -> None:
    cases = ["env-inprocess", "env-lockstep", "env-vector-64-2"]
    result = invoke("--json", "--cases", ",".join(cases), "--duration", "0.3", "--task",
                    str(Path(__file__).resolve().parents[1] / "world" / "tasks" / "two_networks_tiny_attacker.yaml"))
    assert result.exit_code == 0, result.output
    *reports, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert [report["case"] for report in reports] == cases and summary["failed"] == []
    for report in reports:
        assert report["unit"] == "env step" and report["policy"] == bench_envs.POLICY
        assert report["count"] > 0 and report["per_second"] > 0 and report["client_cpu_us"] > 0
    vector = reports[-1]
    assert vector["envs"] == 64 and vector["worlds"] == 2 and vector["count"] % 64 == 0


def test_the_echo_world_answers_a_real_agent_like_a_world(echo_stack: Stack) -> None:
    frontend = echo_stack.endpoints["frontend"]
    action = bench_script.record_script(load_task(SOLO), episodes=1)[0][0]
    agent = BaseAgent(frontend, AgentRole.Attacker, timeout=10)
    try:
        joined = agent.register()
        assert joined is not None and agent.world and agent.seat and agent.game
        assert joined.state.controlled_hosts and joined.info["max_steps"]
        for _ in range(3):
            step = agent.make_step(action)
            assert step is not None and not step.end and step.state.known_hosts
        reset = agent.request_game_reset()
        assert reset is not None and agent.last_error is None
    finally:
        agent.terminate_connection()
    with ParallelBaseAgent(frontend, AgentRole.Attacker, 4, timeout=10) as envs:
        observations = envs.register()
        assert all(observations) and len(set(envs.games)) == 4
        results = envs.make_step([action] * 4)
        assert all(result is not None and not result.end for result in results)
        assert all(envs.request_game_reset())
    deadline = time.monotonic() + 10
    while (status := query_status(frontend, timeout=5))["seats"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the world's RELEASE may reach the broker after the QUIT replies
    assert status["seats"] == 0 and status["games"] == []  # QUIT released every seat and game


def test_the_echo_host_refuses_unknown_seats_and_releases_quits() -> None:
    from protocol import PROTOCOL_FRAME, Command, decode_reply, pack, seq_bytes, unpack

    host = bench_echo.EchoHost({"t": load_task(SOLO)}, "w-echo")
    request = [PROTOCOL_FRAME, Command.REQUEST.frame, b"c"]
    [reply] = host.request([*request, Command.STEP.frame, b"nobody", seq_bytes(1), b"\xc0"], 0.0)
    assert decode_reply(reply[6]).status is GameStatus.BAD_REQUEST
    host.request([*request, Command.JOIN.frame, b"s-1", seq_bytes(1),
                  pack({"task": "t", "role": "Attacker", "game": "g", "name": "n"})], 0.0)
    assert host.hosted() == [{"game": "g", "task": "t", "seats": [["s-1", "Attacker", b"c", seq_bytes(1)]]}]
    [reply] = host.request([*request, Command.QUIT.frame, b"s-1", seq_bytes(2), b"\xc0"], 0.0)
    assert decode_reply(reply[6]).status is GameStatus.OK and not host.games
    assert unpack(host.release_message()[2]) == {"seats": ["s-1"], "closed": ["g"]}


def test_games_per_world_series_has_its_shape(echo_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_cases, "GAMES", (1, 3))
    monkeypatch.setattr(bench_cases, "REPEATS", 2)
    task = load_task(SOLO)
    settings = bench_cases.Settings(task=task, script=bench_script.record_script(task, episodes=4), duration=0.1)
    runs: list[int] = []
    result = bench_cases.run_case(bench_cases.Case("games-per-world", "games", 1), settings,
                                  echo_stack.endpoints["frontend"], echo_stack.endpoints["pids"],
                                  lambda: runs.append(1))
    assert len(runs) == 4 and [entry["games"] for entry in result["series"]] == [1, 3]
    for entry in result["series"]:
        assert len(entry["world_cpu_us_runs"]) == 2 and entry["per_second"] > 0
    assert result["flatness_ratio"] is None or result["flatness_ratio"] >= 1.0
    table = bench_report.format_table([result])
    assert "games-per-world 1" in table and "games-per-world 3" in table


def test_games_per_host_series_runs_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_cases, "GAMES", (1, 4))
    monkeypatch.setattr(bench_cases, "REPEATS", 1)
    monkeypatch.setattr(bench_cases, "WARMUP_STEPS_PER_GAME", 2)
    task = load_task(SOLO)
    settings = bench_cases.Settings(task=task, script=bench_script.record_script(task, episodes=4), duration=0.05)
    result = bench_cases.run_case(bench_cases.Case("games-per-host", "games-host"), settings)
    assert [entry["games"] for entry in result["series"]] == [1, 4]
    assert all(entry["world_cpu_us"] > 0 and entry["per_second"] > 0 for entry in result["series"])
    assert result["flatness_ratio"] >= 1.0 and result["broker_cpu_us"] is None


def test_bench_has_help() -> None:
    result = invoke("--help")
    assert result.exit_code == 0 and "--duration" in result.output and "--plot" in result.output


def test_plot_draws_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = [{"case": f"parallel-{envs}-{worlds}-batched", "kind": "parallel", "echo": False, "worlds": worlds,
                "envs": envs, "batched": True, "per_second": 100.0 * envs} for envs in (1, 8) for worlds in (1, 2)]
    target = tmp_path / "bench.png"
    bench_report.plot(results, str(target), "test")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = invoke("--cases", "inprocess", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and "pip install 'netsec-arena[plot]'" in result.output


@pytest.mark.parametrize("module", [bench_echo, bench_measure, bench_report, bench_script])
def test_doctests(module: Any) -> None:
    failures, _ = doctest.testmod(module)
    assert failures == 0
