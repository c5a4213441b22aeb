"""Figures from trace events (PROTOCOL.md §6), per task and per game: what `arena monitor` shows.

The trace is all a monitor has, so every figure comes from its events: agents present
from the seats seen on join, step, episode and reset events (a quit removes its seat),
so a monitor started mid-run still sees the players; attacker wins, detections and
timeouts from the attackers' episode events; actions from the compact action on step
events. Rates are measured on the monitor's clock, or on the receive times a recording
carries (``arena monitor --jsonl`` writes them as ``received``), so a recording gives
the figures it showed live.

>>> figures = TraceFigures()
>>> figures.add_message({"publisher": "w", "seq": 1, "events": [
...     {"kind": "step", "task": "t", "game": "g", "seat": "s1", "role": "Attacker", "action": [0, "10.0.0.0/24"]},
...     {"kind": "episode", "task": "t", "game": "g", "seat": "s1", "role": "Attacker", "return": 95,
...      "end_reason": "AgentStatus.Success", "steps": 1}]})
>>> task = figures.snapshot()["tasks"]["t"]
>>> task["wins"], task["agents"], task["actions"]
(1, {'Attacker': 1}, {'ScanNetwork': 1})
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from protocol.compact import ACTION_BY_CODE

__all__ = ["Figures", "TaskFigures", "TraceFigures", "action_name"]

ATTACKER = "Attacker"
#: An attacker's episode end reason -> the counter it adds to.
OUTCOMES = {"AgentStatus.Success": "wins", "AgentStatus.Fail": "detections", "AgentStatus.TimeoutReached": "timeouts"}
#: Seconds of the sliding window for recent rates, and the width of its buckets.
WINDOW = 5.0
BUCKET = 0.25


def action_name(code: Any) -> str:
    """The ActionType name of a compact action's type code (PROTOCOL.md §4).

    >>> action_name(3), action_name(99)
    ('ExploitService', 'code 99')
    """
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < len(ACTION_BY_CODE):
        return ACTION_BY_CODE[code].value
    return f"code {code}"


class Rate:
    """Counts in short time buckets, for a rate over the last ``window`` seconds without
    keeping one entry per event."""

    __slots__ = ("buckets", "window")

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self.buckets: deque[list[int]] = deque()  # [bucket index, count], oldest first

    def add(self, now: float, count: int = 1) -> None:
        index = math.floor(now / BUCKET)
        if self.buckets and self.buckets[-1][0] >= index:  # same bucket (or a clock that stepped back)
            self.buckets[-1][1] += count
        else:
            self.buckets.append([index, count])
            self._prune(now)

    def per_second(self, now: float, elapsed: float) -> float:
        """Events per second over the window (or over ``elapsed``, when shorter)."""
        self._prune(now)
        span = min(self.window, elapsed)
        return sum(count for _, count in self.buckets) / span if span > 0 else 0.0

    def _prune(self, now: float) -> None:
        oldest = math.floor((now - self.window) / BUCKET)
        while self.buckets and self.buckets[0][0] < oldest:
            self.buckets.popleft()


@attrs.define
class Figures:
    """One task's or one game's figures. ``episodes``, ``wins``, ``detections``,
    ``timeouts`` and ``mean_return`` are the attackers' (the game is about them);
    ``*_by_role`` have every role."""

    steps: int = 0
    episodes: int = 0
    wins: int = 0
    detections: int = 0
    timeouts: int = 0
    resets: int = 0
    total_return: float = 0.0
    episodes_by_role: Counter[str] = attrs.Factory(Counter)
    returns_by_role: dict[str, float] = attrs.Factory(dict)
    seats: dict[str, str] = attrs.Factory(dict)  # seat -> role, of the agents present
    actions: Counter[str] = attrs.Factory(Counter)
    recent: Rate = attrs.Factory(Rate)

    def add_event(self, kind: Any, event: dict[str, Any], now: float) -> None:
        seat, role = event.get("seat"), str(event.get("role"))
        if kind == "quit":
            self.seats.pop(str(seat), None)
        elif seat is not None and kind in ("join", "step", "episode", "reset"):
            self.seats[str(seat)] = role
        if kind == "step":
            self.steps += 1
            self.recent.add(now)
            action = event.get("action")
            if isinstance(action, list) and action:
                self.actions[action_name(action[0])] += 1
        elif kind == "episode":
            value = _number(event.get("return"))
            self.episodes_by_role[role] += 1
            self.returns_by_role[role] = self.returns_by_role.get(role, 0.0) + value
            if role == ATTACKER:
                self.episodes += 1
                self.total_return += value
                outcome = OUTCOMES.get(str(event.get("end_reason")))
                if outcome is not None:
                    setattr(self, outcome, getattr(self, outcome) + 1)
        elif kind == "reset":
            self.resets += 1

    def agents(self) -> dict[str, int]:
        return dict(sorted(Counter(self.seats.values()).items()))

    def as_dict(self, now: float, seconds: float) -> dict[str, Any]:
        return {
            "agents": self.agents(),
            "steps": self.steps,
            "steps_per_second": self.steps / seconds if seconds > 0 else 0.0,
            "recent_steps_per_second": self.recent.per_second(now, seconds),
            "episodes": self.episodes,
            "wins": self.wins,
            "detections": self.detections,
            "timeouts": self.timeouts,
            "resets": self.resets,
            "mean_return": self.total_return / self.episodes if self.episodes else 0.0,
            "episodes_by_role": dict(sorted(self.episodes_by_role.items())),
            "mean_return_by_role": {role: self.returns_by_role[role] / count
                                    for role, count in sorted(self.episodes_by_role.items())},
            "actions": dict(sorted(self.actions.items(), key=lambda item: (-item[1], item[0]))),  # ties by name
        }


@attrs.define
class TaskFigures(Figures):
    """A task's figures, and the names of its games."""

    games: set[str] = attrs.Factory(set)

    def as_dict(self, now: float, seconds: float) -> dict[str, Any]:
        return {**super().as_dict(now, seconds), "games": len(self.games)}


@attrs.define
class PublisherFigures:
    """What one publisher (a world) sent: messages, the gaps in its sequence numbers, and
    its last ``alive`` event's games and seats."""

    messages: int = 0
    gaps: int = 0
    seq: int | None = None
    alive: dict[str, Any] = attrs.Factory(dict)

    def as_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "gaps": self.gaps, "seq": self.seq, **self.alive}


class _Playback:
    """The clock of a recording: the receive time of the record being added."""

    def __init__(self) -> None:
        self.time = 0.0

    def __call__(self) -> float:
        return self.time


class TraceFigures:
    """Aggregates trace messages per task, per game and per publisher; a sequence
    number that jumps is a gap, counted for its publisher. ``clock`` (seconds) times
    the rates; ``window`` is the span of the recent rates."""

    def __init__(self, *, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.window = window
        self.started = clock()
        self.tasks: dict[str, TaskFigures] = {}
        self.games: dict[tuple[str, str], Figures] = {}
        self.publishers: dict[str, PublisherFigures] = {}
        self.messages = 0

    @property
    def gaps(self) -> int:
        return sum(publisher.gaps for publisher in self.publishers.values())

    @property
    def last_seq(self) -> dict[str, int | None]:
        return {name: publisher.seq for name, publisher in self.publishers.items()}

    @classmethod
    def replay(cls, records: Iterable[Any], *, window: float = WINDOW) -> TraceFigures:
        """The figures of a recording (``arena monitor --jsonl``), timed by the receive
        times its lines carry; without them, counts only (the rates stay 0).

        >>> TraceFigures.replay([{"publisher": "w", "seq": 1, "received": 10.0, "events": []},
        ...                      {"publisher": "w", "seq": 4, "received": 12.5, "events": []}]).snapshot()["gaps"]
        2
        """
        clock = _Playback()
        figures = cls(window=window, clock=clock)
        timed = False
        for record in records:
            if not isinstance(record, dict):
                continue
            received = record.get("received")
            if isinstance(received, int | float) and not isinstance(received, bool):
                if not timed:
                    figures.started = clock.time = float(received)
                    timed = True
                clock.time = max(clock.time, float(received))  # lines appended out of order stay in order
            figures.add_message(record)
        return figures

    def add_message(self, message: dict[str, Any]) -> None:
        now = self.clock()
        name, seq = str(message.get("publisher")), message.get("seq")
        publisher = self.publishers.get(name)
        if publisher is None:
            publisher = self.publishers[name] = PublisherFigures()
        publisher.messages += 1
        if isinstance(seq, int) and not isinstance(seq, bool):
            if publisher.seq is not None and seq > publisher.seq + 1:
                publisher.gaps += seq - publisher.seq - 1
            publisher.seq = seq  # a lower number: the publisher restarted, nothing was lost
        self.messages += 1
        events = message.get("events", ())
        for event in events if isinstance(events, list) else ():
            if isinstance(event, dict):
                if event.get("kind") == "alive":
                    publisher.alive = {key: event[key] for key in ("games", "seats") if key in event}
                self.add_event(event, now)

    def add_event(self, event: dict[str, Any], now: float | None = None) -> None:
        task = event.get("task")
        if task is None:
            return
        now = self.clock() if now is None else now
        kind, game = event.get("kind"), event.get("game")
        figures = self.tasks.get(str(task))
        if figures is None:
            figures = self.tasks[str(task)] = TaskFigures(recent=Rate(self.window))
        figures.add_event(kind, event, now)
        if game is not None:
            figures.games.add(str(game))
            key = (str(task), str(game))
            game_figures = self.games.get(key)
            if game_figures is None:
                game_figures = self.games[key] = Figures(recent=Rate(self.window))
            game_figures.add_event(kind, event, now)

    def snapshot(self, *, top: int | None = None) -> dict[str, Any]:
        """Everything as plain data (JSON-able). ``games`` lists the games busiest first
        (recent steps/s, then steps), at most ``top`` of them (None: all)."""
        now = self.clock()
        seconds = max(0.0, now - self.started)
        ranked = sorted(self.games.items(), key=lambda item: (-item[1].recent.per_second(now, seconds),
                                                              -item[1].steps, item[0]))
        games = [{"task": task, "game": game, **figures.as_dict(now, seconds)}
                 for (task, game), figures in (ranked if top is None else ranked[:top])]
        active = Counter(task for (task, _), figures in self.games.items() if figures.seats)
        return {
            "seconds": round(seconds, 3),
            "window": self.window,
            "messages": self.messages,
            "gaps": self.gaps,
            "tasks": {name: {**figures.as_dict(now, seconds), "active_games": active[name]}
                      for name, figures in sorted(self.tasks.items())},
            "games": games,
            "publishers": {name: publisher.as_dict() for name, publisher in sorted(self.publishers.items())},
        }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
