"""``arena bench``: the performance suite of DESIGN §6, on real processes.

The cases (``arena bench --list``; :mod:`bin.bench_cases`) run in process, or against a
broker and world workers started as users start them (:class:`~bin.stack.Stack`: ``python
-m bin broker/world`` children on ``*`` ports), one stack per world count, reused by
every case of that count; the echo baselines run on stacks of echo worlds
(:mod:`bin.bench_echo`), before the real cases of the same count so that each real
figure can be given as a fraction of its echo. Trace on (level ``steps``, with a
subscriber so it is really sent), trajectories as the task says (off by default).

Output: a progress bar (stderr), then the table, or with ``--json`` one JSON object per
case as it finishes and a summary object (the table then goes to stderr);
``--markdown`` prints the table for ``BENCHMARKS.md``; ``--plot FILE.png`` draws
steps/s against environments and worlds (the ``plot`` extra). A case whose extra is
not installed (the env cases: ``rl``) is skipped, with one line naming the extra.
``--check`` exits 1 when a target is missed; ``--target KEY=GOAL`` sets a goal.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from agents.extras import MissingExtraError, install_hint, require
from protocol import AgentRole, ArenaError
from world import TaskConfigError, load_task

from .bench_cases import GAMES, REPEATS, BenchError, Case, Settings, all_cases, run_case
from .bench_measure import TraceDrain, raise_open_file_limit
from .bench_report import TARGETS, format_summary, format_table, load_average, missed_targets, plot, summarise
from .bench_script import ScriptError, record_script
from .stack import Stack

__all__ = ["DEFAULT_DURATION", "DEFAULT_TASK", "bench", "run_suite", "select_cases"]

log = logging.getLogger(__name__)

#: Seconds measured per case: the whole suite then takes about three minutes on 2 cores.
DEFAULT_DURATION = 1.5
DEFAULT_TASK = str(Path(__file__).resolve().parent.parent / "world" / "tasks" / "scenario1_small_attacker.yaml")


def select_cases(patterns: str | None) -> list[Case]:
    """The cases named by comma-separated names or glob patterns, in listing order."""
    cases = all_cases()
    if not patterns:
        return cases
    chosen: set[str] = set()
    for pattern in (part.strip() for part in patterns.split(",")):
        if not pattern:
            continue
        matches = [case.name for case in cases if fnmatch.fnmatchcase(case.name, pattern)]
        if not matches:
            raise click.BadParameter(f"no case matches {pattern!r} (see arena bench --list)", param_hint="--cases")
        chosen.update(matches)
    return [case for case in cases if case.name in chosen]


def _schedule(cases: list[Case]) -> list[tuple[tuple[int, bool] | None, list[Case]]]:
    """In-process cases first, then one group per stack: by world count, echo first."""
    groups: dict[tuple[int, bool] | None, list[Case]] = {}
    for case in cases:
        groups.setdefault((case.worlds, case.echo) if case.worlds else None, []).append(case)
    return sorted(groups.items(), key=lambda item: (-1, 0) if item[0] is None else (item[0][0], not item[0][1]))


#: What each extra's cases import, checked before the run.
_EXTRA_MODULES = {"rl": ("numpy", "gymnasium", "agents.gym_env", "agents.vector_env")}


def missing_extras(cases: list[Case]) -> dict[str, MissingExtraError]:
    """The extras the cases need that are not installed, with the error naming each."""
    missing = {}
    for extra in sorted({case.extra for case in cases if case.extra}):
        try:
            require(f"arena bench's {extra} cases", extra, *_EXTRA_MODULES[extra])
        except MissingExtraError as error:
            missing[extra] = error
    return missing


def _goals(values: tuple[str, ...]) -> dict[str, float]:
    """``--target KEY=GOAL`` values, checked."""
    goals = {}
    for value in values:
        key, _, goal = value.partition("=")
        if key not in TARGETS:
            raise click.BadParameter(f"unknown target {key!r} in {value!r} (targets: {', '.join(TARGETS)})",
                                     param_hint="--target")
        try:
            goals[key] = float(goal)
        except ValueError:
            raise click.BadParameter(f"{value!r}: the goal must be a number", param_hint="--target") from None
    return goals


def _weight(case: Case) -> int:
    return len(GAMES) * REPEATS if case.kind in ("games", "games-host") else 1


def _failure(case: Case, error: BaseException) -> dict[str, Any]:
    log.warning("case %s failed: %s", case.name, error)
    return {"case": case.name, "kind": case.kind, "error": f"{type(error).__name__}: {error}"}


def run_suite(cases: list[Case], settings: Settings, task_location: str, *, trace_subscriber: bool = True,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              advance: Callable[[int, str], None] | None = None) -> list[dict[str, Any]]:
    """Run ``cases``; each result (or ``{"case", "error"}``) goes to ``on_result`` as it
    finishes, with ``echo_fraction`` filled in when its echo case ran before it."""
    results: dict[str, dict[str, Any]] = {}

    def report(case: Case, result: dict[str, Any]) -> None:
        baseline = results.get(case.baseline) if case.baseline else None
        if baseline is not None and "error" not in baseline and "error" not in result and baseline["per_second"]:
            result["echo_fraction"] = result["per_second"] / baseline["per_second"]
        results[case.name] = result
        if on_result is not None:
            on_result(result)

    def step(case: Case, frontend: str | None = None, pids: list[int] | None = None) -> None:
        runs = 0

        def on_run() -> None:
            nonlocal runs
            runs += 1
            if advance is not None:
                advance(1, case.name)

        if advance is not None:
            advance(0, case.name)
        try:
            result = run_case(case, settings, frontend, pids or [], on_run)
        except (BenchError, ArenaError, OSError, RuntimeError, TimeoutError, ValueError) as error:
            result = _failure(case, error)
        report(case, result)
        if advance is not None:
            advance(_weight(case) - runs, case.name)

    for key, group in _schedule(cases):
        if key is None:
            for case in group:
                step(case)
            continue
        worlds, echo = key
        stack = Stack(tasks=[task_location], worlds=worlds, seed=settings.seed,
                      world_arguments=[f"--trace-level={settings.trace}", *(["--echo"] if echo else [])])
        try:
            stack.start()
            stack.wait_registered()
        except (RuntimeError, TimeoutError, OSError) as error:
            stack.stop()
            for case in group:
                report(case, _failure(case, error))
                if advance is not None:
                    advance(_weight(case), case.name)
            continue
        try:
            drain = TraceDrain(stack.endpoints["trace"]) if trace_subscriber else contextlib.nullcontext()
            with drain:
                for case in group:
                    step(case, stack.endpoints["frontend"], stack.endpoints["pids"])
        finally:
            stack.stop()
    return [results[case.name] for case in cases if case.name in results]


def _task_location(location: str | None) -> str:
    if location is None:
        return DEFAULT_TASK
    if urllib.parse.urlparse(location).scheme in ("http", "https"):
        return location
    return str(Path(location).resolve())  # the worlds are other processes: no relative paths


@contextlib.contextmanager
def _progress(total: int, *, show: bool) -> Iterator[Callable[[int, str], None]]:
    if not show:
        yield lambda _n, _name: None
        return
    with click.progressbar(length=total, label="arena bench", item_show_func=lambda name: name,
                           file=sys.stderr) as bar:
        yield lambda n, name: bar.update(n, name)


@click.command()
@click.option("--task", "task_location", default=None, metavar="TASK",
              help="Task file, URL or shipped name; its games must start with one attacker "
                   "[default: world/tasks/scenario1_small_attacker.yaml, NetSecGame's benchmark setup].")
@click.option("--duration", default=DEFAULT_DURATION, show_default=True, type=click.FloatRange(0.05),
              help="Seconds measured per case (and per run of games-per-world), after a warm-up.")
@click.option("--cases", "patterns", default=None, metavar="NAMES",
              help="Comma-separated case names or glob patterns, e.g. 'lockstep,*parallel-64-*' (default: all).")
@click.option("--list", "list_cases", is_flag=True, help="List the cases and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per case on stdout, then a summary object (the table goes to stderr).")
@click.option("--markdown", is_flag=True, help="Print the table in Markdown (for BENCHMARKS.md).")
@click.option("--plot", "plot_file", default=None, metavar="FILE.png", type=click.Path(dir_okay=False),
              help="Draw steps/s against environments and worlds (needs the plot extra: matplotlib).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--trace-level", default="steps", show_default=True, type=click.Choice(["off", "episodes", "steps"]),
              help="The worlds' trace level.")
@click.option("--trace-subscriber/--no-trace-subscriber", default=True, show_default=True,
              help="Subscribe to the trace, so worlds really send it (a PUB without subscribers drops it early).")
@click.option("--check", is_flag=True, help="Exit 1 when a target the cases measured is missed (for CI).")
@click.option("--target", "target_goals", multiple=True, metavar="KEY=GOAL",
              help=f"Set a target's goal (repeatable); keys: {', '.join(TARGETS)}.")
def bench(task_location: str | None, duration: float, patterns: str | None, list_cases: bool, as_json: bool,
          markdown: bool, plot_file: str | None, seed: int, trace_level: str, trace_subscriber: bool, check: bool,
          target_goals: tuple[str, ...]) -> None:
    """Measure steps/s, latency and server CPU per step: in process, lock-step, parallel
    (1-256 envs over 1-4 worlds, batched and not), resets, games per world, and an echo
    world's ceiling; then a table and the DESIGN §6 targets (and --json, --plot).
    Cases whose extra is not installed are skipped; exits 1 when a case failed, or with
    --check when a target is missed."""
    cases = select_cases(patterns)
    goals = _goals(target_goals)
    if list_cases:
        for case in cases:
            click.echo(f"{case.name:<32} {case.kind:<10} {case.describe()}")
        return
    if plot_file:
        try:
            require("arena bench --plot", "plot", "matplotlib")
        except MissingExtraError as error:
            raise click.ClickException(str(error)) from None
    location = _task_location(task_location)
    try:
        task = load_task(location)
    except TaskConfigError as error:
        raise click.ClickException(str(error)) from None
    if dict(task.start) != {AgentRole.Attacker: 1}:
        raise click.ClickException(f"task {task.name}: arena bench needs games that start with one attacker "
                                   f"(arena.start is {({r.value: n for r, n in task.start.items()})})")
    try:
        script = record_script(task, seed)
    except ScriptError as error:
        raise click.ClickException(str(error)) from None
    settings = Settings(task=task, script=script, duration=duration, seed=seed, trace=trace_level)
    missing = missing_extras(cases)
    skipped = [{"case": case.name, "kind": case.kind, "extra": case.extra,
                "skipped": f"needs the {case.extra} extra ({missing[case.extra].module} is not installed)"}
               for case in cases if case.extra in missing]
    for extra, error in missing.items():
        names = [case.name for case in cases if case.extra == extra]
        click.echo(f"arena bench: skipped {', '.join(names)}: they need the {extra} extra ({error.module} is not "
                   f"installed): {install_hint(extra)}", err=True)
    cases = [case for case in cases if case.extra not in missing]

    def on_result(result: dict[str, Any]) -> None:
        if as_json:
            click.echo(json.dumps(result))

    raise_open_file_limit()  # 256 agents at once, and the broker's connections to them
    load_before = load_average()
    started = time.perf_counter()
    with _progress(sum(_weight(case) for case in cases), show=True) as advance:
        results = run_suite(cases, settings, location, trace_subscriber=trace_subscriber, on_result=on_result,
                            advance=advance)
    for result in skipped:
        on_result(result)
    summary = summarise([*results, *skipped], time.perf_counter() - started,
                        {"task": task.name, "duration": duration, "seed": seed, "trace_level": trace_level,
                         "trace_subscriber": trace_subscriber}, load_before, goals)
    table = format_table([*results, *skipped], markdown=markdown)
    text = table + "\n\n" + format_summary(summary, markdown=markdown)
    if as_json:
        click.echo(json.dumps(summary))
    click.echo(text, err=as_json)
    if plot_file:
        plot(results, plot_file, f"arena bench: {task.name}, {duration:g} s per case")
        click.echo(f"plot written to {plot_file}", err=True)
    missed = missed_targets(summary) if check else []
    if missed:
        click.echo(f"arena bench --check: {len(missed)} of {len(summary['targets'])} targets missed: "
                   + "; ".join(f"{t['key']} = {t['value']:.4g} (goal {t['goal']})" for t in missed), err=True)
    elif check:
        click.echo(f"arena bench --check: {len(summary['targets'])} targets measured, all met"
                   if summary["targets"] else "arena bench --check: the cases run measure no target", err=True)
    if summary["failed"] or missed:
        sys.exit(1)
