"""What ``arena play`` does around its episode loops (``agents.play``): the progress bar,
the summary, what it says while it waits, and how it stops.

* **Stopping.** SIGINT and SIGTERM interrupt the play where it is; the client then
  leaves its game (QUIT, or the QUIT of a join still waiting, so no seat is left behind)
  and the summary of what was played is printed, marked partial (``"partial": true`` and
  a ``reason`` with ``--json``). The exit status is 128 + the signal's number (130 for
  SIGINT, 143 for SIGTERM), as a shell reports a process the signal ended; a second
  signal skips the goodbye. An error (a failed request, a timeout) also prints the
  partial summary, then exits 1.
* **Lost games.** GAME_LOST (the game's world died) is counted (``game_lost``) and the
  client joins again and goes on, unless ``--no-rejoin``: then it stops as on an error.
* **Waiting.** A request without a reply for 1 s is said once per kind on stderr: that
  nothing answers at the address (the client keeps trying until its timeout), or what
  the game waits for (the game to start, the other players' episodes or resets).
* **Progress.** A bar on stderr when it is a terminal; nothing when it is not (a pipe or
  a file gets no bar lines), and nothing with ``--json``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from agents.connection import Silence
from agents.play import EpisodeOutcome, GameLostError, PlayError, Summary, play_episodes, play_parallel, rounds_for
from agents.policies import POLICIES
from protocol import AgentRole, ArenaError, CurveClient

from .signals import Interrupted, interrupts

__all__ = ["WaitNotices", "print_summary", "progress", "run_play"]

def say(line: str) -> None:
    """One line on stderr; on a terminal, over the progress bar's line (it redraws)."""
    click.echo(f"\r\x1b[K{line}" if sys.stderr.isatty() else line, err=True)


class WaitNotices:
    """The client's ``on_silence``: each kind of wait said once per run, on stderr."""

    def __init__(self, where: Callable[[], str]) -> None:
        self.where = where
        self.said: list[str] = []

    def __call__(self, silence: Silence) -> None:
        if not silence.answering:
            kind = "silent"
            line = (f"nothing answers at {silence.endpoint} ({silence.why}); "
                    f"trying until the {silence.timeout:g} s timeout")
        else:
            kind = silence.commands[0]
            where = self.where()
            line = {
                "JOIN": f"waiting for the game to start{where}: its other players have not joined yet",
                "STEP": f"waiting for the other players to end their episodes{where}",
                "RESET": f"waiting for the other players to ask for a reset{where}",
            }.get(kind, "")
        if line and kind not in self.said:
            self.said.append(kind)
            say(f"arena play: {line}")


@contextmanager
def progress(episodes: int, label: str, summary: Summary, *, quiet: bool) -> Iterator[Callable[[EpisodeOutcome],
                                                                                               None]]:
    """A reporter of outcomes into ``summary``, with a progress bar on stderr when it is a
    terminal (not when ``quiet``, and not into a pipe or a file: no stray lines there)."""

    def figures(_: Any) -> str:
        return f"wins {summary.wins}/{summary.episodes}, {summary.steps} steps" if summary.episodes else ""

    if quiet or not sys.stderr.isatty():
        yield summary.add
        return
    with click.progressbar(length=episodes, label=label, item_show_func=figures, file=sys.stderr) as bar:
        def report(outcome: EpisodeOutcome) -> None:
            summary.add(outcome)
            bar.update(1, outcome)

        yield report


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    """The summary on stdout: one JSON object, or two lines (three when partial)."""
    if as_json:
        click.echo(json.dumps(summary))
        return
    outcomes = f"{summary['detections']} detections" if not summary.get("losses") else f"{summary['losses']} losses"
    lost = f", {summary['game_lost']} lost with their world" if summary.get("game_lost") else ""
    click.echo(f"{summary['episodes']} episodes: {summary['wins']} wins, {outcomes}, "
               f"{summary['timeouts']} timeouts{lost}; mean return {summary['mean_return']:.1f}")
    click.echo(f"{summary['steps']} steps, {summary['steps_per_second']:,.0f} steps/s")
    if summary.get("partial"):
        click.echo(f"partial: {summary.get('reason', 'stopped early')}")


def run_play(address: str, agent: str, role: AgentRole, *, task: str | None, game: str | None, episodes: int,
             envs: int, batched: bool, seed: int, timeout: float, as_json: bool, rejoin: bool,
             curve: CurveClient | None) -> int:
    """Play, print the summary (partial if stopped early) and return the exit status."""
    from agents import BaseAgent, ParallelBaseAgent

    summary = Summary()
    status = 0
    client: Any = None

    def where() -> str:
        name = game or (getattr(client, "game", None) if envs == 1 else None)
        return f" (game {name})" if name else f" (task {task})" if task else ""

    def game_lost(error: PlayError) -> None:
        summary.game_lost += 1
        why = getattr(error.failure, "message", None) or str(error)
        say(f"arena play: game lost ({why.rstrip('.')}); joining again")

    with interrupts():
        try:
            try:
                if envs == 1:
                    client = BaseAgent(address, role, task=task, game=game, name=f"arena-{agent}", timeout=timeout,
                                       curve=curve)
                    loop: Any = play_episodes
                    total = episodes
                else:
                    client = ParallelBaseAgent(address, role, envs, task=task, game=game, batched=batched,
                                               timeout=timeout, curve=curve)
                    loop = play_parallel
                    total = rounds_for(episodes, envs) * envs
                client.on_silence = WaitNotices(where)
                with progress(total, f"{agent} ({role.value})", summary, quiet=as_json) as report:
                    for outcome in loop(client, POLICIES[agent], episodes, random.Random(seed), rejoin=rejoin,
                                        on_game_lost=game_lost):
                        report(outcome)
            except Interrupted as signalled:
                summary.partial = f"interrupted by {signalled.name}"
                status = signalled.exit_status
            except ArenaError as error:
                summary.game_lost += isinstance(error, GameLostError)
                summary.partial = str(error)
                status = 1
            finally:
                if client is not None:
                    client.terminate_connection()
        except Interrupted as signalled:  # a signal while leaving (a second one): no goodbye
            status = status or signalled.exit_status
    if summary.partial is not None:
        click.echo(f"arena play: stopped: {summary.partial}", err=True)
    print_summary(summary.as_dict(), as_json)
    return status
