"""The world worker: one process, one plain ``zmq.Poller`` loop, many games.

A DEALER socket connects to the broker's backend (PROTOCOL.md §1, "Broker ↔ world"):
the worker registers with ``READY`` (its tasks, capacity and the games and seats it
already hosts), answers forwarded requests with ``REPLY`` (single or batched), reports
seats that left with ``RELEASE`` and keeps the link alive with ``HEARTBEAT``. Each game
is a :class:`~world.session.GameSession`, which is free of I/O; this loop gives it time
(held replies, seat leases) and carries its replies. Trace events go out on a PUB
socket, batched per loop turn and game, and are dropped when nobody keeps up.

Liveness follows the Paranoid Pirate pattern (zguide ch. 4): any message from the
broker counts; after ``liveness`` silent heartbeat intervals, or when the TCP link
drops, the worker opens a new socket and registers again *with its games* (so a
restarted broker adopts them). A ``DISCONNECT`` from the broker means "you were
declared dead": the worker answers its held requests ``GAME_LOST``, drops every game
and registers again empty. Repeated failures back off from 1 s to 32 s.

A per-seat reply cache makes resends harmless (DESIGN §7): a request whose seq equals
the seat's last answered one gets the same reply again, and a resend of a request the
game still holds runs nothing (its reply, when it comes, goes to the client that resent
it), so no step runs twice. :meth:`WorldWorker.stop` drains: new joins are refused, what
already arrived is answered, held requests get ``GAME_LOST``, then ``DISCONNECT``.

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
import hashlib
import heapq
import itertools
import logging
import os
import socket as _socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import zmq
from zmq.utils.monitor import recv_monitor_message

from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    action_from_compact,
    encode_reply,
    pack,
    unpack,
)
from protocol.errors import describe
from protocol.messages import MAX_SEAT_BYTES

from .session import MALFORMED_MESSAGE, GameSession, Reply
from .task import TaskConfig
from .trajectory import Trajectory

__all__ = ["TRACE_LEVELS", "WorldWorker", "game_seed"]

log = logging.getLogger(__name__)

TRACE_LEVELS = ("off", "episodes", "steps")
#: Reconnect back-off after repeated failures (seconds): doubles from the first to the second.
RECONNECT_BACKOFF = (1.0, 32.0)
_HWM = 100_000
_TRACE_HWM = 10_000
_LINGER_MS = 500
_DRAIN_LIMIT = 1000           # messages handled per loop turn before timers get their turn
_NOBLOCK, _SEND_MORE, _RCVMORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE), int(zmq.RCVMORE)

_JOIN, _STEP, _BATCH, _RESET, _QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                       Command.RESET.frame, Command.QUIT.frame)
_READY, _HEARTBEAT, _DISCONNECT, _RELEASE, _REQUEST, _REPLY = (
    Command.READY.frame, Command.HEARTBEAT.frame, Command.DISCONNECT.frame, Command.RELEASE.frame,
    Command.REQUEST.frame, Command.REPLY.frame)
_BATCH_INNER = frozenset({_STEP, _RESET})
_COMMANDS = frozenset({_JOIN, _STEP, _RESET, _QUIT})

#: [client, command, seat, seq]: the request tag the sessions hand back in each Reply. A list,
#: so a resend from a reconnected client can redirect a reply the game still holds.
Tag = list[bytes]
#: A reply ready to send: (client, command, seat, seq, body).
Out = tuple[bytes, bytes, bytes, bytes, bytes]


def game_seed(seed: int, game: str) -> int:
    """The seed of a game's RNG: a stable function of the server seed and the game name,
    so a game is the same whichever world hosts it."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{game}".encode()).digest()[:8], "big")


@attrs.define(eq=False)
class _Game:
    name: str
    task: TaskConfig
    session: GameSession
    topic: bytes
    scheduled: float | None = None     # the deadline this game has in the timer heap
    closed: bool = False


@attrs.define(eq=False)
class _Seat:
    seat: bytes
    text: str                          # the seat as the session and the trace name it
    game: _Game
    held: Tag | None = None            # the tag of a request the game holds
    last_seq: bytes | None = None      # the last answered request: a resend gets its reply again
    last_command: bytes = b""
    last_body: bytes = b""


class WorldWorker:
    """Hosts games of the given tasks and serves the broker at ``backend``."""

    def __init__(self, backend: str, tasks: Sequence[TaskConfig], *, seed: int = 42, capacity: int = 1000,
                 trace_input: str | None = None, name: str | None = None, heartbeat: float = 1.0,
                 liveness: int = 3, trace_level: str = "steps", context: zmq.Context | None = None) -> None:
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
        self._tracing = trace_input is not None and trace_level != "off"
        self._context = context
        self._world_frame = self.name.encode()
        self._games: dict[str, _Game] = {}
        self._seats: dict[bytes, _Seat] = {}
        self._timers: list[tuple[float, int, _Game]] = []
        self._timer_ids = itertools.count()
        self._released: list[str | bytes] = []
        self._closed: list[str] = []
        self._dirty: set[_Game] = set()
        self._trace_seq = 0
        self._stop_requested = False
        self._stopping = False
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
            "games": [{"game": game.name, "task": game.task.name,
                       "seats": [[seat, entry.role.value] for seat, entry in game.session.seats.items()]}
                      for game in self._games.values()],
        }

    def run(self, stop: threading.Event | None = None) -> None:
        """Serve until :meth:`stop` (or ``stop`` is set); then drain, tell the broker, close."""
        own_context = self._context is None
        context = self._context = self._context or zmq.Context()
        try:
            if self._tracing:
                assert self.trace_input is not None
                self._pub = context.socket(zmq.PUB)
                self._pub.setsockopt(zmq.SNDHWM, _TRACE_HWM)
                self._pub.setsockopt(zmq.LINGER, 0)
                self._pub.connect(self.trace_input)
            now = time.monotonic()
            self._connect(now)
            next_alive = now
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
                if self._timers:
                    wake = min(wake, self._timers[0][0])
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
                self._run_timers(now)
                self._flush()
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
        dealer.setsockopt(zmq.LINGER, _LINGER_MS)
        dealer.setsockopt(zmq.SNDHWM, _HWM)
        dealer.setsockopt(zmq.RCVHWM, _HWM)
        self._monitor = dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        dealer.connect(self.backend)
        self._dealer = dealer
        self._poller.register(dealer, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._reconnect_at = None
        self._broker_expiry = now + self.heartbeat * self.liveness
        self._send([PROTOCOL_FRAME, _READY, pack(self.ready_body())], now)
        log.info("world %s: READY sent to %s (%d games)", self.name, self.backend, len(self._games))

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
        recv, more = dealer.recv, dealer.getsockopt
        for _ in range(_DRAIN_LIMIT):
            if self._dealer is not dealer:
                return  # the socket was replaced while handling a DISCONNECT
            try:
                frames = [recv(_NOBLOCK)]
            except zmq.Again:
                return
            while more(_RCVMORE):
                frames.append(recv(_NOBLOCK))
            try:
                self._on_message(frames, now)
            except Exception:  # one bad message never stops the world
                log.exception("world %s: message dropped: %r", self.name, [f[:32] for f in frames[:7]])

    def _on_message(self, frames: list[bytes], now: float) -> None:
        self._broker_expiry = now + self.heartbeat * self.liveness
        if len(frames) < 2 or frames[0] != PROTOCOL_FRAME:
            log.warning("world %s: message without the ARENA1 frame dropped", self.name)
            return
        command = frames[1]
        if command == _REQUEST:
            self._failures, self._backoff = 0, RECONNECT_BACKOFF[0]
            self._on_request(frames, now)
        elif command == _HEARTBEAT:
            self._failures, self._backoff = 0, RECONNECT_BACKOFF[0]
        elif command == _DISCONNECT:
            log.warning("world %s: the broker declared this world dead; dropping %d games",
                        self.name, len(self._games))
            self._drop_games("the broker declared its world dead")
            self._reconnect(now, "the broker sent DISCONNECT", linger=_LINGER_MS)
        else:
            log.warning("world %s: unknown command %r from the broker dropped", self.name, command[:4])

    def _on_request(self, frames: list[bytes], now: float) -> None:
        count = len(frames)
        if count < 4:
            log.warning("world %s: a REQUEST too short to answer dropped", self.name)
            return
        client, command = frames[2], frames[3]
        if command == _BATCH:
            self._on_batch(client, frames, now)
            return
        out: list[Out] = []
        if count == 7 and command in _COMMANDS:
            self._handle(client, command, frames[4], frames[5], frames[6], now, out)
        else:
            text = ("Expected [client][command][seat][seq][body] after REQUEST." if command in _COMMANDS
                    else f"Unknown command {command[:4]!r} (PROTOCOL.md §2).")
            seat, seq = (frames[4] if count > 4 else b""), (frames[5] if count > 5 else b"")
            out.append(self._error([client, command, seat, seq], ErrorCode.BAD_FRAMES, text))
        self._send_out(out, None, now)

    def _on_batch(self, client: bytes, frames: list[bytes], now: float) -> None:
        if len(frames) < 9 or (len(frames) - 6) % 3 or frames[5] not in _BATCH_INNER:
            text = "Expected [BATCH][world][STEP|RESET] then (seat, seq, body) triples."
            self._send_out([self._error([client, _BATCH, b"", b""], ErrorCode.BAD_FRAMES, text)], None, now)
            return
        inner = frames[5]
        out: list[Out] = []
        for index in range(6, len(frames), 3):
            self._handle(client, inner, frames[index], frames[index + 1], frames[index + 2], now, out)
        self._send_out(out, inner, now)

    # ------------------------------------------------------------------ requests
    def _handle(self, client: bytes, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float,
                out: list[Out]) -> None:
        """One request; whatever goes wrong, it gets a reply."""
        try:
            if command == _JOIN:
                self._join(client, seat, seq, body, now, out)
            else:
                self._request(client, command, seat, seq, body, now, out)
        except Exception:
            log.exception("world %s: a %r request of seat %r failed", self.name, command, seat[:64])
            out.append(self._error([client, command, seat, seq], None,
                                   "The world could not handle this request (internal error); see its log."))

    def _request(self, client: bytes, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float,
                 out: list[Out]) -> None:
        """STEP, RESET or QUIT of a seat this world hosts."""
        entry = self._seats.get(seat)
        tag = [client, command, seat, seq]
        if entry is None:
            out.append(self._error(tag, ErrorCode.GAME_LOST,
                                   f"World {self.name} hosts no game with this seat: the game is gone."))
            return
        if seq and (seq == entry.last_seq or (entry.held is not None and seq == entry.held[3])):
            self._resend(entry, tag, out)
            return
        session = entry.game.session
        try:
            if command == _STEP:
                replies = session.step(entry.text, action_from_compact(unpack(body, MAX_BODY_BYTES)), now, tag)
            elif command == _RESET:
                trajectory, randomize, seed = _reset_arguments(unpack(body, MAX_BODY_BYTES))
                replies = session.reset(entry.text, now, tag, request_trajectory=trajectory,
                                        randomize_topology=randomize, seed=seed)
            else:
                replies = session.quit(entry.text, now, tag)
        except ProtocolError as error:
            out.append(self._encode(self._malformed(tag, error)))
            return
        self._collect(entry.game, replies, out, tag, entry)

    def _join(self, client: bytes, seat: bytes, seq: bytes, body: bytes, now: float, out: list[Out]) -> None:
        tag = [client, _JOIN, seat, seq]
        entry = self._seats.get(seat)
        if entry is not None:
            if seq and (seq == entry.last_seq or (entry.held is not None and seq == entry.held[3])):
                self._resend(entry, tag, out)
            else:
                out.append(self._encode(self._bad(tag, ErrorCode.ALREADY_JOINED,
                                                  f"This seat already plays in game {entry.game.name}.")))
            return
        try:
            text, task_name, role, game_name, name = _join_arguments(seat, body)
        except ProtocolError as error:
            self._released.append(_seat_text(seat))
            out.append(self._encode(self._malformed(tag, error)))
            return
        task = self.tasks.get(task_name)
        game = self._games.get(game_name)
        problem: tuple[ErrorCode, str] | None = None
        if self._stopping:
            problem = ErrorCode.NO_WORLD, f"World {self.name} is shutting down."
        elif task is None:
            problem = ErrorCode.UNKNOWN_TASK, (f"World {self.name} does not serve task {task_name!r} "
                                               f"(it serves {', '.join(sorted(self.tasks))}).")
        elif game is None and len(self._games) >= self.capacity:
            problem = ErrorCode.NO_WORLD, f"World {self.name} is full ({self.capacity} games)."
        elif game is not None and game.task is not task:
            problem = ErrorCode.GAME_TASK_MISMATCH, f"Game {game_name!r} plays task {game.task.name}, not {task_name}."
        if problem is not None:
            self._released.append(text)
            out.append(self._encode(self._bad(tag, *problem)))
            return
        assert task is not None
        if game is None:
            game = self._new_game(task, game_name)
        entry = self._seats[seat] = _Seat(seat, text, game)
        replies = game.session.join(text, name, role, now, tag)
        own = next((reply for reply in replies if reply.request is tag), None)
        if own is not None and own.status is GameStatus.BAD_REQUEST:
            del self._seats[seat]
            self._released.append(text)
        self._collect(game, replies, out, tag, entry)
        self._schedule(game)

    def _new_game(self, task: TaskConfig, name: str) -> _Game:
        session = GameSession(task, seed=game_seed(self.seed, name), name=name)
        if self._tracing:
            session.events = []
            session.step_events = self.trace_level == "steps"
        game = self._games[name] = _Game(name, task, session, f"trace.{task.name}.{name}".encode())
        log.debug("world %s: game %s of task %s created", self.name, name, task.name)
        return game

    def _collect(self, game: _Game, replies: list[Reply], out: list[Out], tag: Tag | None = None,
                 entry: _Seat | None = None) -> None:
        """Encode a session call's replies; note a held request, released seats, trace events."""
        held = tag is not None
        for reply in replies:
            if reply.request is tag:
                held = False
            out.append(self._encode(reply))
        if held and entry is not None and tag is not None and entry.seat in self._seats:
            entry.held = tag
            self._schedule(game)
        session = game.session
        if session.released or not session.seats:
            self._collect_released(game)
        if session.events:
            self._dirty.add(game)

    def _collect_released(self, game: _Game) -> None:
        session = game.session
        for text in session.released:
            self._seats.pop(text.encode(), None)
            self._released.append(text)
        session.released.clear()
        if not session.seats and not game.closed:
            game.closed = True
            self._games.pop(game.name, None)
            self._closed.append(game.name)
            log.debug("world %s: game %s closed", self.name, game.name)

    # ------------------------------------------------------------------ replies
    def _encode(self, reply: Reply) -> Out:
        client, command, seat, seq = reply.request
        message = reply.message
        entry = self._seats.get(seat)
        if isinstance(message, dict):
            if command == _JOIN and entry is not None:
                message = {**message, "seat": entry.text, "world": self.name, "game": entry.game.name,
                           "task": entry.game.task.name}
            elif isinstance(message.get("last_trajectory"), Trajectory):
                message = {**message, "last_trajectory": message["last_trajectory"].as_dict()}
        body = encode_reply(reply.status, reply.observation, message, reply.code)
        if entry is not None:
            entry.last_seq, entry.last_command, entry.last_body = seq, command, body
            if entry.held is reply.request:
                entry.held = None
        return client, command, seat, seq, body

    def _resend(self, entry: _Seat, tag: Tag, out: list[Out]) -> None:
        """A resend: the cached reply again; while the game still holds the request, nothing
        now, but the reply will go to the client that resent it (it may have reconnected)."""
        if tag[3] == entry.last_seq:
            out.append((tag[0], entry.last_command, entry.seat, tag[3], entry.last_body))
        elif entry.held is not None:
            entry.held[0] = tag[0]
        log.debug("world %s: resend of seat %s seq %r", self.name, entry.text, tag[3])

    def _send_out(self, out: list[Out], inner: bytes | None, now: float) -> None:
        """Send replies: one per message, or one batch per client (always, for a batch request)."""
        if len(out) == 1:
            client, command, seat, seq, body = out[0]
            self._send([PROTOCOL_FRAME, _REPLY, client, command, seat, seq, body], now)
            return
        if not out:
            return
        groups: dict[tuple[bytes, bytes], list[Out]] = {}
        for item in out:
            groups.setdefault((item[0], inner if inner is not None else item[1]), []).append(item)
        for (client, command), group in groups.items():
            if len(group) == 1 or command not in _BATCH_INNER:
                for _, own_command, seat, seq, body in group:
                    self._send([PROTOCOL_FRAME, _REPLY, client, own_command, seat, seq, body], now)
                continue
            frames = [PROTOCOL_FRAME, _REPLY, client, _BATCH, self._world_frame, command]
            for _, _, seat, seq, body in group:
                frames += (seat, seq, body)
            self._send(frames, now)

    def _bad(self, tag: Tag, code: ErrorCode, text: str) -> Reply:
        return Reply(tag[2], tag, GameStatus.BAD_REQUEST, None, {"message": text}, code)

    def _malformed(self, tag: Tag, error: ProtocolError) -> Reply:
        return Reply(tag[2], tag, GameStatus.BAD_REQUEST, None,
                     {"message": MALFORMED_MESSAGE, "reason": str(error)}, ErrorCode.MALFORMED)

    def _error(self, tag: Tag, code: ErrorCode | None, text: str) -> Out:
        """An error for a request that reached no seat (nothing cached)."""
        return (*tag, encode_reply(GameStatus.BAD_REQUEST, None, {"message": text}, code))

    # ------------------------------------------------------------------ timers
    def _schedule(self, game: _Game) -> None:
        """Make sure the heap wakes the game by its next deadline (later entries go stale)."""
        deadline = game.session.next_deadline()
        if deadline is not None and not game.closed and (game.scheduled is None or deadline < game.scheduled):
            game.scheduled = deadline
            heapq.heappush(self._timers, (deadline, next(self._timer_ids), game))

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        out: list[Out] = []
        while timers and timers[0][0] <= now:
            deadline, _, game = heapq.heappop(timers)
            if game.closed or deadline != game.scheduled:
                continue
            game.scheduled = None
            try:
                self._collect(game, game.session.tick(now), out)
            except Exception:
                log.exception("world %s: timers of game %s failed", self.name, game.name)
            self._schedule(game)
        if out:
            self._send_out(out, None, now)

    # ------------------------------------------------------------------ releases and trace
    def _flush(self) -> None:
        if self._released or self._closed:
            self._send([PROTOCOL_FRAME, _RELEASE, pack({"seats": self._released, "closed": self._closed})])
            self._released, self._closed = [], []
        if self._dirty:
            for game in self._dirty:
                events = game.session.events
                if events:
                    game.session.events = []
                    self._publish(game.topic, events)
            self._dirty.clear()

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
                {"kind": "alive", "world": self.name, "games": len(self._games), "seats": len(self._seats)}])

    # ------------------------------------------------------------------ leaving
    def _drop_games(self, reason: str) -> None:
        """Answer every held request GAME_LOST and forget every game (no split brain)."""
        out: list[Out] = []
        for game in self._games.values():
            for reply in game.session.close(reason):
                out.append(self._error(reply.request, ErrorCode.GAME_LOST,
                                       f"Game {game.name} is gone: {reason}."))
            game.closed = True
            if game.session.events:
                self._dirty.add(game)
        for client, command, seat, seq, body in out:
            self._send([PROTOCOL_FRAME, _REPLY, client, command, seat, seq, body])
        self._games.clear()
        self._seats.clear()
        self._timers.clear()
        self._released, self._closed = [], []

    def _shutdown(self) -> None:
        """Drain: refuse new joins, answer what already arrived, tell the broker, go."""
        self._stopping = True
        now = time.monotonic()
        if self._dealer is not None:
            self._drain(now)
        self._flush()
        if self._games:
            log.info("world %s: stopping with %d games", self.name, len(self._games))
            self._drop_games(f"world {self.name} is shutting down")
        self._flush()
        self._send([PROTOCOL_FRAME, _DISCONNECT])
        log.info("world %s: stopped", self.name)


def _send_frames(socket: zmq.Socket, frames: list[bytes]) -> None:
    """``send_multipart(frames, NOBLOCK)`` without its enum flag arithmetic (~4 µs a message).
    Only the first frame can meet the high-water mark (zmq.Again); the others follow it."""
    send = socket.send
    for index in range(len(frames) - 1):
        send(frames[index], _SEND_MORE)
    send(frames[-1], _NOBLOCK)


def _seat_text(seat: bytes) -> str | bytes:
    try:
        return seat.decode()
    except UnicodeDecodeError:
        return seat


def _text(value: Any, field: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(field, f"a non-empty string of at most {limit} characters", describe(value))
    return value


def _join_arguments(seat: bytes, body: bytes) -> tuple[str, str, str, str, str]:
    """(seat text, task, role, game, name) of a JOIN the broker forwarded (task and game filled in)."""
    if not seat or len(seat) > MAX_SEAT_BYTES:
        raise ProtocolError("seat", f"1 to {MAX_SEAT_BYTES} bytes", f"{len(seat)} bytes")
    try:
        text = seat.decode()
    except UnicodeDecodeError:
        raise ProtocolError("seat", "UTF-8 text", describe(seat)) from None
    request = unpack(body, MAX_BODY_BYTES)
    if not isinstance(request, dict):
        raise ProtocolError("join", "a map {task, role, game, name}", describe(request))
    name = request.get("name")
    return (text, _text(request.get("task"), "join.task"), _text(request.get("role"), "join.role", 20),
            _text(request.get("game"), "join.game"), "agent" if name is None else _text(name, "join.name"))


def _reset_arguments(value: Any) -> tuple[bool, bool, int | None]:
    """``[request_trajectory, randomize_topology, seed]``, strictly typed."""
    if not isinstance(value, list) or len(value) != 3:
        raise ProtocolError("reset", "[request_trajectory, randomize_topology, seed]", describe(value))
    trajectory, randomize, seed = value
    if not isinstance(trajectory, bool):
        raise ProtocolError("reset.request_trajectory", "true or false", describe(trajectory))
    if not isinstance(randomize, bool):
        raise ProtocolError("reset.randomize_topology", "true or false", describe(randomize))
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ProtocolError("reset.seed", "an integer or null", describe(seed))
    return trajectory, randomize, seed
