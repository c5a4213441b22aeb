"""`arena report` on a recorded run: the PNGs and the page are written, and every plotted
series (read back from the drawn artists, in series.json) equals the numbers computed
here straight from the input files."""

from __future__ import annotations

import doctest
import itertools
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from agents.local import LocalMatch
from agents.policies import POLICIES
from bin import report_data, report_plots
from bin.cli import main
from protocol import AgentRole
from protocol.compact import ACTION_BY_CODE
from protocol.jsonl import append_jsonl_line
from world import parse_task

TASKS = Path(__file__).resolve().parents[1] / "world" / "tasks"
EPISODES = 14
WINDOW = 4
BINS = 5
PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("returns", "win_rate", "lengths", "actions", "detection", "comparison")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kill-chain attacker against a blocking defender with the global defender on, in
    process: the world writes both agents' trajectories at each reset, and the session's
    trace events are written as `arena monitor --jsonl` writes them."""
    directory = tmp_path_factory.mktemp("run")
    document = yaml.safe_load((TASKS / "default.yaml").read_text())
    document["env"]["use_global_defender"] = True
    document["env"]["save_trajectories"] = True
    document["arena"]["trajectory_dir"] = str(directory)
    for role in ("Attacker", "Defender"):
        document["coordinator"]["agents"][role]["max_steps"] = 20
    match = LocalMatch(parse_task(document, "report.yaml"), [("red", AgentRole.Attacker, POLICIES["kill-chain"]),
                                                             ("blue", AgentRole.Defender, POLICIES["defender"])],
                       seed=3)
    match.session.events = []
    for seq, _ in enumerate(match.play(EPISODES), start=1):
        append_jsonl_line(directory / "trace.jsonl", {"topic": "trace.default.local", "publisher": "w-test",
                                                      "seq": seq, "events": match.session.events})
        match.session.events = []
    return directory


def trajectory_file(run: Path, role: str) -> Path:
    (path,) = run.glob(f"*_AgentRole.{role}.jsonl")
    return path


def arena_report(*arguments: str) -> Result:
    return CliRunner().invoke(main, ["report", *arguments], catch_exceptions=False)


def trailing_average(values: list[float], window: int) -> list[float]:
    return [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
            for i in range(len(values))]


def expected_from_trajectories(path: Path) -> dict[str, list[Any]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    records = [r for r in records if r["trajectory"]["actions"] or r["end_reason"]]
    return {
        "returns": [float(sum(r["trajectory"]["rewards"])) for r in records],
        "lengths": [len(r["trajectory"]["actions"]) for r in records],
        "wins": [int(r["end_reason"] == "AgentStatus.Success") for r in records],
        "fails": [int(r["end_reason"] == "AgentStatus.Fail") for r in records],
        "actions": [Counter(a["action_type"].removeprefix("ActionType.") for a in r["trajectory"]["actions"])
                    for r in records],
    }


def expected_from_trace(path: Path, seat: str) -> dict[str, list[Any]]:
    events = [e for line in path.read_text().splitlines() for e in json.loads(line)["events"] if e["seat"] == seat]
    episodes = [e for e in events if e["kind"] == "episode"]
    steps = [e for e in events if e["kind"] == "step"]
    return {
        "returns": [float(e["return"]) for e in episodes],
        "lengths": [e["steps"] for e in episodes],
        "wins": [int(e["end_reason"] == "AgentStatus.Success") for e in episodes],
        "fails": [int(e["end_reason"] == "AgentStatus.Fail") for e in episodes],
        "actions": [Counter(ACTION_BY_CODE[s["action"][0]].value for s in steps if s["episode"] == e["episode"])
                    for e in episodes],
    }


def check_series(series: dict[str, Any], label: str, expected: dict[str, list[Any]], *, attacker: bool) -> None:
    """Every plot's series of one agent against the numbers taken from its input file."""
    plots = series["plots"]
    returns = plots["returns"]["series"][label]
    assert returns["return"] == expected["returns"]
    assert returns["x"] == list(range(1, len(expected["returns"]) + 1))
    assert returns["moving_average"] == pytest.approx(trailing_average(expected["returns"], WINDOW))
    wins = plots["win_rate"]["series"][label]
    assert wins["win"] == expected["wins"]
    assert wins["moving_average"] == pytest.approx(trailing_average(expected["wins"], WINDOW))
    lengths = plots["lengths"]["series"][label]
    assert lengths["steps"] == expected["lengths"]
    assert lengths["moving_average"] == pytest.approx(trailing_average(expected["lengths"], WINDOW))
    if attacker:
        detected = plots["detection"]["series"][label]
        assert detected["detected"] == expected["fails"]
        assert detected["moving_average"] == pytest.approx(trailing_average(expected["fails"], WINDOW))
    else:
        assert label not in plots["detection"]["series"], "only an attacker's Fail is a detection"
    mix = plots["actions"]["series"][label]
    count = len(expected["returns"])
    bins = [tuple(pair) for pair in mix["bins"]]
    assert len(bins) == min(BINS, count) and bins[0][0] == 1 and bins[-1][1] == count
    assert all(left[1] + 1 == right[0] for left, right in itertools.pairwise(bins)), "contiguous"
    for index, (first, last) in enumerate(bins):
        counts = sum(expected["actions"][first - 1:last], Counter())
        assert {name: column[index] for name, column in mix["counts"].items() if column[index]} == dict(counts)
        for name, column in mix["fractions"].items():
            assert column[index] == pytest.approx(counts[name] / sum(counts.values()))
        assert sum(column[index] for column in mix["fractions"].values()) == pytest.approx(1.0)
    summary = next(agent for agent in series["agents"] if agent["label"] == label)
    assert summary["episodes"] == count
    assert summary["win_rate"] == pytest.approx(sum(expected["wins"]) / count)
    assert summary["mean_return"] == pytest.approx(sum(expected["returns"]) / count)
    assert summary["mean_length"] == pytest.approx(sum(expected["lengths"]) / count)
    assert summary["detection_rate"] == (pytest.approx(sum(expected["fails"]) / count) if attacker else None)


def check_outputs(out: Path, plots: tuple[str, ...] = PLOTS) -> dict[str, Any]:
    for name in plots:
        assert (out / f"{name}.png").read_bytes()[:8] == PNG, name
    page = (out / "index.html").read_text()
    assert all(f'src="{name}.png"' in page for name in plots)
    series = json.loads((out / "series.json").read_text())
    assert sorted(series["plots"]) == sorted(plots)
    return series


def test_report_on_two_trajectory_files_plots_their_numbers(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    red, blue = trajectory_file(run, "Attacker"), trajectory_file(run, "Defender")
    done = arena_report(str(red), str(blue), "--out", str(tmp_path), "--window", str(WINDOW), "--bins", str(BINS))
    assert done.exit_code == 0, done.output
    series = check_outputs(tmp_path)
    expected_red, expected_blue = expected_from_trajectories(red), expected_from_trajectories(blue)
    assert len(expected_red["returns"]) == EPISODES - 1, "the last episode is saved at a reset that never came"
    assert 0 < sum(expected_red["wins"]) < EPISODES - 1 and sum(expected_red["fails"]) > 0, "a mixed run"
    check_series(series, "red (Attacker)", expected_red, attacker=True)
    check_series(series, "blue (Defender)", expected_blue, attacker=False)
    comparison = series["plots"]["comparison"]["series"]
    count = EPISODES - 1
    assert comparison["labels"] == ["red (Attacker)", "blue (Defender)"]
    assert comparison["win_rate"] == pytest.approx([sum(expected_red["wins"]) / count,
                                                    sum(expected_blue["wins"]) / count])
    assert comparison["detection_rate"] == {"red (Attacker)": pytest.approx(sum(expected_red["fails"]) / count)}
    assert comparison["mean_return"] == pytest.approx([sum(expected_red["returns"]) / count,
                                                       sum(expected_blue["returns"]) / count])
    assert f"red (Attacker): {EPISODES - 1} episodes" in done.output


def test_report_on_a_trace_plots_its_episode_and_step_events(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    trace = run / "trace.jsonl"
    done = arena_report(str(trace), "--out", str(tmp_path), "--window", str(WINDOW), "--bins", str(BINS), "--json")
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert [source["kind"] for source in printed["sources"]] == ["trace"]
    assert printed["sources"][0]["gaps"] == 0
    assert sorted(Path(file).name for file in printed["files"]) == sorted(
        [f"{name}.png" for name in PLOTS] + ["series.json", "index.html"])
    series = check_outputs(tmp_path)
    expected_red = expected_from_trace(trace, "red")
    assert len(expected_red["returns"]) == EPISODES
    check_series(series, "red (Attacker)", expected_red, attacker=True)
    check_series(series, "blue (Defender)", expected_from_trace(trace, "blue"), attacker=False)
    # The same run seen twice: the attacker's trace agrees with its trajectory file.
    from_file = expected_from_trajectories(trajectory_file(run, "Attacker"))
    assert expected_red["returns"][:EPISODES - 1] == from_file["returns"]
    assert expected_red["actions"][:EPISODES - 1] == from_file["actions"]


def test_a_trace_with_lost_messages_and_without_step_events(tmp_path: Path) -> None:
    """Level `episodes` (no step events): no action-mix plot; a seq jump is reported."""
    pytest.importorskip("matplotlib")
    trace = tmp_path / "trace.jsonl"
    episode = {"kind": "episode", "task": "t", "game": "g", "seat": "s-1", "role": "Attacker", "steps": 3}
    for seq, (reason, ret) in zip((1, 2, 5), (("AgentStatus.Success", 97), ("AgentStatus.Fail", -13),
                                              ("AgentStatus.TimeoutReached", -3)), strict=True):
        append_jsonl_line(trace, {"topic": "trace.t.g", "publisher": "w", "seq": seq,
                                  "events": [episode | {"episode": seq, "end_reason": reason, "return": ret}]})
    done = arena_report(str(trace), "--out", str(tmp_path / "out"), "--window", "2")
    assert done.exit_code == 0, done.output
    series = check_outputs(tmp_path / "out", ("returns", "win_rate", "lengths", "detection"))
    assert series["sources"][0]["gaps"] == 2 and "2 lost trace messages" in done.output
    assert series["plots"]["returns"]["series"]["s-1 (Attacker)"]["moving_average"] == [97.0, 42.0, -8.0]
    assert series["agents"][0]["timeouts"] == 1


def test_a_cut_last_line_is_reported_not_fatal(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    red = tmp_path / trajectory_file(run, "Attacker").name
    shutil.copy(trajectory_file(run, "Attacker"), red)
    with red.open("ab") as handle:
        handle.write(b'{"trajectory": {"states": [{"controlled_hosts": ["192.168.2.2"], "known_ho')
    done = arena_report(str(red), "--out", str(tmp_path / "out"), "--window", str(WINDOW), "--bins", str(BINS))
    assert done.exit_code == 0, done.output
    assert "skipped 1 cut lines" in done.output
    series = check_outputs(tmp_path / "out", ("returns", "win_rate", "lengths", "actions", "detection"))
    assert series["sources"][0]["partial"] == 1 and series["sources"][0]["records"] == EPISODES - 1
    check_series(series, "red (Attacker)", expected_from_trajectories(trajectory_file(run, "Attacker")),
                 attacker=True)


def test_the_same_agent_in_two_files_gets_two_labels(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    red = trajectory_file(run, "Attacker")
    done = arena_report(str(red), str(run / "trace.jsonl"), "--out", str(tmp_path), "--json")
    assert done.exit_code == 0, done.output
    labels = [agent["label"] for agent in json.loads(done.stdout)["agents"]]
    assert labels[0] == f"red (Attacker, {red.name})" and "red (Attacker, trace.jsonl)" in labels
    assert "blue (Defender)" in labels and len(labels) == 3, "only colliding labels name their file"


def test_no_episodes_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    empty = tmp_path / "alive.jsonl"
    append_jsonl_line(empty, {"topic": "trace.world.w", "publisher": "w", "seq": 1,
                              "events": [{"kind": "alive", "world": "w", "games": 0, "seats": 0}]})
    done = arena_report(str(empty), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1 and "no finished episode" in done.output
    assert not (tmp_path / "out").exists()


def test_without_matplotlib_the_error_names_the_extra(run: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    done = arena_report(str(run / "trace.jsonl"), "--out", str(tmp_path / "out"))
    assert done.exit_code == 1 and "netsec-arena[plot]" in done.output


@pytest.mark.parametrize("module", [report_data, report_plots])
def test_doctests(module: Any) -> None:
    assert doctest.testmod(module).failed == 0
