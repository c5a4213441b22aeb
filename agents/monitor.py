"""Watching the trace: a SUB socket on the broker's trace XPUB, and per-task figures.

Trace messages are ``[topic][msgpack {"publisher", "seq", "events"}]`` (PROTOCOL.md §6).
A monitor first waits for an ``alive`` event (worlds send one every heartbeat): then
its subscription has reached the publishers, and nothing after that is lost to the
slow-joiner effect. Each publisher numbers its messages, so a jump is a gap: counted,
never hidden.

>>> figures = TraceFigures()
>>> figures.add_message({"publisher": "w", "seq": 1, "events": [
...     {"kind": "episode", "task": "t", "game": "g", "role": "Attacker", "return": 95,
...      "end_reason": "AgentStatus.Success", "steps": 5}]})
>>> figures.snapshot()["tasks"]["t"]["wins"]
1
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import zmq

from protocol import CurveClient, ProtocolError, unpack

__all__ = ["TaskFigures", "TraceFigures", "TraceMonitor"]


@attrs.define
class TaskFigures:
    steps: int = 0
    episodes: int = 0
    wins: int = 0
    detections: int = 0
    timeouts: int = 0
    total_return: float = 0.0
    games: set[str] = attrs.Factory(set)
    agents: Counter[str] = attrs.Factory(Counter)
    actions: Counter[int] = attrs.Factory(Counter)

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "steps_per_second": self.steps / seconds if seconds > 0 else 0.0,
            "episodes": self.episodes,
            "wins": self.wins,
            "detections": self.detections,
            "timeouts": self.timeouts,
            "mean_return": self.total_return / self.episodes if self.episodes else 0.0,
            "games": len(self.games),
            "agents": dict(self.agents),
        }


class TraceFigures:
    """Aggregates trace events per task; counts gaps per publisher."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tasks: dict[str, TaskFigures] = {}
        self.last_seq: dict[str, int] = {}
        self.gaps = 0
        self.messages = 0

    def add_message(self, message: dict[str, Any]) -> None:
        publisher, seq = str(message.get("publisher")), message.get("seq")
        if isinstance(seq, int):
            previous = self.last_seq.get(publisher)
            if previous is not None and seq > previous + 1:
                self.gaps += seq - previous - 1
            self.last_seq[publisher] = seq
        self.messages += 1
        for event in message.get("events", ()):
            self.add_event(event)

    def add_event(self, event: dict[str, Any]) -> None:
        task = event.get("task")
        if task is None:
            return
        figures = self.tasks.setdefault(str(task), TaskFigures())
        kind = event.get("kind")
        if "game" in event:
            figures.games.add(str(event["game"]))
        if kind == "step":
            figures.steps += 1
            action = event.get("action")
            if isinstance(action, list) and action:
                figures.actions[action[0]] += 1
        elif kind == "episode" and event.get("role") == "Attacker":
            figures.episodes += 1
            reason = event.get("end_reason")
            figures.wins += reason == "AgentStatus.Success"
            figures.detections += reason == "AgentStatus.Fail"
            figures.timeouts += reason == "AgentStatus.TimeoutReached"
            figures.total_return += float(event.get("return", 0))
        elif kind == "join":
            figures.agents[str(event.get("role"))] += 1
        elif kind == "quit":
            figures.agents[str(event.get("role"))] -= 1

    def snapshot(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        return {"seconds": round(seconds, 3), "messages": self.messages, "gaps": self.gaps,
                "tasks": {name: figures.as_dict(seconds) for name, figures in sorted(self.tasks.items())}}


class TraceMonitor:
    """A subscriber to the trace. Use :meth:`wait_ready` before counting anything.
    ``curve``: the monitor's CURVE keys, for a broker with CURVE on."""

    def __init__(self, address: str, topic: str = "trace.", *, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> None:
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.SUB)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        self.socket.connect(address)
        self.bad_messages = 0

    def receive(self, timeout: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """Messages arriving within ``timeout`` seconds (stops early when none is waiting)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                return
            frames = self.socket.recv_multipart()
            if len(frames) != 2:
                self.bad_messages += 1
                continue
            try:
                message = unpack(frames[1])
            except ProtocolError:
                self.bad_messages += 1
                continue
            if isinstance(message, dict):
                yield frames[0].decode(errors="replace"), message

    def wait_ready(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """Wait for a world's ``alive`` event: the subscription has reached a publisher."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, message in self.receive(deadline - time.monotonic()):
                if any(event.get("kind") == "alive" for event in message.get("events", ())):
                    return message
        return None

    def close(self) -> None:
        self.socket.close(linger=0)

    def __enter__(self) -> TraceMonitor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
