"""`arena monitor`'s dashboard: a snapshot of the trace figures (agents.trace_figures) as
rich tables. A pure function of the snapshot, so tests and ``--svg`` render it without a
terminal; `arena monitor` redraws it in place with ``rich.live.Live``.

>>> import io
>>> from rich.console import Console
>>> snapshot = {"seconds": 4.0, "window": 5.0, "messages": 3, "gaps": 0, "publishers": {}, "games": [],
...             "tasks": {"duel": {"agents": {"Attacker": 1}, "games": 1, "active_games": 1, "steps": 40,
...                                "steps_per_second": 10.0, "recent_steps_per_second": 10.0, "episodes": 2,
...                                "wins": 1, "detections": 1, "timeouts": 0, "resets": 1, "mean_return": 45.0,
...                                "mean_return_by_role": {"Attacker": 45.0}, "actions": {"ScanNetwork": 40}}}}
>>> console = Console(record=True, width=120, file=io.StringIO())
>>> console.print(render(snapshot, source="tcp://127.0.0.1:5572"))
>>> text = console.export_text()
>>> "duel" in text and "ScanNetwork" in text
True
"""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["export_svg", "render"]

#: Short role names for crowded cells.
ROLE_LETTERS = {"Attacker": "A", "Defender": "D", "Benign": "B"}
BAR_WIDTH = 24


def render(snapshot: dict[str, Any], *, source: str = "", actions: int = 5,
           notice: str | None = None) -> RenderableType:
    """The dashboard of one snapshot: a header, the tasks, the busiest games (those the
    snapshot lists), the ``actions`` most frequent action types per task, the publishers.
    ``notice``: what the monitor waits for (nothing answers at the address, ...), shown
    under the header."""
    parts: list[RenderableType] = [_header(snapshot, source)]
    if notice:
        parts.append(Text(notice, style="bold yellow"))
    if not snapshot["tasks"]:
        if not notice:
            parts.append(Text("waiting for trace events ...", style="dim"))
        return Group(*parts)
    parts.append(_tasks(snapshot, actions))
    if snapshot.get("games"):
        parts.append(_games(snapshot))
    if snapshot.get("publishers"):
        parts.append(_publishers(snapshot))
    return Group(*parts)


def export_svg(renderable: RenderableType, *, width: int = 120, title: str = "arena monitor") -> str:
    """``renderable`` as an SVG image (rich's terminal look), without a terminal."""
    console = Console(record=True, width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(renderable)
    return console.export_svg(title=title)


# --------------------------------------------------------------------------- parts
def _header(snapshot: dict[str, Any], source: str) -> Text:
    gaps = snapshot["gaps"]
    header = Text.assemble(("arena monitor", "bold"), "  ", (source, "cyan"), "  ",
                           f"{snapshot['seconds']:,.0f} s · {snapshot['messages']:,} messages · ",
                           (f"{gaps:,} gaps", "bold red" if gaps else "green"))
    if snapshot.get("publishers"):
        header.append(f" · {len(snapshot['publishers'])} publishers")
    return header


def _tasks(snapshot: dict[str, Any], actions: int) -> Columns:
    """One panel per task: its figures, then its most frequent action types."""
    return Columns([_task(name, task, snapshot, actions) for name, task in snapshot["tasks"].items()])


def _task(name: str, task: dict[str, Any], snapshot: dict[str, Any], limit: int) -> Panel:
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="cyan", no_wrap=True)
    figures.add_column(justify="right", no_wrap=True)
    figures.add_column(no_wrap=True)
    wins, detections, timeouts = _outcomes(task)
    rows: list[tuple[str, RenderableType, RenderableType]] = [
        ("agents", _roles(task["agents"]), ""),
        ("games", f"{task.get('active_games', task['games'])}", f"active, {task['games']} seen"),
        ("steps", f"{task['steps']:,}", ""),
        ("steps/s", _rate(task.get("recent_steps_per_second", 0.0)),
         f"last {snapshot.get('window', 5):g} s ({_rate(task['steps_per_second'])} overall)"),
        ("episodes", f"{task['episodes']:,}", f"attacker; {task.get('resets', 0):,} reset requests"),
        ("wins", wins, ""),
        ("detections", detections, ""),
        ("timeouts", timeouts, ""),
        ("mean return", f"{task['mean_return']:,.1f}" if task["episodes"] else "-",
         " · ".join(f"{role} {value:,.1f}" for role, value in task.get("mean_return_by_role", {}).items()
                    if role != "Attacker")),
    ]
    for label, value, note in rows:
        figures.add_row(label, value, Text(note, style="dim") if isinstance(note, str) else note)
    counts = task.get("actions", {})
    total = sum(counts.values())
    if counts:
        figures.add_row("", "", "")
        figures.add_row(Text("actions", style="bold cyan"), "", "")
    elif task["steps"] == 0:
        figures.add_row("actions", "-", Text("no step events (trace level 'episodes'?)", style="dim"))
    for action, count in list(counts.items())[:limit]:
        share = count / total
        figures.add_row(action, f"{count:,}", Text.assemble(("█" * max(1, round(share * BAR_WIDTH)), "magenta"),
                                                            f" {share:.0%}"))
    return Panel(figures, title=Text(name, style="bold"), title_align="left", box=box.ROUNDED, expand=False)


def _games(snapshot: dict[str, Any]) -> Table:
    """The games the snapshot lists (the busiest), under their tasks, busiest first."""
    total = sum(task["games"] for task in snapshot["tasks"].values())
    shown = snapshot["games"]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for game in shown:
        by_task.setdefault(game["task"], []).append(game)
    table = _table(f"Games: the {len(shown)} busiest of {total}", "A attacker · D defender · B benign; "
                   "wins, detections, timeouts: the attackers' episodes")
    table.add_column("task / game", no_wrap=True, max_width=32, overflow="ellipsis")
    for header in ("agents", "steps/s", "steps", "episodes", "wins", "detections", "timeouts", "mean return"):
        table.add_column(header, justify="left" if header == "agents" else "right", no_wrap=True)
    for task, games in by_task.items():
        table.add_row(Text(task, style="bold"))
        for index, game in enumerate(games):
            table.add_row(f"  {game['game']}", _roles(game["agents"]), _rate(game.get("recent_steps_per_second", 0.0)),
                          f"{game['steps']:,}", f"{game['episodes']:,}", *_outcomes(game, shares=False),
                          _by_role(game.get("mean_return_by_role", {})), end_section=index == len(games) - 1)
    return table


def _publishers(snapshot: dict[str, Any]) -> Table:
    table = _table("Publishers", "gaps: messages lost (sequence numbers skipped)")
    for header in ("publisher", "messages", "last seq", "gaps", "games", "seats"):
        table.add_column(header, justify="left" if header == "publisher" else "right")
    for name, publisher in snapshot["publishers"].items():
        gaps = publisher["gaps"]
        seq = publisher.get("seq")
        table.add_row(name, f"{publisher['messages']:,}", f"{seq:,}" if isinstance(seq, int) else "-",
                      Text(f"{gaps:,}", style="bold red" if gaps else ""),
                      str(publisher.get("games", "")), str(publisher.get("seats", "")))
    return table


# --------------------------------------------------------------------------- cells
def _table(title: str, caption: str | None) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", caption=caption, caption_justify="left",
                 box=box.SIMPLE_HEAD, header_style="bold cyan", pad_edge=False)


def _roles(counts: dict[str, int]) -> str:
    return " · ".join(f"{ROLE_LETTERS.get(role, role)} {count}" for role, count in counts.items()) or "-"


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def _outcomes(figures: dict[str, Any], *, shares: bool = True) -> tuple[Text, Text, Text]:
    episodes = figures["episodes"] if shares else 0

    def cell(count: int, style: str) -> Text:
        share = f" ({count / episodes:.0%})" if episodes else ""
        return Text(f"{count:,}{share}", style=style if count else "")

    return cell(figures["wins"], "green"), cell(figures["detections"], "red"), cell(figures["timeouts"], "yellow")


def _by_role(means: dict[str, float]) -> str:
    return " · ".join(f"{ROLE_LETTERS.get(role, role)} {value:,.1f}" for role, value in means.items()) or "-"
