"""``arena monitor``: the trace's figures, live or from a recording (DESIGN §5).

On a terminal with ``rich`` (the ``monitor`` extra) it is a dashboard redrawn in place
(bin/dashboard.py); otherwise, and with ``--json``, it prints snapshots as lines, so
scripts and pipes get the same figures. ``--jsonl`` records every message with the
time it was received, and ``--from`` shows such a recording as it looked at its end.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import nullcontext
from typing import Any

import click

from agents.extras import install_hint
from agents.trace_figures import TraceFigures
from broker import DEFAULT_ENDPOINTS
from protocol.transport import NOTICE_AFTER

from .curve_options import curve_client, curve_client_options
from .signals import stop_on_signals

__all__ = ["LinkNotices", "monitor", "plain_lines"]

#: Seconds between two redraws of the dashboard.
REDRAW = 0.5
#: Seconds connected without a message before the monitor says it waits for events (a
#: world publishes an ``alive`` event every heartbeat, 1 s by default).
QUIET_AFTER = 3.0


@click.command()
@click.option("--trace", "address", default=DEFAULT_ENDPOINTS["trace"], show_default=True)
@click.option("--jsonl", type=click.Path(dir_okay=False),
              help="Append every trace message to this file (with the time it was received).")
@click.option("--from", "recording", type=click.Path(exists=True, dir_okay=False),
              help="Show a recording made with --jsonl instead of the live trace, and exit.")
@click.option("--once", is_flag=True,
              help="Collect for --seconds, print one snapshot and exit (exit 1, no snapshot, if nothing answered).")
@click.option("--json", "as_json", is_flag=True, help="Snapshots as JSON (--once --json: one, for scripts).")
@click.option("--seconds", default=2.0, show_default=True, type=click.FloatRange(0.1),
              help="With --once: how long to collect. Otherwise: how often to print a snapshot as text or JSON "
                   "(the dashboard redraws twice a second).")
@click.option("--duration", default=None, type=click.FloatRange(0.1), help="Stop after this many seconds.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(0),
              help="Games listed, busiest first (0: all).")
@click.option("--svg", type=click.Path(dir_okay=False), help="Also save the last dashboard as an SVG image.")
@curve_client_options
def monitor(address: str, jsonl: str | None, recording: str | None, once: bool, as_json: bool, seconds: float,
            duration: float | None, top: int, svg: str | None, curve_server: str | None,
            curve_secret: str | None) -> None:
    """Watch the trace: a live dashboard per task and per game (agents, steps/s, episodes,
    wins, detections, timeouts, returns, actions, gaps), snapshots as text or JSON, or
    every message to a JSONL file. Says within seconds when nothing answers at --trace
    (and keeps trying until --seconds, --duration or Ctrl-C); exits 1 if nothing ever did."""
    dashboard = _dashboard_module() if svg or not as_json else None
    if svg and dashboard is None:
        raise click.ClickException(f"--svg needs rich, the monitor extra: {install_hint('monitor')}")
    if dashboard is None and not as_json and _is_terminal():
        click.echo(f"arena monitor: text lines; the live dashboard needs rich, the monitor extra: "
                   f"{install_hint('monitor')}", err=True)
    live = dashboard is not None and not as_json and _is_terminal()
    limit = top or None
    if recording is not None:
        if jsonl:
            raise click.UsageError("--from shows a recording; --jsonl records the live trace: use one")
        from protocol.jsonl import read_jsonl

        snapshot = TraceFigures.replay(read_jsonl(recording)).snapshot(top=limit)
        _show(snapshot, as_json, dashboard if live else None, recording)
    else:
        snapshot = _watch(address, curve_client(curve_server, curve_secret), jsonl, once, as_json, seconds,
                          duration, limit, dashboard if live else None)
    if svg:
        assert dashboard is not None
        with open(svg, "w", encoding="utf-8") as handle:
            handle.write(dashboard.export_svg(dashboard.render(snapshot, source=recording or address)))


def _watch(address: str, curve: Any, jsonl: str | None, once: bool, as_json: bool, seconds: float,
           duration: float | None, top: int | None, dashboard: Any) -> dict[str, Any]:
    """Follow the live trace until the deadline or a signal; the last snapshot. Says
    within :data:`~protocol.transport.NOTICE_AFTER` s when nothing answers at ``address``
    (or what it waits for), and fails if nothing ever did."""
    from agents.monitor import TraceMonitor
    from protocol.jsonl import JsonlWriter


    figures = TraceFigures()
    stopping = threading.Event()
    started = time.monotonic()
    deadline = started + (seconds if once else duration or float("inf"))
    interval = REDRAW if dashboard is not None else seconds
    live = _live(dashboard, address) if dashboard is not None else nullcontext()
    notices = LinkNotices(address, deadline, started, echo=None if dashboard is not None else _echo_err)
    with (TraceMonitor(address, curve=curve) as subscriber, stop_on_signals(stopping.set),
          JsonlWriter(jsonl) if jsonl else nullcontext() as sink, live as screen):  # one descriptor for the run
        next_show = time.monotonic() + interval
        while not stopping.is_set() and time.monotonic() < deadline:
            wait = min(REDRAW, max(0.0, deadline - time.monotonic()), max(0.0, next_show - time.monotonic()))
            for topic, message in subscriber.receive(wait):
                figures.add_message(message)
                if sink is not None:
                    sink.append({"topic": topic, **message, "received": round(time.time(), 6)})
            now = time.monotonic()
            notices.check(subscriber.link, figures.messages, now)
            if now >= next_show:
                next_show += interval
                if next_show <= now:  # fell behind (a slow terminal): read before drawing again
                    next_show = now + interval
                if screen is not None:
                    screen.update(dashboard.render(figures.snapshot(top=top), source=address,
                                                   notice=notices.current), refresh=True)
                elif not once:
                    _show(figures.snapshot(top=top), as_json, None, address)
        notices.check(subscriber.link, figures.messages, time.monotonic())
        snapshot = figures.snapshot(top=top)
        if screen is not None:  # the dashboard stays on screen as it was at the end
            screen.update(dashboard.render(snapshot, source=address, notice=notices.current), refresh=True)
    if not notices.ever_up:  # nothing to show: "0 messages" would read as a quiet trace
        raise click.ClickException(f"nothing answered at {address} ({notices.reason}) "
                                   f"in {time.monotonic() - started:.1f} s")
    if screen is None:
        _show(snapshot, as_json, None, address)  # the figures at the end, always
    return snapshot


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


class LinkNotices:
    """What ``arena monitor`` says about its link while it waits: nothing answers at the
    address (at once on a refused handshake, else after NOTICE_AFTER s), answers again,
    or answers but sends nothing yet (after QUIET_AFTER s). ``echo`` prints a line (None: the dashboard shows
    :attr:`current`)."""

    def __init__(self, address: str, deadline: float, started: float, *, echo: Any) -> None:
        self.address, self.deadline, self.started, self.echo = address, deadline, started, echo
        self.ever_up = False
        self.reason = "no handshake yet"
        self.current: str | None = None  # the notice standing now
        self._said: str | None = None    # the kind of the last line said: silent, up, quiet, lost

    def _until(self, now: float) -> str:
        if self.deadline == float("inf"):
            return "until Ctrl-C"
        return f"for {max(0.0, self.deadline - now):.0f} more s"

    def _say(self, kind: str, line: str | None) -> None:
        self.current = line if kind != "up" else None
        if kind != self._said:
            self._said = kind
            if line and self.echo is not None:
                self.echo(f"arena monitor: {line}")

    def check(self, link: Any, messages: int, now: float) -> None:
        up = link.update()
        self.ever_up = self.ever_up or link.ever_up
        if up:
            self.reason = "no handshake yet"
            if messages or now - self.started < QUIET_AFTER:
                self._say("up", f"connected to {self.address}" if self._said in ("silent", "lost") else None)
            elif self._said != "quiet":
                self._say("quiet", f"connected to {self.address}; waiting for trace events (no world has "
                                   "published any yet: are worlds running with --trace-input?)")
            return
        self.reason = link.silence()
        refused = link.failure() is not None
        if link.lost:
            self._say("lost", f"the trace at {self.address} stopped answering ({self.reason}); "
                              f"still trying {self._until(now)}")
        elif refused or now - self.started >= NOTICE_AFTER:
            self._say("silent", f"nothing answers at {self.address} ({self.reason}); still trying {self._until(now)}")


def _live(dashboard: Any, address: str) -> Any:
    from rich.live import Live

    return Live(dashboard.render(TraceFigures().snapshot(), source=address), auto_refresh=False)


def _show(snapshot: dict[str, Any], as_json: bool, dashboard: Any, source: str) -> None:
    if as_json:
        click.echo(json.dumps(snapshot, default=str))
    elif dashboard is not None:
        from rich.console import Console

        Console().print(dashboard.render(snapshot, source=source))
    else:
        for line in plain_lines(snapshot):
            click.echo(line)


def plain_lines(snapshot: dict[str, Any]) -> list[str]:
    """The snapshot as text lines, for pipes, logs and terminals without rich."""
    lines = [f"[{snapshot['seconds']:.0f}s] {snapshot['messages']} messages, {snapshot['gaps']} gaps"]
    for name, task in snapshot["tasks"].items():
        lines.append(f"  {name}: {task['steps']} steps ({task['steps_per_second']:,.0f}/s), {task['episodes']} "
                     f"episodes, wins {task['wins']}, detections {task['detections']}, timeouts "
                     f"{task['timeouts']}, mean return {task['mean_return']:.1f}, games {task['games']}")
    for game in snapshot.get("games", ()):
        agents = ", ".join(f"{role} {count}" for role, count in game["agents"].items()) or "no agents"
        lines.append(f"    game {game['game']} ({game['task']}): {agents}; {game['steps']} steps "
                     f"({game['recent_steps_per_second']:,.0f}/s), {game['episodes']} episodes, wins {game['wins']}, "
                     f"detections {game['detections']}, timeouts {game['timeouts']}")
    return lines


def _is_terminal() -> bool:
    return sys.stdout.isatty()


def _dashboard_module() -> Any:
    """bin.dashboard, or None without rich."""
    try:
        from . import dashboard
    except ImportError:
        return None
    return dashboard
