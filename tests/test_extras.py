"""Every optional-extra path without its extra ends in one line naming the extra to
install: commands and examples print it (exit 1, no traceback), library imports raise
MissingExtraError with it as the last line. Each runs in a subprocess with the extra's
modules made unimportable (tests/blocked_imports.py); nothing is uninstalled.

The optional imports (grep gymnasium, pettingzoo, numpy, rich, matplotlib,
stable_baselines3, sb3_contrib, torch, mcp): the RL modules of ``agents`` (rl), the
examples (rl; sb3), ``arena monitor``'s dashboard (monitor), ``arena report`` and
``arena bench --plot`` (plot), ``arena bench``'s env cases (rl; tests/test_bench_check.py).
There is no ``mcp`` import in this version.
"""

from __future__ import annotations

import os
import pty
import subprocess
import time
from pathlib import Path

import pytest

from agents.extras import install_hint

from .blocked_imports import command

ROOT = Path(__file__).resolve().parents[1]
RL = ("numpy", "gymnasium", "pettingzoo")
EVERY_EXTRA = (*RL, "rich", "matplotlib", "torch", "stable_baselines3", "sb3_contrib")


def run(blocked: tuple[str, ...], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(blocked, *arguments), cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that stopped for want of an extra."""
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(("module", "blocked", "extras"), [
    ("agents.examples.sb3_maskable_ppo", ("torch", "sb3_contrib", "stable_baselines3"), "rl,sb3"),
    ("agents.examples.sb3_maskable_ppo", ("numpy",), "rl,sb3"),
    ("agents.examples.q_learning", ("numpy",), "rl"),
    ("agents.examples.q_learning", ("gymnasium",), "rl"),
    ("agents.examples.bench_envs", ("numpy",), "rl"),
    ("agents.examples.bench_envs", ("gymnasium",), "rl"),
])
def test_an_example_without_its_extra_says_which_in_one_line(module: str, blocked: tuple[str, ...],
                                                              extras: str) -> None:
    line = one_line(run(blocked, "-m", module, "--json"))
    assert line.startswith("Error: ") and f"extra{'s' if ',' in extras else ''} (" in line
    assert line.endswith(install_hint(extras.split(","))), line
    assert any(f"{name} is not installed" in line for name in blocked)


@pytest.mark.parametrize(("name", "blocked"), [
    ("ArenaEnv", "gymnasium"), ("ArenaEnv", "numpy"), ("ArenaVectorEnv", "gymnasium"),
    ("ArenaParallelEnv", "pettingzoo"), ("ActionMasks", "numpy"), ("FlatObservation", "numpy"),
])
def test_an_rl_class_without_the_rl_extra_raises_one_line_naming_it(name: str, blocked: str) -> None:
    done = run((blocked,), "-c", f"from agents import {name}")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("agents.extras.MissingExtraError: ") and f"({blocked} is not installed)" in last
    assert last.endswith(install_hint("rl")), last
    assert "During handling" not in done.stderr and "direct cause" not in done.stderr, "one error, not a chain"


def test_the_core_works_without_any_extra() -> None:
    done = run(EVERY_EXTRA, "-c", "import agents, bin.cli; from agents import BaseAgent, ParallelBaseAgent")
    assert done.returncode == 0, done.stderr
    shown = run(EVERY_EXTRA, "-m", "bin", "--help")
    assert shown.returncode == 0 and "monitor" in shown.stdout, shown.stderr


def test_arena_report_without_matplotlib_names_the_plot_extra(tmp_path: Path) -> None:
    trajectories = tmp_path / "t.jsonl"
    trajectories.write_text("{}\n")
    line = one_line(run(("matplotlib",), "-m", "bin", "report", str(trajectories), "--out", str(tmp_path / "out")))
    assert "the plot extra" in line and line.endswith(install_hint("plot"))
    assert not (tmp_path / "out").exists()


def test_arena_bench_plot_without_matplotlib_names_the_plot_extra(tmp_path: Path) -> None:
    line = one_line(run(("matplotlib",), "-m", "bin", "bench", "--cases", "inprocess", "--plot",
                        str(tmp_path / "b.png")))
    assert "arena bench --plot needs the plot extra (matplotlib is not installed)" in line
    assert line.endswith(install_hint("plot"))


def test_arena_monitor_without_rich(tmp_path: Path) -> None:
    """Piped: text lines as always, no note; --svg: one line naming the monitor extra."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text('{"topic": "trace.t.g", "publisher": "w", "seq": 1, "events": []}\n')
    plain = run(("rich",), "-m", "bin", "monitor", "--from", str(recording))
    assert plain.returncode == 0 and plain.stdout.startswith("[0s] 1 messages"), plain.stderr
    assert plain.stderr == ""
    line = one_line(run(("rich",), "-m", "bin", "monitor", "--from", str(recording), "--svg", str(tmp_path / "x")))
    assert "--svg needs rich, the monitor extra" in line and line.endswith(install_hint("monitor"))


def test_arena_monitor_without_rich_on_a_terminal_says_what_the_dashboard_needs(tmp_path: Path) -> None:
    """On a terminal (a pty) the dashboard is what a user expects: one note says why they get lines."""
    recording = tmp_path / "rec.jsonl"
    recording.write_text('{"topic": "trace.t.g", "publisher": "w", "seq": 1, "events": []}\n')
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(command(("rich",), "-m", "bin", "monitor", "--from", str(recording)), cwd=ROOT,
                                   stdout=terminal, stderr=subprocess.PIPE, text=True)
        os.close(terminal)
        terminal = -1
        _, err = process.communicate(timeout=60)
        shown = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0, err
    assert err.splitlines() == [f"arena monitor: text lines; the live dashboard needs rich, the monitor extra: "
                                f"{install_hint('monitor')}"]
    assert b"1 messages" in shown
