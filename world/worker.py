"""The world worker: one process, one plain ``zmq.Poller`` loop, many games.

A DEALER socket connects to the broker's backend (PROTOCOL.md §1, "Broker ↔ world"):
the worker registers with ``READY`` (its tasks, capacity and the games and seats it
already hosts), answers forwarded requests with ``REPLY`` (single or batched), reports
seats that left with ``RELEASE`` and keeps the link alive with ``HEARTBEAT``. Each game
is a :class:`~world.session.GameSession`, which is free of I/O; this loop gives it time
(held replies, seat leases) and carries its replies. Trace events go out on a PUB
socket, batched per game every ``trace_interval`` (20 ms), and are dropped when nobody
keeps up.

Liveness follows the Paranoid Pirate pattern (zguide ch. 4): any message from the
broker counts; after ``liveness`` silent heartbeat intervals, or when the TCP link
drops, the worker opens a new socket and registers again *with its games* (so a
restarted broker adopts them). A ``DISCONNECT`` from the broker means "you were
declared dead": the worker answers its held requests ``GAME_LOST``, drops every game
and registers again empty. Repeated failures back off from 1 s to 32 s.

The games themselves, the per-seat reply cache that makes resends harmless and the
timers live in a :class:`~world.game_host.GameHost`, which knows no sockets: this loop
hands it each request and sends the frames it returns. :meth:`WorldWorker.stop` drains:
new joins are refused, what already arrived is answered (and what arrives until the
link has been quiet for ``STOP_QUIET``), held requests get ``GAME_LOST``, then
``DISCONNECT``: the broker answers ``GAME_LOST`` to what is still on its way and to the
games' agents on their next request.

Running one (``arena world`` does this, and calls :meth:`WorldWorker.stop` on SIGTERM)::

    from world import load_task
    from world.worker import WorldWorker

    worker = WorldWorker("tcp://127.0.0.1:5571", [load_task()], trace_input="tcp://127.0.0.1:5573")
    worker.run()   # until worker.stop()

>>> from world import load_task
>>> worker = WorldWorker("tcp://127.0.0.1:5571", [load_task()], name="w-doc")
>>> ready = worker.ready_body()
>>> ready["world"], ready["tasks"]["default"]["seats"], ready["games"]
('w-doc', {'Attacker': 1, 'Defender': 1}, [])
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket as _socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from protocol import PROTOCOL_FRAME, Command, pack
from protocol.security import CurveClient
from protocol.transport import describe_handshake_failure

from .game_host import GameHost, game_seed
from .task import TaskConfig

__all__ = ["GC_THRESHOLDS", "TRACE_LEVELS", "WorldWorker", "game_seed", "tune_gc"]

log = logging.getLogger(__name__)

TRACE_LEVELS = ("off", "episodes", "steps")
#: Seconds a world collects trace events before publishing them (one message per game).
TRACE_INTERVAL = 0.02
#: Reconnect back-off after repeated failures (seconds): doubles from the first to the second.
RECONNECT_BACKOFF = (1.0, 32.0)
_HWM = 100_000
_TRACE_HWM = 10_000
_LINGER_MS = 500
_DRAIN_LIMIT = 1000           # messages handled per loop turn before timers get their turn
#: A stopping world answers requests until its link has been quiet this long (seconds) ...
STOP_QUIET = 0.2
#: ... or this long at most (seconds): agents that keep stepping do not hold it up.
STOP_LIMIT = 2.0
_NOBLOCK, _SEND_MORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE)
_send, _recv = zmq.backend.Socket.send, zmq.backend.Socket.recv
_poll, _POLLIN = zmq.backend.zmq_poll, int(zmq.POLLIN)

#: Monitor events of a handshake the broker refused (a CURVE key not allowed, CURVE at one end only).
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_READY, _HEARTBEAT, _DISCONNECT, _REQUEST = (Command.READY.frame, Command.HEARTBEAT.frame,
                                            Command.DISCONNECT.frame, Command.REQUEST.frame)


class WorldWorker:
    """Hosts games of the given tasks and serves the broker at ``backend``."""

    def __init__(self, backend: str, tasks: Sequence[TaskConfig], *, seed: int = 42, capacity: int = 1000,
                 trace_input: str | None = None, name: str | None = None, heartbeat: float = 1.0,
                 liveness: int = 3, trace_level: str = "steps", trace_interval: float = TRACE_INTERVAL,
                 curve: CurveClient | None = None, context: zmq.Context | None = None) -> None:
        if not tasks:
            raise ValueError("a world needs at least one task")
        self.tasks: dict[str, TaskConfig] = {}
        for task in tasks:
            if task.name in self.tasks:
                raise ValueError(f"two tasks are named {task.name!r}")
            self.tasks[task.name] = task
        if trace_level not in TRACE_LEVELS:
            raise ValueError(f"trace_level must be one of {', '.join(TRACE_LEVELS)}, not {trace_level!r}")
        if heartbeat <= 0 or liveness < 1 or capacity < 1:
            raise ValueError("heartbeat, liveness and capacity must be positive")
        self.backend = backend
        self.seed = seed
        self.capacity = capacity
        self.trace_input = trace_input
        self.name = name or f"w-{_socket.gethostname()}-{os.getpid()}"
        self.heartbeat = float(heartbeat)
        self.liveness = liveness
        self.trace_level = trace_level
        self.trace_interval = float(trace_interval)
        self._trace_due = 0.0
        self._tracing = trace_input is not None and trace_level != "off"
        self._context = context
        self.curve = curve  # CURVE keys for the backend DEALER and the trace PUB (optional)
        self._world_frame = self.name.encode()
        self._host = GameHost(self.tasks, self.name, seed=seed, capacity=capacity, trace=self._tracing,
                              step_events=trace_level == "steps")
        self._trace_seq = 0
        self._stop_requested = False
        self._dealer: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._poller = zmq.Poller()
        self._last_sent = 0.0
        self._broker_expiry = 0.0
        self._reconnect_at: float | None = None
        self._failures = 0
        self._backoff = RECONNECT_BACKOFF[0]
        self._dropped = 0

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Ask the loop to drain and exit (safe from a signal handler or another thread)."""
        self._stop_requested = True

    def ready_body(self) -> dict[str, Any]:
        """The READY body (PROTOCOL.md §3.4): tasks, capacity, and the games hosted now."""
        return {
            "world": self.name,
            "capacity": self.capacity,
            "heartbeat": self.heartbeat,
            "tasks": {name: {"seats": {role.value: n for role, n in task.seats.items()},
                             "allowed_roles": sorted(role.value for role in task.allowed_roles),
                             "hash": task.configuration_hash}
                      for name, task in self.tasks.items()},
            "games": self._host.hosted(),
        }

    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until :meth:`stop` (or ``stop`` is set); then drain, tell the broker, close."""
        own_context = self._context is None
        context = self._context = self._context or zmq.Context()
        try:
            if self._tracing:
                assert self.trace_input is not None
                self._pub = context.socket(zmq.PUB)
                if self.curve is not None:
                    self.curve.apply(self._pub)
                self._pub.setsockopt(zmq.SNDHWM, _TRACE_HWM)
                self._pub.setsockopt(zmq.LINGER, 0)
                self._pub.connect(self.trace_input)
            now = time.monotonic()
            self._connect(now)
            next_alive = now
            host = self._host
            log.info("world %s serving %s on %s", self.name, sorted(self.tasks), self.backend)
            while not self._stop_requested and (stop is None or not stop.is_set()):
                now = time.monotonic()
                if next_alive <= now:
                    self._publish_alive()
                    next_alive = now + self.heartbeat
                if self._dealer is not None:
                    wake = min(next_alive, self._broker_expiry, self._last_sent + self.heartbeat)
                else:
                    wake = min(next_alive, self._reconnect_at or next_alive)
                if host.timers:
                    wake = min(wake, host.timers[0][0])
                if host.dirty:
                    wake = min(wake, self._trace_due)
                timeout = max(0.0, min(wake - now, self.heartbeat))
                if self._dealer is None:
                    time.sleep(timeout)
                    ready: dict[Any, int] = {}
                else:
                    ready = dict(self._poller.poll(timeout * 1000))
                now = time.monotonic()
                if self._dealer is not None and self._dealer in ready:
                    self._drain(now)  # first: what arrived before a drop is still served
                    now = time.monotonic()
                if self._monitor is not None and self._monitor in ready:
                    self._on_monitor(now)
                for message in host.run_timers(now):
                    self._send(message, now)
                self._flush(now)
                self._keep_alive(now)
            self._shutdown()
        finally:
            self._close_sockets(linger=_LINGER_MS)
            if self._pub is not None:
                self._pub.close(linger=0)
                self._pub = None
            if own_context:
                context.term()
                self._context = None

    # ------------------------------------------------------------------ connection
    def _connect(self, now: float) -> None:
        assert self._context is not None
        dealer = self._context.socket(zmq.DEALER)
        if self.curve is not None:
            self.curve.apply(dealer)
        dealer.setsockopt(zmq.LINGER, _LINGER_MS)
        dealer.setsockopt(zmq.SNDHWM, _HWM)
        dealer.setsockopt(zmq.RCVHWM, _HWM)
        self._monitor = dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED | _HANDSHAKE_FAILED)
        dealer.connect(self.backend)
        self._dealer = dealer
        self._poller.register(dealer, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._reconnect_at = None
        self._broker_expiry = now + self.heartbeat * self.liveness
        self._send([PROTOCOL_FRAME, _READY, pack(self.ready_body())], now)
        log.info("world %s: READY sent to %s (%d games)", self.name, self.backend, len(self._host.games))

    def _close_sockets(self, linger: int) -> None:
        if self._dealer is not None:
            self._poller.unregister(self._dealer)
            if self._monitor is not None:
                self._poller.unregister(self._monitor)
                self._dealer.disable_monitor()
                self._monitor.close(linger=0)
                self._monitor = None
            self._dealer.close(linger=linger)
            self._dealer = None

    def _reconnect(self, now: float, reason: str, *, linger: int = 0) -> None:
        """Paranoid Pirate: a new socket, READY again; back off when it keeps failing."""
        self._close_sockets(linger)
        delay = 0.0 if self._failures == 0 else self._backoff
        if self._failures:
            self._backoff = min(self._backoff * 2, RECONNECT_BACKOFF[1])
        self._failures += 1
        log.warning("world %s: reconnecting to %s in %.0f s: %s", self.name, self.backend, delay, reason)
        if delay:
            self._reconnect_at = now + delay
        else:
            self._connect(now)

    def _keep_alive(self, now: float) -> None:
        if self._dealer is None:
            if self._reconnect_at is not None and self._reconnect_at <= now:
                self._connect(now)
            return
        if now >= self._broker_expiry:
            self._reconnect(now, f"the broker was silent for {self.liveness} heartbeats")
        elif now - self._last_sent >= self.heartbeat:
            self._send([PROTOCOL_FRAME, _HEARTBEAT], now)

    def _on_monitor(self, now: float) -> None:
        assert self._monitor is not None
        while self._monitor is not None:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] & _HANDSHAKE_FAILED:  # say why the broker is silent, not "the link dropped"
                self._reconnect(now, describe_handshake_failure(event["event"], event["value"],
                                                                curve_here=self.curve is not None, who="this world"))
                return
            if event["event"] == zmq.EVENT_DISCONNECTED:
                # The link dropped (a broker restart, say): register again, games and all,
                # before anything stale can reach a broker that does not know us.
                self._reconnect(now, "the connection to the broker dropped")
                return

    def _send(self, frames: list[bytes], now: float | None = None) -> None:
        dealer = self._dealer
        if dealer is None:
            self._dropped += 1
            return
        self._last_sent = time.monotonic() if now is None else now
        try:
            _send_frames(dealer, frames)
        except zmq.Again:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("world %s: the broker is not reading; %d messages dropped so far",
                            self.name, self._dropped)

    # ------------------------------------------------------------------ receiving
    def _drain(self, now: float) -> None:
        dealer = self._dealer
        assert dealer is not None
        for _ in range(_DRAIN_LIMIT):
            if self._dealer is not dealer:
                return  # the socket was replaced while handling a DISCONNECT
            try:
                frame = _recv(dealer, _NOBLOCK, False)
            except zmq.Again:
                return
            frames = [frame.bytes]
            while frame.more:  # the frame's own flag: no getsockopt(RCVMORE) per frame
                frame = _recv(dealer, 0, False)
                frames.append(frame.bytes)
            try:
                self._on_message(frames, now)
            except Exception:  # one bad message never stops the world
                log.exception("world %s: message dropped: %r", self.name, [f[:32] for f in frames[:7]])
            if not _poll([(dealer, _POLLIN)], 0):  # cheaper than the zmq.Again of a recv
                return

    def _on_message(self, frames: list[bytes], now: float) -> None:
        self._broker_expiry = now + self.heartbeat * self.liveness
        if len(frames) < 2 or frames[0] != PROTOCOL_FRAME:
            log.warning("world %s: message without the ARENA1 frame dropped", self.name)
            return
        command = frames[1]
        if command == _REQUEST:
            self._failures, self._backoff = 0, RECONNECT_BACKOFF[0]
            for message in self._host.request(frames, now):
                self._send(message, now)
        elif command == _HEARTBEAT:
            self._failures, self._backoff = 0, RECONNECT_BACKOFF[0]
        elif command == _DISCONNECT:
            log.warning("world %s: the broker declared this world dead; dropping %d games",
                        self.name, len(self._host.games))
            self._drop_games("the broker declared its world dead")
            self._reconnect(now, "the broker sent DISCONNECT", linger=_LINGER_MS)
        else:
            log.warning("world %s: unknown command %r from the broker dropped", self.name, command[:4])

    # ------------------------------------------------------------------ releases and trace
    def _flush(self, now: float | None = None) -> None:
        """Send what left (RELEASE) now, and the trace every ``trace_interval`` seconds
        (``now`` None: all of it now). Each trace message costs the world and the broker's
        proxy a wake-up, so a game's events travel together, not one message per step."""
        host = self._host
        if host.released or host.closed:
            self._send(host.release_message())
        if not host.dirty:
            return
        if now is not None and now < self._trace_due:
            return
        for topic, events in host.take_events():
            self._publish(topic, events)
        self._trace_due = (now if now is not None else time.monotonic()) + self.trace_interval

    def _publish(self, topic: bytes, events: list[dict[str, Any]]) -> None:
        if self._pub is None:
            return
        self._trace_seq += 1
        with contextlib.suppress(zmq.Again):  # the trace never slows a game; monitors see the gap
            _send_frames(self._pub, [topic, pack({"publisher": self.name, "seq": self._trace_seq,
                                                  "events": events})])

    def _publish_alive(self) -> None:
        if self._pub is not None:
            self._publish(b"trace.world." + self._world_frame, [
                {"kind": "alive", "world": self.name, "games": len(self._host.games),
                 "seats": len(self._host.seats)}])

    # ------------------------------------------------------------------ leaving
    def _drop_games(self, reason: str) -> None:
        """Answer every held request GAME_LOST and forget every game (no split brain)."""
        for message in self._host.drop_games(reason):
            self._send(message)

    def _shutdown(self) -> None:
        """Drain: refuse new joins, answer what already arrived (and what arrives until the
        link has been quiet for ``STOP_QUIET`` seconds, ``STOP_LIMIT`` at most: requests
        the broker forwarded before the stop), tell the broker, go."""
        self._host.stopping = True
        dealer = self._dealer
        if dealer is not None:
            deadline = time.monotonic() + STOP_LIMIT
            while self._dealer is dealer:
                self._drain(time.monotonic())
                self._flush()
                wait = min(STOP_QUIET, deadline - time.monotonic())
                if wait <= 0 or self._dealer is not dealer or not dealer.poll(wait * 1000, zmq.POLLIN):
                    break
        self._flush()
        if self._host.games:
            log.info("world %s: stopping with %d games", self.name, len(self._host.games))
            self._drop_games(f"world {self.name} is shutting down")
        self._flush()
        self._send([PROTOCOL_FRAME, _DISCONNECT])
        log.info("world %s: stopped", self.name)


#: Collector thresholds for a world process (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc(*, freeze: bool = True) -> tuple[int, int, int]:
    """Set a world process's garbage collector for its load; returns the old thresholds.

    A step allocates many short-lived objects that hold no cycles (states, actions,
    replies), while the games live long. With Python's default thresholds the collector
    runs full collections often, and each one walks every game: measured with
    ``arena bench --cases games-per-host``, the world's work per step grew 1.5x from 1 to
    256 games; with these thresholds 1.2x, as with no collector at all. ``freeze`` moves
    what exists now (modules, tasks) out of the collector's sight for good.
    """
    old = gc.get_threshold()
    if freeze:
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return old  # type: ignore[return-value]


def _send_frames(socket: zmq.Socket, frames: list[bytes]) -> None:
    """``send_multipart(frames, NOBLOCK)`` through pyzmq's backend send, without the
    Python-level wrapper and its flag arithmetic (about half the cost of each frame).
    Only the first frame can meet the high-water mark (zmq.Again); the others follow it."""
    for index in range(len(frames) - 1):
        _send(socket, frames[index], _SEND_MORE)
    _send(socket, frames[-1], _NOBLOCK)
