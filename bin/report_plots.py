"""Drawing ``arena report``: PNG plots (matplotlib, the ``plot`` extra) and an HTML page.

Each plot function draws on a matplotlib ``Figure`` (the Agg canvas, never pyplot: no
global backend switch, no display needed) and returns the series it drew **read back
from the drawn artists** (line y-data, bar heights), so a test compares what is on the
picture, not what was meant to be, with the input numbers. matplotlib is imported when
drawing starts; without it :class:`MatplotlibMissingError` says which extra to install.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.extras import install_hint

from .report_data import AgentSeries, ReportData, moving_average

__all__ = ["MatplotlibMissingError", "draw_report", "episode_bins", "render_html", "require_matplotlib"]

log = logging.getLogger(__name__)

#: Action-mix panels at most (one per agent); further agents are left out and named in the log.
MAX_ACTION_PANELS = 12
#: Figure size in inches: 10 x 5 is 1000 x 500 pixels at dpi 100, 800 x 400 at dpi 80.
FIGSIZE = (10.0, 5.0)


class MatplotlibMissingError(RuntimeError):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    """Fail early, before reading files, when the ``plot`` extra is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as error:
        raise MatplotlibMissingError(
            f"arena report draws with matplotlib, the plot extra, which is not installed: {install_hint('plot')}"
        ) from error


def draw_report(data: ReportData, out: str | Path, *, window: int = 10, bins: int = 20, dpi: int = 100,
                title: str | None = None) -> dict[str, Any]:
    """Write the PNGs, ``series.json`` and ``index.html`` into ``out``; return the series
    (also in ``series.json``): ``{"window", "agents": [summary...], "plots": {name:
    {"file", "series"}}, "files": [...]}``."""
    require_matplotlib()
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    agents = [agent for agent in data.agents if agent.episodes]
    plots: dict[str, dict[str, Any]] = {}
    drawers: list[tuple[str, str, Callable[..., dict[str, Any] | None]]] = [
        ("returns", "Return per episode", _draw_returns),
        ("win_rate", "Win rate per episode", _draw_win_rate),
        ("lengths", "Episode length", _draw_lengths),
        ("actions", "Action-type mix over time", _draw_actions),
        ("detection", "Detection rate (attackers)", _draw_detection),
        ("comparison", "Per-agent comparison", _draw_comparison),
    ]
    for name, caption, drawer in drawers:
        figure = _figure()
        series = drawer(figure, agents, window=window, bins=bins)
        if series is None:  # nothing to show (no attackers, no step events, one agent)
            (directory / f"{name}.png").unlink(missing_ok=True)  # an earlier report's would look current
            continue
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        file = f"{name}.png"
        figure.savefig(directory / file, dpi=dpi, metadata={"Software": None})  # same input, same bytes
        plots[name] = {"file": file, "caption": caption, "series": series}
    result = {
        "window": window,
        "bins": bins,
        "agents": [agent.summary() for agent in agents],
        "sources": [source.as_dict() for source in data.sources],
        "plots": plots,
    }
    (directory / "series.json").write_text(json.dumps(result, indent=1) + "\n")
    (directory / "index.html").write_text(render_html(result, title or "arena report"))
    result["files"] = [str(directory / plot["file"]) for plot in plots.values()]
    result["files"] += [str(directory / "series.json"), str(directory / "index.html")]
    return result


def _figure() -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=FIGSIZE)


def _episodes_axis(agent: AgentSeries) -> list[int]:
    return list(range(1, len(agent.episodes) + 1))


def _floats(values: Any) -> list[float]:
    return [float(value) for value in values]


def _legend(axes: Any, count: int) -> None:
    if count:
        axes.legend(fontsize="small", ncol=1 if count <= 8 else 2)


def _draw_lines(figure: Any, agents: list[AgentSeries], values: Callable[[AgentSeries], list[float]], *,
                window: int, raw: bool, ylabel: str, ylim: tuple[float, float] | None = None,
                key: str) -> dict[str, Any]:
    """One moving-average line per agent (and the raw values, faint, when ``raw``)."""
    axes = figure.add_subplot()
    drawn: dict[str, Any] = {}
    for index, agent in enumerate(agents):
        x = _episodes_axis(agent)
        colour = f"C{index % 10}"
        series: dict[str, Any] = {"x": x, key: _floats(values(agent))}
        if raw:
            (line,) = axes.plot(x, series[key], ".", color=colour, alpha=0.35, markersize=4)
            series[key] = _floats(line.get_ydata())
        (average,) = axes.plot(x, moving_average(series[key], window), color=colour, linewidth=2,
                               label=agent.label)
        series["moving_average"] = _floats(average.get_ydata())
        drawn[agent.label] = series
    axes.set_xlabel("episode")
    axes.set_ylabel(f"{ylabel} (moving average of {window})")
    if ylim:
        axes.set_ylim(*ylim)
    axes.grid(True, alpha=0.3)
    _legend(axes, len(agents))
    return drawn


def _draw_returns(figure: Any, agents: list[AgentSeries], *, window: int, **_: Any) -> dict[str, Any]:
    drawn = _draw_lines(figure, agents, AgentSeries.returns, window=window, raw=True, ylabel="return",
                        key="return")
    figure.axes[0].set_title("Return per episode (dots: each episode)")
    return drawn


def _draw_win_rate(figure: Any, agents: list[AgentSeries], *, window: int, **_: Any) -> dict[str, Any]:
    drawn = _draw_lines(figure, agents, AgentSeries.wins, window=window, raw=False, ylabel="win rate",
                        ylim=(-0.03, 1.03), key="win")
    figure.axes[0].set_title("Win rate (end reason Success)")
    return drawn


def _draw_lengths(figure: Any, agents: list[AgentSeries], *, window: int, **_: Any) -> dict[str, Any]:
    drawn = _draw_lines(figure, agents, AgentSeries.lengths, window=window, raw=True, ylabel="steps",
                        key="steps")
    figure.axes[0].set_title("Episode length in steps (dots: each episode)")
    return drawn


def _draw_detection(figure: Any, agents: list[AgentSeries], *, window: int, **_: Any) -> dict[str, Any] | None:
    attackers = [agent for agent in agents if agent.is_attacker]
    if not attackers:
        return None
    drawn = _draw_lines(figure, attackers, AgentSeries.detections, window=window, raw=False,
                        ylabel="detection rate", ylim=(-0.03, 1.03), key="detected")
    figure.axes[0].set_title("Detection rate of attackers (end reason Fail)")
    return drawn


def episode_bins(count: int, bins: int) -> list[tuple[int, int]]:
    """``count`` episodes in at most ``bins`` contiguous, near-equal bins: (first, last), 1-based.

    >>> episode_bins(5, 2)
    [(1, 2), (3, 5)]
    """
    bins = max(1, min(bins, count))
    edges = [i * count // bins for i in range(bins + 1)]
    return [(edges[i] + 1, edges[i + 1]) for i in range(bins)]


def _draw_actions(figure: Any, agents: list[AgentSeries], *, bins: int, **_: Any) -> dict[str, Any] | None:
    """Stacked bars per agent: each episode bin's share of each action type."""
    shown = [agent for agent in agents if any(episode.actions for episode in agent.episodes)]
    if not shown:
        return None  # trajectories always have actions; a trace recorded at level "episodes" has none
    if len(shown) > MAX_ACTION_PANELS:
        log.warning("action mix: %d agents, showing the first %d (left out: %s)", len(shown), MAX_ACTION_PANELS,
                    ", ".join(agent.label for agent in shown[MAX_ACTION_PANELS:]))
        shown = shown[:MAX_ACTION_PANELS]
    width, _ = FIGSIZE
    figure.set_size_inches(width, max(FIGSIZE[1], 2.4 * len(shown)))
    totals: Counter[str] = Counter()
    for agent in shown:
        for episode in agent.episodes:
            totals.update(episode.actions)
    types = sorted(totals, key=lambda name: (-totals[name], name))  # one order and colour per type in every panel
    colours = {name: f"C{index % 10}" for index, name in enumerate(types)}
    drawn: dict[str, Any] = {}
    axes_list = figure.subplots(len(shown), 1, squeeze=False)[:, 0]
    for axes, agent in zip(axes_list, shown, strict=True):
        ranges = episode_bins(len(agent.episodes), bins)
        used = set(agent.action_types())
        counts = {name: [sum(e.actions.get(name, 0) for e in agent.episodes[first - 1:last])
                         for first, last in ranges] for name in types if name in used}
        totals = [sum(column) for column in zip(*counts.values(), strict=True)]
        x = [(first + last) / 2 for first, last in ranges]
        widths = [last - first + 1 for first, last in ranges]
        bottom = [0.0] * len(ranges)
        fractions: dict[str, list[float]] = {}
        for name, column in counts.items():
            share = [c / t if t else 0.0 for c, t in zip(column, totals, strict=True)]
            bars = axes.bar(x, share, width=[w * 0.95 for w in widths], bottom=bottom, color=colours[name],
                            label=name)
            fractions[name] = [float(bar.get_height()) for bar in bars]
            bottom = [b + s for b, s in zip(bottom, share, strict=True)]
        axes.set_ylim(0, 1)
        axes.set_ylabel("share of steps")
        axes.set_title(f"{agent.label}: action types per bin of episodes", fontsize="medium")
        axes.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
        drawn[agent.label] = {"bins": [list(r) for r in ranges], "x": x, "counts": counts, "fractions": fractions}
    axes_list[-1].set_xlabel("episode")
    return drawn


def _draw_comparison(figure: Any, agents: list[AgentSeries], **_: Any) -> dict[str, Any] | None:
    """Win rate, detection rate (attackers) and mean return side by side, when there are several agents."""
    if len(agents) < 2:
        return None
    summaries = [agent.summary() for agent in agents]
    labels = [agent.label for agent in agents]
    rates, returns = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    positions = list(range(len(agents)))
    wins = rates.bar([p - 0.2 for p in positions], [s["win_rate"] for s in summaries], width=0.4, label="win rate",
                     color="tab:green")
    attackers = [p for p, s in zip(positions, summaries, strict=True) if s["detection_rate"] is not None]
    detections = rates.bar([p + 0.2 for p in attackers], [summaries[p]["detection_rate"] for p in attackers],
                           width=0.4, label="detection rate", color="tab:red")
    rates.set_ylim(0, 1.05)
    rates.set_xticks(positions, labels, rotation=20, ha="right", fontsize="small")
    rates.set_title("Win and detection rate")
    rates.legend(fontsize="small")
    rates.grid(True, axis="y", alpha=0.3)
    means = returns.bar(positions, [s["mean_return"] for s in summaries], color=[f"C{p % 10}" for p in positions])
    returns.axhline(0, color="black", linewidth=0.8)
    returns.set_xticks(positions, labels, rotation=20, ha="right", fontsize="small")
    returns.set_title("Mean return")
    returns.grid(True, axis="y", alpha=0.3)
    return {
        "labels": labels,
        "win_rate": [float(bar.get_height()) for bar in wins],
        "detection_rate": {labels[p]: float(bar.get_height()) for p, bar in zip(attackers, detections, strict=True)},
        "mean_return": [float(bar.get_height()) for bar in means],
    }


# ---------------------------------------------------------------------- the page
def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _percent(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.1%}"


def render_html(result: dict[str, Any], title: str) -> str:
    """A small page: a table per agent, the files read (and what was skipped), the PNGs
    (referenced by name, next to the page). No script, no external resource."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(a['label'])}</td><td>{e(a['role'])}</td><td>{a['episodes']}</td>"
        f"<td>{_percent(a['win_rate'])}</td><td>{_percent(a['detection_rate'])}</td>"
        f"<td>{a['timeouts']}</td><td>{_number(a['mean_return'], 1)}</td><td>{_number(a['mean_length'], 1)}</td>"
        f"<td>{e(a['source'])}</td></tr>\n"
        for a in result["agents"])
    sources = "".join(
        f"<tr><td>{e(s['path'])}</td><td>{e(s['kind'])}</td><td>{s['records']}</td><td>{s['episodes']}</td>"
        f"<td>{s['partial']}</td><td>{s['corrupt']}</td><td>{s['ignored']}</td><td>{s['gaps']}</td></tr>\n"
        for s in result["sources"])
    figures = "".join(
        f'<figure><img src="{e(plot["file"])}" alt="{e(plot["caption"])}">'
        f"<figcaption>{e(plot['caption'])}</figcaption></figure>\n"
        for plot in result["plots"].values())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }} figcaption {{ color: #555; }}
</style></head>
<body>
<h1>{e(title)}</h1>
<p>Moving averages over the last {result['window']} episodes. Win: end reason Success; detection: an
attacker's Fail.</p>
<h2>Agents</h2>
<table>
<tr><th>agent</th><th>role</th><th>episodes</th><th>win rate</th><th>detection rate</th><th>timeouts</th>
<th>mean return</th><th>mean length</th><th>file</th></tr>
{rows}</table>
<h2>Files</h2>
<table>
<tr><th>file</th><th>kind</th><th>records</th><th>episodes</th><th>cut lines</th><th>corrupt lines</th>
<th>other lines</th><th>trace gaps</th></tr>
{sources}</table>
<h2>Plots</h2>
{figures}</body></html>
"""
