"""`arena bench` without an extra skips the cases that need it (one line naming the extra),
and `--check` exits non-zero when a target is missed. Through the real command, in a
subprocess; the extra is made unimportable there (tests/blocked_imports.py). Short
durations: the figures are not what is tested, only what the command does with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .blocked_imports import command

ROOT = Path(__file__).resolve().parents[1]


def run(arguments: list[str], *, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = command(blocked, "-m", "bin", *arguments) if blocked else [sys.executable, "-m", "bin", *arguments]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def json_lines(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    *reports, summary = [json.loads(line) for line in stdout.splitlines()]
    return reports, summary


def test_env_cases_without_the_rl_extra_are_skipped_with_one_line() -> None:
    done = run(["bench", "--cases", "inprocess,env-inprocess,env-lockstep", "--duration", "0.1", "--json"],
               blocked=("numpy", "gymnasium"))
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("arena bench:")]
    assert notes == ["arena bench: skipped env-inprocess, env-lockstep: they need the rl extra (numpy is not "
                     "installed): pip install 'netsec-arena[rl]' (in a clone: pip install -e '.[rl]')"]
    assert "Traceback" not in done.stderr
    reports, summary = json_lines(done.stdout)
    by_case = {report["case"]: report for report in reports}
    assert "error" not in by_case["inprocess"] and by_case["inprocess"]["count"] > 0
    assert by_case["env-lockstep"]["skipped"] == "needs the rl extra (numpy is not installed)"
    assert summary["failed"] == [] and summary["skipped"] == ["env-inprocess", "env-lockstep"]


def test_check_exits_non_zero_when_a_target_is_missed() -> None:
    impossible = ["bench", "--cases", "inprocess", "--duration", "0.1", "--target", "inprocess-steps=1e15"]
    missed = run([*impossible, "--check"])
    assert missed.returncode == 1, missed.stderr
    assert "target inprocess-steps: in-process world steps/s = " in missed.stdout and "NOT met" in missed.stdout
    [line] = [line for line in missed.stderr.splitlines() if line.startswith("arena bench --check")]
    assert line.startswith("arena bench --check: 1 of 1 targets missed: inprocess-steps = ")
    assert line.endswith("(goal >= 1e+15)")
    assert run(impossible).returncode == 0, "without --check a missed target is reported, not fatal"
    met = run(["bench", "--cases", "inprocess", "--duration", "0.1", "--target", "inprocess-steps=1", "--check"])
    assert met.returncode == 0, met.stderr
    assert "arena bench --check: 1 targets measured, all met" in met.stderr


def test_a_bad_target_is_a_usage_error() -> None:
    unknown = run(["bench", "--cases", "inprocess", "--target", "speed=1"])
    assert unknown.returncode == 2 and "unknown target 'speed'" in unknown.stderr
    assert "inprocess-steps" in unknown.stderr, "the error lists the keys"
    assert "Traceback" not in unknown.stderr
    not_a_number = run(["bench", "--cases", "inprocess", "--target", "inprocess-steps=fast"])
    assert not_a_number.returncode == 2 and "the goal must be a number" in not_a_number.stderr
