"""``arena replay``: one episode of a trajectory file, step by step.

A trajectory file holds one episode per line in NetSecGame's shape (reference
netsecgame.md §3.7): ``{"trajectory": {"states", "actions", "rewards"}, "end_reason",
"agent_role", "agent_name"}``, n actions, n rewards, n + 1 states. The world writes them
when a task sets ``env.save_trajectories``; :class:`agents.TrajectoryRecorder` writes the
same. Lines a kill cut short, and lines that are not JSON, are skipped and reported in one
line (how many, of what kind, the first few line numbers; :func:`skipped_summary`).

Reading what an agent did from raw states is hard: each holds everything the agent knows.
A replay shows, per step, the action in short form, its reward and only what the step
changed (:class:`bin.replay_diff.StateChange`)::

    step 1: ScanNetwork 192.168.2.2 -> 192.168.1.0/24  reward -1
      + host 192.168.1.2

>>> empty = GameState().as_dict
>>> record = {"trajectory": {"states": [empty, empty], "rewards": [-1], "actions": [
...     {"action_type": "ActionType.FindData",
...      "parameters": {"source_host": {"ip": "10.0.0.2"}, "target_host": {"ip": "10.0.0.2"}}}]},
...     "end_reason": None, "agent_role": "Attacker", "agent_name": "Alice"}
>>> episode = Episode.from_record(record, index=1, line=1)
>>> print(episode.replay().steps[0].text())
step 1: FindData 10.0.0.2 -> 10.0.0.2  reward -1
  (no change)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from protocol import Action, GameState
from protocol.jsonl import JsonlReport, read_jsonl_report

from .replay_diff import StateChange, StateDelta

__all__ = ["Episode", "Replay", "Step", "TrajectoryError", "action_text", "read_episodes", "replay",
           "skipped_summary"]

class TrajectoryError(ValueError):
    """A JSON line that is not a trajectory in NetSecGame's shape."""


def _number(value: float) -> str:
    """Rewards as the game gives them: ``-1``, not ``-1.0``; ``0.5`` stays."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _end_text(end_reason: str | None) -> str:
    return end_reason.removeprefix("AgentStatus.") if end_reason else "-"


# Short forms: the parameters to show, in order, and how to join them.
_SHORT_FORMS: dict[str, tuple[tuple[str, ...], str]] = {
    "ScanNetwork": (("source_host", "target_network"), "{} -> {}"),
    "FindServices": (("source_host", "target_host"), "{} -> {}"),
    "FindData": (("source_host", "target_host"), "{} -> {}"),
    "ExploitService": (("source_host", "target_host", "target_service"), "{} -> {} {.name}"),
    "ExfiltrateData": (("data", "source_host", "target_host"), "({0.owner}, {0.id}) {1} -> {2}"),
    "BlockIP": (("source_host", "target_host", "blocked_host"), "{} -> {} block {}"),
}


def action_text(action: Action) -> str:
    """An action in one short line; parameters it does not expect are shown as ``key=value``.

    >>> from protocol import IP, ActionType, Network
    >>> action_text(Action(ActionType.ScanNetwork, {"source_host": IP("192.168.2.2"),
    ...                                             "target_network": Network("192.168.1.0", 24)}))
    'ScanNetwork 192.168.2.2 -> 192.168.1.0/24'
    """
    name, parameters = action.action_type.value, dict(action.parameters)
    if name == "BlockIP" and "blocked_ip" in parameters and "blocked_host" not in parameters:
        parameters["blocked_host"] = parameters.pop("blocked_ip")
    keys, template = _SHORT_FORMS.get(name, ((), ""))
    if keys and all(key in parameters for key in keys):
        text = f"{name} " + template.format(*(parameters.pop(key) for key in keys))
    else:
        text = name
    rest = " ".join(f"{key}={value}" for key, value in parameters.items())
    return f"{text} {rest}" if rest else text


@attrs.frozen
class Step:
    """One step of a replay: the action, its reward and what it changed."""

    number: int
    action: Action
    reward: float
    change: StateChange

    def text(self) -> str:
        changes = "\n".join(f"  {line}" for line in self.change.lines())
        return f"step {self.number}: {action_text(self.action)}  reward {_number(self.reward)}\n{changes}"

    @property
    def as_dict(self) -> dict[str, Any]:
        return {"step": self.number, "action": self.action.as_dict, "action_text": action_text(self.action),
                "reward": self.reward, **self.change.as_dict}


@attrs.frozen
class Replay:
    """An episode's start state and its steps."""

    start: GameState
    steps: tuple[Step, ...]


@attrs.frozen
class Episode:
    """One trajectory line: who played and how it went; states and actions are parsed
    only when the episode is replayed (a file may hold thousands of long episodes)."""

    index: int  # 1-based, among the episodes shown
    line: int | None  # in the file, when known
    agent_name: str
    agent_role: str
    end_reason: str | None
    rewards: tuple[float, ...]
    record: dict[str, Any] = attrs.field(eq=False, repr=False)

    @classmethod
    def from_record(cls, record: Any, *, index: int, line: int | None) -> Episode:
        """Check a record's shape (the lists and their lengths); raise TrajectoryError if wrong."""
        if not isinstance(record, dict) or not isinstance(record.get("trajectory"), dict):
            raise TrajectoryError("expected an object with a 'trajectory' object")
        trajectory = record["trajectory"]
        lists = {key: trajectory.get(key) for key in ("states", "actions", "rewards")}
        for key, value in lists.items():
            if not isinstance(value, list):
                raise TrajectoryError(f"expected 'trajectory.{key}' to be a list")
        actions, rewards, states = len(lists["actions"]), len(lists["rewards"]), len(lists["states"])
        if rewards != actions or states != actions + 1:
            raise TrajectoryError(f"{actions} actions need {actions} rewards and {actions + 1} states, "
                                  f"got {rewards} and {states}")
        if not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in lists["rewards"]):
            raise TrajectoryError("expected every reward to be a number")
        end_reason = record.get("end_reason")
        return cls(index=index, line=line, agent_name=str(record.get("agent_name", "?")),
                   agent_role=str(record.get("agent_role", "?")),
                   end_reason=None if end_reason is None else str(end_reason),
                   rewards=tuple(lists["rewards"]), record=record)

    @property
    def steps(self) -> int:
        return len(self.rewards)

    @property
    def total_return(self) -> float:
        return sum(self.rewards)

    def replay(self) -> Replay:
        """Parse states and actions and diff consecutive states; TrajectoryError names the bad one."""
        trajectory = self.record["trajectory"]
        try:
            states = [GameState.from_dict(state) for state in trajectory["states"]]
        except ValueError as error:
            raise TrajectoryError(f"a state is not a NetSecGame state: {error}") from None
        steps = []
        for number, (raw, reward) in enumerate(zip(trajectory["actions"], self.rewards, strict=True), start=1):
            try:
                action = Action.from_dict(raw)
            except ValueError as error:
                raise TrajectoryError(f"action {number} is not a NetSecGame action: {error}") from None
            steps.append(Step(number, action, reward, StateChange.between(states[number - 1], states[number])))
        return Replay(states[0], tuple(steps))

    @property
    def summary(self) -> dict[str, Any]:
        return {"episode": self.index, "line": self.line, "agent_name": self.agent_name,
                "agent_role": self.agent_role, "steps": self.steps, "return": self.total_return,
                "end_reason": self.end_reason}

    def header(self, count: int) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return (f"episode {self.index} of {count}{where}: {self.agent_name} ({self.agent_role}), "
                f"{self.steps} steps, return {_number(self.total_return)}, end reason {_end_text(self.end_reason)}")


# --------------------------------------------------------------------------- reading


@contextlib.contextmanager
def _quiet_jsonl_log() -> Iterator[None]:
    """The reader logs skipped lines; ``arena replay`` reports them itself, once."""
    logger = logging.getLogger("protocol.jsonl")

    def drop(_record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _record_lines(path: str | os.PathLike[str], report: JsonlReport) -> list[int | None]:
    """The line number of each record: the non-blank lines the reader did not skip."""
    skipped = {line.number for line in report.skipped}
    with open(path, "rb") as handle:
        numbers = [n for n, raw in enumerate(handle, start=1) if not raw.isspace() and n not in skipped]
    return numbers if len(numbers) == len(report.records) else [None] * len(report.records)


def read_episodes(path: str | os.PathLike[str]) -> tuple[list[Episode], JsonlReport]:
    """Every episode of a trajectory file, and the reader's report of the lines it skipped.

    Raises TrajectoryError naming the line of the first record that is not a trajectory.
    """
    with _quiet_jsonl_log():
        report = read_jsonl_report(path)
    episodes = []
    for index, (record, line) in enumerate(zip(report.records, _record_lines(path, report), strict=True), 1):
        try:
            episodes.append(Episode.from_record(record, index=index, line=line))
        except TrajectoryError as error:
            where = f"line {line}" if line is not None else f"record {index}"
            raise TrajectoryError(f"{where} is not a trajectory: {error}") from None
    return episodes, report


@contextlib.contextmanager
def _readable(file: str) -> Iterator[str]:
    """A path to read ``file`` from; ``-`` is standard input, copied to a temporary file."""
    if file != "-":
        yield file
        return
    with tempfile.TemporaryDirectory(prefix="arena-replay-") as directory:
        path = Path(directory) / "stdin.jsonl"
        with path.open("wb") as sink:
            shutil.copyfileobj(sys.stdin.buffer, sink)
        yield str(path)


def _select(episodes: list[Episode], agent: str | None) -> list[Episode]:
    if agent is None:
        return episodes
    names = sorted({episode.agent_name for episode in episodes})
    if agent not in names:
        raise click.BadParameter(f"no episode of {agent!r} in the file (agents: {', '.join(names) or 'none'})",
                                 param_hint="--agent")
    chosen = [episode for episode in episodes if episode.agent_name == agent]
    return [attrs.evolve(episode, index=index) for index, episode in enumerate(chosen, 1)]


def _list_table(episodes: Sequence[Episode]) -> list[str]:
    header = ("#", "line", "agent", "role", "steps", "return", "end reason")
    rows = [header] + [(str(e.index), "?" if e.line is None else str(e.line), e.agent_name, e.agent_role,
                        str(e.steps), _number(e.total_return), _end_text(e.end_reason)) for e in episodes]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    right = {0, 1, 4, 5}  # numbers
    return ["  ".join(cell.rjust(width) if column in right else cell.ljust(width)
                      for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


# --------------------------------------------------------------------------- the command


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--episode", "number", default=1, show_default=True, type=int,
              help="Which episode, 1-based; negative counts from the end (-1: the last).")
@click.option("--list", "list_only", is_flag=True, help="List the episodes: agent, role, steps, return, end reason.")
@click.option("--agent", default=None, metavar="NAME", help="Only this agent's episodes (a file mixing agents).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: the episode, then one object per step.")
def replay(file: str, number: int, list_only: bool, agent: str | None, as_json: bool) -> None:
    """Replay an episode of a trajectory file (NetSecGame's JSONL, `-` for stdin) step by
    step: each action, its reward and what it changed in the agent's state."""
    shown = "<stdin>" if file == "-" else file
    episodes = _load(file, shown, agent)
    if list_only:
        for line in ([json.dumps(e.summary) for e in episodes] if as_json else _list_table(episodes)):
            click.echo(line)
        return
    count = len(episodes)
    if not (1 <= number <= count or -count <= number <= -1):
        raise click.BadParameter(f"{number} is out of range: {shown} has {count} episode"
                                 f"{'s' if count != 1 else ''}{' of ' + agent if agent else ''} "
                                 f"(1 to {count}, or -1 to -{count})", param_hint="--episode")
    episode = episodes[number - 1 if number > 0 else number]
    try:
        played = episode.replay()
    except TrajectoryError as error:
        where = f"line {episode.line}" if episode.line is not None else f"episode {episode.index}"
        raise click.ClickException(f"{shown}: {where}: {error}") from None
    start = StateDelta.between(played.start, GameState())  # the start state, sorted
    if as_json:
        click.echo(json.dumps({**episode.summary, "episodes": count, "start": start.as_dict}))
        for step in played.steps:
            click.echo(json.dumps(step.as_dict))
        return
    click.echo(episode.header(count))
    click.echo("start:")
    for line in start.lines("+") or ["(an empty state)"]:
        click.echo(f"  {line}")
    for step in played.steps:
        click.echo(step.text())


def _load(file: str, shown: str, agent: str | None) -> list[Episode]:
    """The file's episodes (of ``agent`` only, if given); skipped lines are reported on stderr."""
    try:
        with _readable(file) as path:
            episodes, report = read_episodes(path)
    except TrajectoryError as error:
        raise click.ClickException(f"{shown}: {error}") from None
    except OSError as error:
        raise click.ClickException(f"{shown}: {error.strerror or error}") from None
    if report.skipped:
        click.echo(skipped_summary(shown, report), err=True)
    if not episodes and report.skipped:
        raise click.ClickException(f"{shown}: no episodes: not one line is a trajectory in NetSecGame's JSON-lines "
                                   "shape (is it a trajectory file?)")
    episodes = _select(episodes, agent)
    if not episodes:
        raise click.ClickException(f"{shown}: no episodes")
    return episodes


#: Line numbers a skipped-lines summary names at most.
SHOWN_LINES = 5


def skipped_summary(shown: str, report: JsonlReport) -> str:
    """One line for all the lines the reader skipped: how many, of what kind, the first few.

    >>> from protocol.jsonl import SkippedLine
    >>> report = JsonlReport("f", skipped=[SkippedLine(n, 0, 9, "corrupt", "") for n in range(1, 8)])
    >>> skipped_summary("f", report)
    'f: skipped 7 lines (7 not JSON): lines 1, 2, 3, 4, 5, ...'
    """
    skipped = report.skipped
    kinds = [f"{len(lines)} {words}" for lines, words in ((report.partial, "cut short"), (report.corrupt, "not JSON"))
             if lines]
    numbers = ", ".join(str(line.number) for line in skipped[:SHOWN_LINES])
    more = ", ..." if len(skipped) > SHOWN_LINES else ""
    plural = "s" if len(skipped) != 1 else ""
    return f"{shown}: skipped {len(skipped)} line{plural} ({', '.join(kinds)}): line{plural} {numbers}{more}"
