"""What ``arena report`` plots, read from trajectory and trace JSON-lines files.

Two kinds of line are understood, told apart line by line (a file may even mix them):

* a **trajectory** in NetSecGame's shape (reference netsecgame.md §3.7), as worlds with
  ``env.save_trajectories`` and :class:`agents.TrajectoryRecorder` write them:
  ``{"trajectory": {"states", "actions", "rewards"}, "end_reason", "agent_role",
  "agent_name"}``; one episode each: return ``sum(rewards)``, length ``len(actions)``;
* a **trace message**, as ``arena monitor --jsonl`` writes them (PROTOCOL.md §6):
  ``{"topic", "publisher", "seq", "events": [...]}``; each ``episode`` event is an
  episode, and the ``step`` events before it give its actions.

Episodes are grouped per agent: per file and agent name (trajectories), per file, task,
role and agent name or seat (traces). Lines cut short by a crash are skipped and counted
(:func:`protocol.jsonl.read_jsonl_report`), and so are trace messages lost on the way
(jumps in a publisher's ``seq``): a report says what it could not see.

>>> agent = AgentSeries("red", "Attacker", "run.jsonl")
>>> agent.episodes += [Episode(95, 5, "AgentStatus.Success"), Episode(-13, 3, "AgentStatus.Fail")]
>>> agent.summary()["win_rate"], agent.summary()["detection_rate"], agent.summary()["mean_return"]
(0.5, 0.5, 41.0)
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from protocol.compact import ACTION_BY_CODE
from protocol.jsonl import read_jsonl_report

__all__ = ["AgentSeries", "Episode", "ReportData", "SourceFile", "load_report", "moving_average", "outcome_of"]

log = logging.getLogger(__name__)

#: end_reason (without its ``AgentStatus.`` prefix) -> outcome; anything else is "unfinished".
OUTCOMES = {"Success": "win", "Fail": "fail", "TimeoutReached": "timeout"}


def outcome_of(end_reason: Any) -> str:
    """``win``, ``fail`` (for an attacker: detected), ``timeout`` or ``unfinished``.

    >>> outcome_of("AgentStatus.Success"), outcome_of("Fail"), outcome_of(None)
    ('win', 'fail', 'unfinished')
    """
    if not isinstance(end_reason, str):
        return "unfinished"
    return OUTCOMES.get(end_reason.removeprefix("AgentStatus."), "unfinished")


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean of the last ``window`` values (fewer at the start), one per value.

    >>> moving_average([1, 2, 3, 4], 2)
    [1.0, 1.5, 2.5, 3.5]
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, not {window}")
    averages, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averages.append(total / min(index + 1, window))
    return averages


@attrs.define
class Episode:
    """One finished episode of one agent; ``actions`` counts its steps per action type
    (empty for a trace recorded without step events)."""

    ret: float
    steps: int
    end_reason: str | None
    actions: dict[str, int] = attrs.Factory(dict)

    @property
    def outcome(self) -> str:
        return outcome_of(self.end_reason)


@attrs.define
class AgentSeries:
    """One agent's episodes in the order they were played. ``label`` is unique in a report."""

    name: str
    role: str
    source: str
    task: str | None = None
    label: str = ""
    episodes: list[Episode] = attrs.Factory(list)

    @property
    def is_attacker(self) -> bool:
        """Only an attacker's Fail is a detection (a defender fails when the attack succeeds)."""
        return self.role == "Attacker"

    def returns(self) -> list[float]:
        return [episode.ret for episode in self.episodes]

    def lengths(self) -> list[int]:
        return [episode.steps for episode in self.episodes]

    def wins(self) -> list[int]:
        return [int(episode.outcome == "win") for episode in self.episodes]

    def detections(self) -> list[int]:
        return [int(episode.outcome == "fail") for episode in self.episodes]

    def action_types(self) -> list[str]:
        """Every action type this agent used, most used first (ties by name)."""
        totals: Counter[str] = Counter()
        for episode in self.episodes:
            totals.update(episode.actions)
        return [name for name, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]

    def summary(self) -> dict[str, Any]:
        count = len(self.episodes)
        outcomes = Counter(episode.outcome for episode in self.episodes)
        return {
            "label": self.label or self.name, "name": self.name, "role": self.role, "task": self.task,
            "source": self.source, "episodes": count,
            "wins": outcomes["win"], "fails": outcomes["fail"], "timeouts": outcomes["timeout"],
            "unfinished": outcomes["unfinished"],
            "win_rate": outcomes["win"] / count if count else 0.0,
            "detection_rate": (outcomes["fail"] / count if count else 0.0) if self.is_attacker else None,
            "mean_return": sum(self.returns()) / count if count else 0.0,
            "mean_length": sum(self.lengths()) / count if count else 0.0,
        }


@attrs.define
class SourceFile:
    """What one input file held, and what was skipped or missing in it."""

    path: str
    kind: str = "empty"  # trajectories | trace | mixed | empty
    records: int = 0
    episodes: int = 0
    partial: int = 0  # lines cut short by a crash (skipped)
    corrupt: int = 0  # complete lines that are not JSON (skipped)
    ignored: int = 0  # JSON lines that are neither a trajectory nor a trace message
    empty_trajectories: int = 0  # no action and no end: a reset right after a reset
    gaps: int = 0  # trace messages lost (jumps in a publisher's seq)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class ReportData:
    agents: list[AgentSeries] = attrs.Factory(list)
    sources: list[SourceFile] = attrs.Factory(list)

    @property
    def episodes(self) -> int:
        return sum(len(agent.episodes) for agent in self.agents)


def load_report(paths: Iterable[str | os.PathLike[str]], *, by_seat: bool = False,
                on_file: Callable[[SourceFile], None] | None = None) -> ReportData:
    """Read every file into per-agent episode series. ``by_seat``: trace episodes grouped
    by seat rather than by agent name. ``on_file`` is called after each file (progress)."""
    data = ReportData()
    for path in paths:
        source, agents = _read_file(path, by_seat)
        data.sources.append(source)
        data.agents += agents
        if on_file is not None:
            on_file(source)
    _assign_labels(data.agents)
    return data


def _read_file(path: str | os.PathLike[str], by_seat: bool) -> tuple[SourceFile, list[AgentSeries]]:
    report = read_jsonl_report(path)
    source = SourceFile(os.fspath(path), records=len(report.records), partial=len(report.partial),
                        corrupt=len(report.corrupt))
    agents: dict[tuple[Any, ...], AgentSeries] = {}
    trace = _TraceReader(source, agents, by_seat)
    kinds = set()
    for record in report.records:
        if isinstance(record, dict) and isinstance(record.get("trajectory"), dict):
            kinds.add("trajectories")
            _add_trajectory(record, source, agents)
        elif isinstance(record, dict) and isinstance(record.get("events"), list):
            kinds.add("trace")
            trace.add_message(record)
        else:
            source.ignored += 1
    source.kind = "mixed" if len(kinds) > 1 else next(iter(kinds), "empty")
    series = [agent for agent in agents.values() if agent.episodes]
    source.episodes = sum(len(agent.episodes) for agent in series)
    if source.ignored:
        log.warning("%s: %d lines are neither trajectories nor trace messages", source.path, source.ignored)
    if source.gaps:
        log.warning("%s: %d trace messages were lost before they were recorded (seq gaps)", source.path, source.gaps)
    return source, series


def _action_name(value: Any) -> str:
    return str(value).removeprefix("ActionType.")


def _add_trajectory(record: dict[str, Any], source: SourceFile, agents: dict[tuple[Any, ...], AgentSeries]) -> None:
    trajectory = record["trajectory"]
    actions = trajectory.get("actions") or []
    rewards = trajectory.get("rewards") or []
    end_reason = record.get("end_reason")
    if not actions and not end_reason:
        source.empty_trajectories += 1  # NetSecGame saves one at a reset that follows a reset
        return
    name = str(record.get("agent_name") or Path(source.path).stem)
    role = _action_name(record.get("agent_role") or "?").removeprefix("AgentRole.")
    agent = agents.get((name, role))
    if agent is None:
        agent = agents[(name, role)] = AgentSeries(name, role, source.path)
    counts = Counter(_action_name(action.get("action_type")) for action in actions if isinstance(action, dict))
    agent.episodes.append(Episode(float(sum(rewards)), len(actions), end_reason, dict(counts)))


class _TraceReader:
    """Trace messages to episodes: step events are counted per (task, game, seat, episode)
    until that seat's episode event arrives."""

    def __init__(self, source: SourceFile, agents: dict[tuple[Any, ...], AgentSeries], by_seat: bool) -> None:
        self.source = source
        self.agents = agents
        self.by_seat = by_seat
        self.last_seq: dict[str, int] = {}
        self.names: dict[tuple[Any, ...], str] = {}
        self.pending: dict[tuple[Any, ...], Counter[str]] = {}

    def add_message(self, message: dict[str, Any]) -> None:
        publisher, seq = str(message.get("publisher")), message.get("seq")
        if isinstance(seq, int):
            previous = self.last_seq.get(publisher)
            if previous is not None and seq > previous + 1:
                self.source.gaps += seq - previous - 1
            self.last_seq[publisher] = seq
        for event in message["events"]:
            if isinstance(event, dict):
                self._add_event(event)

    def _add_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        seat_key = (event.get("task"), event.get("game"), event.get("seat"))
        if kind == "join":
            self.names[seat_key] = str(event.get("name") or event.get("seat"))
        elif kind == "step":
            action = event.get("action")
            code = action[0] if isinstance(action, list) and action else None
            name = ACTION_BY_CODE[code].value if isinstance(code, int) and 0 <= code < len(ACTION_BY_CODE) else "?"
            self.pending.setdefault((*seat_key, event.get("episode")), Counter())[name] += 1
        elif kind == "episode":
            actions = self.pending.pop((*seat_key, event.get("episode")), Counter())
            role = str(event.get("role"))
            task = event.get("task")
            seat = str(event.get("seat"))
            name = seat if self.by_seat else self.names.get(seat_key, seat)
            agent = self.agents.get((task, role, name))
            if agent is None:
                agent = self.agents[(task, role, name)] = AgentSeries(name, role, self.source.path, task)
            agent.episodes.append(Episode(float(event.get("return") or 0), int(event.get("steps") or 0),
                                          event.get("end_reason"), dict(actions)))


def _assign_labels(agents: list[AgentSeries]) -> None:
    """``name (role)``, made unique with the file's name, then the task, then a number."""
    steps: list[Callable[[AgentSeries], str]] = [
        lambda a: f"{a.name} ({a.role})",
        lambda a: f"{a.name} ({a.role}, {Path(a.source).name})",
        lambda a: f"{a.name} ({a.role}, {Path(a.source).name}, {a.task})",
    ]
    for agent in agents:
        agent.label = steps[0](agent)
    for make in steps[1:]:
        counts = Counter(agent.label for agent in agents)
        for agent in agents:
            if counts[agent.label] > 1:
                agent.label = make(agent)
    counts = Counter(agent.label for agent in agents)
    seen: Counter[str] = Counter()
    for agent in agents:
        if counts[agent.label] > 1:
            seen[agent.label] += 1
            agent.label = f"{agent.label} #{seen[agent.label]}"
