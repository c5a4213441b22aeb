"""Reporting for ``arena bench``: the table (plain or Markdown), the summary with the
DESIGN §6 targets, and the plot of steps/s against environments and worlds.

>>> row = {"case": "lockstep", "unit": "step", "per_second": 2500.0, "episodes": 98, "latency_p50_ms": 0.39,
...        "latency_p99_ms": 0.8, "world_cpu_us": 120.0, "broker_cpu_us": 90.0, "server_cpu_us": 210.0,
...        "client_cpu_us": 150.0, "echo_fraction": 0.5}
>>> print(format_table([row], markdown=True).splitlines()[2])
| lockstep | 2,500 steps/s | 98 | 0.39 | 0.80 | 120 | 90 | 210 | 150 | 50 % |
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

import msgpack
import zmq

__all__ = ["NETSECGAME_STEPS_PER_SECOND", "TARGETS", "format_summary", "format_table", "load_average", "machine",
           "missed_targets", "plot", "summarise"]

#: NetSecGame 0.2.0's steps/s on a 2-core machine, one random attacker (DESIGN §6 reference:
#: 380-510); the upper end, so the ratios below are conservative. Not measured by the bench.
NETSECGAME_STEPS_PER_SECOND = 510.0

#: The targets the bench checks (DESIGN §6), by key (``arena bench --target KEY=GOAL``):
#: what is measured, the default goal, and whether the goal is a ceiling.
TARGETS: dict[str, tuple[str, float, bool]] = {
    "inprocess-steps": ("in-process world steps/s", 50_000, False),
    "lockstep-server-cpu": ("server CPU µs/step (world + broker), lockstep", 50, True),
    "parallel-server-cpu": ("server CPU µs/step (world + broker), parallel-64-2-batched", 50, True),
    "lockstep-ratio": ("lockstep steps/s ÷ NetSecGame's", 5, False),
    "parallel-ratio": ("parallel-64-2-batched steps/s ÷ NetSecGame's", 30, False),
    "games-per-world-flatness": ("world CPU per step (/proc), 1 to 256 games, max ÷ min", 1.2, True),
    "games-per-host-flatness": ("world work per step (in process), 1 to 256 games, max ÷ min", 1.2, True),
}

_COLUMNS = ("case", "rate", "episodes", "p50 ms", "p99 ms", "world µs", "broker µs", "server µs", "client µs",
            "of echo")


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for result in results:
        if "error" in result:
            rows.append((result["case"], f"FAILED: {result['error']}", *("",) * (len(_COLUMNS) - 2)))
            continue
        if "skipped" in result:
            rows.append((result["case"], f"skipped: needs the {result['extra']} extra", *("",) * (len(_COLUMNS) - 2)))
            continue
        entries = [(result["case"], result)]
        entries += [(f"{result['case']} {entry['games']}", {**result, **entry, "episodes": None})
                    for entry in result.get("series", ())]
        for name, figures in entries:
            fraction = figures.get("echo_fraction")
            rows.append((name, f"{_number(figures['per_second'])} {figures['unit']}s/s",
                         _number(figures.get("episodes")), _number(figures.get("latency_p50_ms"), 2),
                         _number(figures.get("latency_p99_ms"), 2), _number(figures.get("world_cpu_us")),
                         _number(figures.get("broker_cpu_us")), _number(figures.get("server_cpu_us")),
                         _number(figures.get("client_cpu_us")),
                         "-" if fraction is None else f"{fraction * 100:.0f} %"))
    return rows


def format_table(results: Sequence[dict[str, Any]], *, markdown: bool = False) -> str:
    """One row per case (and per game count of ``games-per-world``); CPU columns are
    microseconds per operation (a step; a reset for ``resets``)."""
    rows = _rows(results)
    if markdown:
        lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "|".join("---" for _ in _COLUMNS) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(row[i])) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(text.ljust(widths[i]) if i == 0 else text.rjust(widths[i]) for i, text in enumerate(row))
             for row in [_COLUMNS, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def machine(load_before: float | None = None) -> dict[str, Any]:
    """What the figures were measured on, and the load average before the run."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": sys.version.split()[0], "platform": platform.platform(),
            "pyzmq": zmq.pyzmq_version(), "libzmq": zmq.zmq_version(),
            "msgpack": ".".join(map(str, msgpack.version)), "load_average_before": load_before}


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every figure)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _target(key: str, value: float | None, goals: dict[str, float]) -> dict[str, Any]:
    name, default, at_most = TARGETS[key]
    goal = goals.get(key, default)
    met = None if value is None else (value <= goal if at_most else value >= goal)
    return {"target": name, "key": key, "value": value, "goal": f"{'<=' if at_most else '>='} {goal:g}", "met": met}


def summarise(results: Sequence[dict[str, Any]], wall: float, settings: dict[str, Any],
              load_before: float | None = None, goals: dict[str, float] | None = None) -> dict[str, Any]:
    """The last JSON object: the run, the failed and skipped cases and the DESIGN §6
    targets that the cases run could check (``goals``: goals by target key, instead of
    the defaults of :data:`TARGETS`)."""
    goals = goals or {}
    ok = {result["case"]: result for result in results if "error" not in result and "skipped" not in result}
    targets = []
    if "inprocess" in ok:
        targets.append(_target("inprocess-steps", ok["inprocess"]["per_second"], goals))
    for name, key in (("lockstep", "lockstep-server-cpu"), ("parallel-64-2-batched", "parallel-server-cpu")):
        if name in ok:
            targets.append(_target(key, ok[name]["server_cpu_us"], goals))
    if "lockstep" in ok:
        targets.append(_target("lockstep-ratio", ok["lockstep"]["per_second"] / NETSECGAME_STEPS_PER_SECOND, goals))
    if "parallel-64-2-batched" in ok:
        targets.append(_target("parallel-ratio",
                               ok["parallel-64-2-batched"]["per_second"] / NETSECGAME_STEPS_PER_SECOND, goals))
    flatness = {}
    for name in ("games-per-world", "games-per-host"):
        if name in ok:
            games = ok[name]
            flatness[name] = {"world_cpu_us": {str(entry["games"]): entry["world_cpu_us"] for entry in games["series"]},
                              "ratio": games["flatness_ratio"]}
            targets.append(_target(f"{name}-flatness", games["flatness_ratio"], goals))
    return {"summary": True, "wall_seconds": wall, "cases": len(results),
            "failed": [result["case"] for result in results if "error" in result],
            "skipped": [result["case"] for result in results if "skipped" in result], **settings,
            "netsecgame_reference_steps_per_second": NETSECGAME_STEPS_PER_SECOND, "machine": machine(load_before),
            "flatness": flatness, "targets": targets}


def missed_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets measured and not met (``arena bench --check`` fails on them)."""
    return [target for target in summary["targets"] if target["met"] is False]


def format_summary(summary: dict[str, Any], *, markdown: bool = False) -> str:
    """The run, the flatness series and the targets; in Markdown, the targets as a table."""
    load = summary["machine"].get("load_average_before")
    cpus = summary["machine"]["cpus"]
    lines = [f"{summary['cases']} cases in {summary['wall_seconds']:.0f} s"
             + (f" (load average before the run {load:.2f}, {cpus} CPUs)" if load is not None else "")
             + (f"; FAILED: {', '.join(summary['failed'])}" if summary["failed"] else "")
             + (f"; skipped: {', '.join(summary['skipped'])}" if summary.get("skipped") else "")]
    for name, flatness in (summary.get("flatness") or {}).items():
        figures = ", ".join(f"{games}: {_number(value, 1)} µs" for games, value in flatness["world_cpu_us"].items())
        lines.append(f"{'* ' if markdown else ''}{name}: world CPU per step by active games (median of runs) "
                     f"{figures}; max/min {_number(flatness['ratio'], 2)}")
    if markdown:
        lines += ["", "| target (DESIGN §6) | measured | goal | |", "|---|---|---|---|"]
    for target in summary["targets"]:
        verdict = {True: "met", False: "NOT met", None: "?"}[target["met"]]
        size = abs(target["value"] or 0)
        value = _number(target["value"], 2 if size < 10 else 1 if size < 100 else 0)
        if markdown:
            lines.append(f"| {target['target']} | {value} | {target['goal']} | {verdict} |")
        else:
            lines.append(f"target {target.get('key', '')}: {target['target']} = {value} (goal {target['goal']}): "
                         f"{verdict}")
    return "\n".join(lines)


def plot(results: Sequence[dict[str, Any]], path: str, title: str) -> None:
    """Steps/s against environments, one line per world count and mode (echo faint)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 5))
    lines: dict[tuple[bool, int, bool], list[tuple[int, float]]] = {}
    for result in results:
        if result.get("kind") == "parallel" and "error" not in result:
            key = (result["echo"], result["worlds"], result["batched"])
            lines.setdefault(key, []).append((result["envs"], result["per_second"]))
    colours = {1: "tab:blue", 2: "tab:orange", 4: "tab:green"}
    for (echo, worlds, batched), points in sorted(lines.items()):
        points.sort()
        label = f"{'echo, ' if echo else ''}{worlds} world{'s' if worlds > 1 else ''}, " \
                f"{'batched' if batched else 'unbatched'}"
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label,
                  linestyle="-" if batched else "--", color=colours.get(worlds), alpha=0.35 if echo else 1.0,
                  linewidth=1 if echo else 2)
    axes.set_xscale("log", base=2)
    envs = sorted({envs for points in lines.values() for envs, _ in points})
    axes.set_xticks(envs, [str(count) for count in envs])
    axes.set_xlabel("environments (ParallelBaseAgent num_envs)")
    axes.set_ylabel("steps/s")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
