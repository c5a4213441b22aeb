"""Watching the trace: a SUB socket on the broker's trace XPUB; the figures are in trace_figures.

Trace messages are ``[topic][msgpack {"publisher", "seq", "events"}]`` (PROTOCOL.md §6).
A monitor first waits for an ``alive`` event (worlds send one every heartbeat): then
its subscription has reached the publishers, and nothing after that is lost to the
slow-joiner effect. Each publisher numbers its messages, so a jump is a gap: counted,
never hidden. A quiet trace and an address where nothing answers look the same to a
SUB socket; :attr:`TraceMonitor.link` (:class:`~protocol.transport.LinkWatch`) tells them
apart.

>>> figures = TraceFigures()
>>> figures.add_message({"publisher": "w", "seq": 1, "events": [
...     {"kind": "episode", "task": "t", "game": "g", "role": "Attacker", "return": 95,
...      "end_reason": "AgentStatus.Success", "steps": 5}]})
>>> figures.snapshot()["tasks"]["t"]["wins"]
1
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import zmq

from protocol import CurveClient, ProtocolError, unpack
from protocol.transport import LinkWatch

from .trace_figures import TaskFigures, TraceFigures

__all__ = ["TaskFigures", "TraceFigures", "TraceMonitor"]


class TraceMonitor:
    """A subscriber to the trace. Use :meth:`wait_ready` before counting anything.
    ``curve``: the monitor's CURVE keys, for a broker with CURVE on. ``link.update()``
    says whether the trace's publisher answered the handshake, ``link.silence()`` why not."""

    def __init__(self, address: str, topic: str = "trace.", *, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> None:
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.SUB)
        if curve is not None:
            curve.apply(self.socket)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 100_000)
        self.socket.setsockopt_string(zmq.SUBSCRIBE, topic)
        self.link = LinkWatch(self.socket)
        self.address = address
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
        self.link.close()
        self.socket.close(linger=0)

    def __enter__(self) -> TraceMonitor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
