"""The broker: one ROUTER for agents, one for world workers, one plain Poller loop.

It stands where NetSecGame's action queue and answer queues stood. It reads routing
frames only (PROTOCOL.md §1): a step is forwarded to the world that holds the seat's
game without decoding its body; only JOIN and STATUS bodies are decoded. Replies carry
the agent's identity back, so the return path needs no lookup.

Faults (DESIGN §7): a world silent for ``liveness`` heartbeats is declared dead, told so
(DISCONNECT, also when it comes back with its old games: no split brain), its in-flight
requests are answered GAME_LOST at once and its seats remembered, so an idle agent hears
GAME_LOST too. A world that re-registers on a new connection keeps its games and their
requests in flight (clients resend; worlds answer resends from their reply cache). After a
restart the broker adopts the games and seats the worlds list in READY; for ``recovery``
seconds a request naming a seat it does not know yet waits for the world that hosts it.
Each client may have at most ``max_inflight`` requests in flight (a flood gets
TOO_MANY_REQUESTS).

>>> broker = Broker(frontend="tcp://127.0.0.1:*", backend="tcp://127.0.0.1:*",
...                 trace="tcp://127.0.0.1:*", trace_input="tcp://127.0.0.1:*")
>>> sorted(broker.bind())
['backend', 'frontend', 'trace', 'trace_input']
>>> broker.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import zmq

from protocol import (
    MAX_BODY_BYTES,
    MAX_SEQ_BYTES,
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    encode_reply,
    unpack,
)
from protocol.security import CurveServer

from . import frames as wire
from .placement import Placement, PlacementError, WorldRecord, join_request, quit_join_request, world_from_ready
from .security import start_authenticator
from .trace import TraceProxy

__all__ = ["DEFAULT_ENDPOINTS", "Broker"]

log = logging.getLogger(__name__)

DEFAULT_ENDPOINTS = {
    "frontend": "tcp://127.0.0.1:5570",
    "backend": "tcp://127.0.0.1:5571",
    "trace": "tcp://127.0.0.1:5572",
    "trace_input": "tcp://127.0.0.1:5573",
}

_JOIN, _STEP, _BATCH, _RESET, _QUIT, _STATUS = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                                Command.RESET.frame, Command.QUIT.frame, Command.STATUS.frame)
_SEAT_COMMANDS = frozenset({_STEP, _RESET, _QUIT})
_BATCH_INNER = frozenset({_STEP, _RESET})
_REQUEST, _REPLY = Command.REQUEST.frame, Command.REPLY.frame
_READY, _HEARTBEAT, _DISCONNECT, _RELEASE = (Command.READY.frame, Command.HEARTBEAT.frame,
                                             Command.DISCONNECT.frame, Command.RELEASE.frame)
_ERROR = Command.ERROR.frame
_NIL = b"\xc0"  # msgpack nil: the body of a QUIT
_HWM = 100_000
#: Requests kept waiting for their seat's world during the recovery window, at most.
PARKED_LIMIT = 10_000
#: Largest message frame a world may send (a batch of many states).
_BACKEND_MAXMSGSIZE = 64 << 20


class Broker:
    """Routes agents' requests to world workers and their replies back."""

    def __init__(self, frontend: str = DEFAULT_ENDPOINTS["frontend"], backend: str = DEFAULT_ENDPOINTS["backend"],
                 trace: str | None = DEFAULT_ENDPOINTS["trace"],
                 trace_input: str | None = DEFAULT_ENDPOINTS["trace_input"], *, heartbeat: float = 1.0,
                 liveness: int = 3, recovery: float = 10.0, max_inflight: int = 4096,
                 curve: CurveServer | None = None, context: zmq.Context | None = None) -> None:
        if liveness < 3:
            raise ValueError("liveness must be at least 3 heartbeats")
        if heartbeat <= 0 or recovery < 0 or max_inflight < 1:
            raise ValueError("heartbeat and max_inflight must be positive, recovery not negative")
        self.addresses = {"frontend": frontend, "backend": backend, "trace": trace, "trace_input": trace_input}
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.recovery = recovery
        self.max_inflight = max_inflight
        #: requests in flight per client (the flood limit)
        self.inflight_of: dict[bytes, int] = {}
        #: names of worlds declared dead -> when: their old games are not adopted again
        self.dead_worlds: dict[str, float] = {}
        self._parked: deque[list[bytes]] = deque()
        self._recovering_until = 0.0
        self._dropped_replies = 0
        self.context = context or zmq.Context()
        self._own_context = context is None
        # CURVE (optional): every socket a CURVE server, ZAP admitting allow-listed clients only.
        self.curve = curve
        self._authenticator = start_authenticator(self.context, curve) if curve is not None else None
        self.placement = Placement()
        self.endpoints: dict[str, str] = {}
        self._stop = threading.Event()
        self.frontend = self._router()
        self.backend = self._router()
        self.frontend.setsockopt(zmq.MAXMSGSIZE, MAX_BODY_BYTES * 4)
        self.backend.setsockopt(zmq.MAXMSGSIZE, _BACKEND_MAXMSGSIZE)
        # Clients name their sockets; a reconnecting client takes its identity (and seats) back.
        self.frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.trace_proxy = TraceProxy(self.context, trace_input, trace, curve=curve) if trace and trace_input else None

    def _router(self) -> zmq.Socket:
        socket = self.context.socket(zmq.ROUTER)
        if self.curve is not None:
            self.curve.apply(socket)
        socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        socket.setsockopt(zmq.SNDHWM, _HWM)
        socket.setsockopt(zmq.RCVHWM, _HWM)
        socket.setsockopt(zmq.LINGER, 0)
        return socket

    def bind(self) -> dict[str, str]:
        """Bind every socket; returns the bound endpoints (``*`` ports resolved)."""
        for name, socket in (("frontend", self.frontend), ("backend", self.backend)):
            socket.bind(self.addresses[name])
            self.endpoints[name] = socket.getsockopt_string(zmq.LAST_ENDPOINT)
        if self.trace_proxy is not None:
            self.endpoints.update(self.trace_proxy.bind())
        return dict(self.endpoints)

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        self._stop.set()

    def close(self) -> None:
        """Close the sockets. Worlds are not told: to them a broker that went away is one
        that may come back, and they re-register with their games (DESIGN §7)."""
        if self.trace_proxy is not None:
            self.trace_proxy.close()
        self.frontend.close(linger=0)
        self.backend.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._own_context:
            self.context.term()

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Serve until :meth:`stop`; binds first if :meth:`bind` was not called."""
        if not self.endpoints:
            self.bind()
        if self.trace_proxy is not None:
            self.trace_proxy.start()
        poller = zmq.Poller()
        poller.register(self.frontend, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        next_beat = time.monotonic()
        self._recovering_until = next_beat + self.recovery
        log.info("broker serving: %s", self.endpoints)  # pragma: no mutate
        while not self._stop.is_set():
            timeout = max(0.0, next_beat - time.monotonic())
            events = dict(poller.poll(timeout * 1000))
            if self.backend in events:
                self._drain(self.backend, self._on_backend)
            if self.frontend in events:
                self._drain(self.frontend, self._on_frontend)
            now = time.monotonic()
            if now >= next_beat:
                self._beat(now)
                beats = [w.heartbeat for w in self.placement.worlds.values()]
                next_beat = now + min([self.heartbeat, *beats]) / 2

    def _drain(self, socket: zmq.Socket, handler: Any, limit: int = 1000) -> None:
        """Handle what is queued, at most ``limit`` messages, so neither side starves."""
        for _ in range(limit):
            try:
                frames = wire.receive(socket)
            except zmq.Again:
                return
            try:
                handler(frames)
            except Exception:  # never let one message stop the broker
                log.exception("message dropped: %r", [f[:40] for f in frames[:6]])  # pragma: no mutate
            if not wire.readable(socket):
                return

    # ------------------------------------------------------------------ agents
    def _on_frontend(self, frames: list[bytes]) -> None:
        client = frames[0]
        if len(frames) < 3 or frames[1] != PROTOCOL_FRAME:
            other_version = len(frames) > 1 and frames[1] != PROTOCOL_FRAME and frames[1].startswith(b"ARENA")
            self._error(client, _ERROR, b"", b"", ErrorCode.BAD_VERSION if other_version else ErrorCode.BAD_FRAMES,
                        f"Expected {'version 1' if other_version else 'the frame ARENA1'} first (PROTOCOL.md §1).")
            return
        command = frames[2]
        if command in _SEAT_COMMANDS:
            if len(frames) != 6 or not 0 < len(frames[4]) <= MAX_SEQ_BYTES:
                self._error(client, command, b"", b"", ErrorCode.BAD_FRAMES,
                            f"Expected [ARENA1][command][seat][seq of 1 to {MAX_SEQ_BYTES} bytes][body].")
                return
            seat, seq = frames[3], frames[4]
            record = self.placement.seats.get(seat)
            if record is None:
                if not seat and command == _QUIT:
                    self._quit_join(client, frames)
                elif not self._park(frames, seat):
                    self._unknown_seat(client, command, seat, seq)
                return
            if record.client != client:
                if record.client:
                    self._error(client, command, seat, seq, ErrorCode.NOT_YOUR_SEAT,
                                "This seat belongs to another connection.")
                    return
                record.client = client  # a seat adopted from an old world's READY: first claimant
            world = self.placement.worlds.get(record.world)
            if world is None:
                self._error(client, command, seat, seq, ErrorCode.GAME_LOST, "The seat's world is gone.")
                return
            if record.join_seq:
                self.placement.joined(record)
            if self._track(world, client, command, seat, seq):
                self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, command, seat, seq, frames[5]])
        elif command == _BATCH:
            self._on_batch(client, frames)
        elif command == _JOIN:
            self._on_join(client, frames)
        elif command == _STATUS:
            seq = frames[4] if len(frames) > 4 else b""
            self._send_client([client, PROTOCOL_FRAME, _STATUS, b"", seq[:MAX_SEQ_BYTES],
                               encode_reply(GameStatus.OK, None, self.placement.status(time.monotonic()))])
        else:
            self._error(client, _ERROR, b"", b"", ErrorCode.BAD_FRAMES,
                        f"Unknown command {command[:4]!r} (PROTOCOL.md §2).")

    def _track(self, world: WorldRecord, client: bytes, command: bytes, seat: bytes, seq: bytes) -> bool:
        """Note a request as in flight on ``world``; False (answered) past the flood limit.
        A resend of a request still in flight is not counted twice."""
        key = (seat, seq)
        if key not in world.inflight:
            count = self.inflight_of.get(client, 0)
            if count >= self.max_inflight:
                self._error(client, command, seat, seq, ErrorCode.TOO_MANY_REQUESTS,
                            f"This connection has {count} requests in flight, the most a client may have.")
                return False
            self.inflight_of[client] = count + 1
        world.inflight[key] = (client, command)
        return True

    def _settled(self, client: bytes) -> None:
        count = self.inflight_of.get(client, 1) - 1
        if count > 0:
            self.inflight_of[client] = count
        else:
            self.inflight_of.pop(client, None)

    def _park(self, frames: list[bytes], seat: bytes) -> bool:
        """While recovering from a restart, keep a request for a seat no world listed yet:
        its world may still be re-registering. False when it must be answered now."""
        if (seat in self.placement.lost or time.monotonic() >= self._recovering_until
                or len(self._parked) >= PARKED_LIMIT):
            return False
        self._parked.append(frames)
        return True

    def _unpark(self) -> None:
        """Handle the parked requests again (a world registered, or the window closed)."""
        parked, self._parked = self._parked, deque()
        for frames in parked:
            self._on_frontend(frames)

    def _unknown_seat(self, client: bytes, command: bytes, seat: bytes, seq: bytes) -> None:
        reason = self.placement.lost.get(seat)
        if reason is not None:
            self._error(client, command, seat, seq, ErrorCode.GAME_LOST,
                        f"The world hosting this game is gone ({reason}).")
        else:
            self._error(client, command, seat, seq, ErrorCode.UNKNOWN_SEAT,
                        "Unknown seat: JOIN first (or the seat was released).")

    def _on_join(self, client: bytes, frames: list[bytes]) -> None:
        if len(frames) != 6 or not 0 < len(frames[4]) <= MAX_SEQ_BYTES:
            self._error(client, _JOIN, b"", b"", ErrorCode.BAD_FRAMES,
                        f"Expected [ARENA1][JOIN][][seq of 1 to {MAX_SEQ_BYTES} bytes][body].")
            return
        seq = frames[4]
        existing = self.placement.seats.get(self.placement.joins.get((client, seq), b""))
        if existing is not None:  # a resend: to the seat its first sending took
            world = self.placement.worlds.get(existing.world)
            if world is not None and self._track(world, client, _JOIN, existing.seat, seq):
                self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, _JOIN, existing.seat, seq,
                                                  frames[5]])
            return
        try:
            request = unpack(frames[5], MAX_BODY_BYTES)
            task, role, game, name, retry = join_request(request)
        except ProtocolError as error:
            self._error(client, _JOIN, b"", seq, ErrorCode.MALFORMED, str(error))
            return
        if retry and self._park(frames, b""):
            return  # a resent JOIN after a restart: its seat may be on a world not back yet
        try:
            seat = self.placement.place_join(client, task, role, game, seq)
        except PlacementError as error:
            self._error(client, _JOIN, b"", seq, error.code, error.message)
            return
        record = self.placement.games[seat.game]
        world = self.placement.worlds[seat.world]
        if not self._track(world, client, _JOIN, seat.seat, seq):
            self.placement.release(seat.seat)
            return
        from protocol import pack  # local: JOIN is rare

        forwarded = {"task": record.task, "role": role, "game": record.name, "name": name}
        if request.get("catalog") is True:
            forwarded["catalog"] = True
        body = pack(forwarded)
        self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, _JOIN, seat.seat, seq, body])

    def _quit_join(self, client: bytes, frames: list[bytes]) -> None:
        """QUIT with an empty seat frame: give up the seat of this client's JOIN whose seq the
        body names, before the client knows it (PROTOCOL.md §3.2). The QUIT goes on to the
        seat's world under its own seq, so the world answers both: the held JOIN
        SEAT_RELEASED, the QUIT OK. A JOIN that holds no seat (never placed, refused, already
        released, or followed by other requests of its seat) leaves nothing to give up: the
        broker answers OK itself."""
        seq = frames[4]
        try:
            join_seq = quit_join_request(unpack(frames[5], MAX_BODY_BYTES))
        except ProtocolError as error:
            self._error(client, _QUIT, b"", seq, ErrorCode.MALFORMED, str(error))
            return
        record = self.placement.seats.get(self.placement.joins.get((client, join_seq), b""))
        world = self.placement.worlds.get(record.world) if record is not None else None
        if record is None or world is None:
            if self._parked_join(client, join_seq) and self._park(frames, b""):
                return  # after a restart its JOIN waits for its world: the QUIT waits behind it
            self._send_client([client, PROTOCOL_FRAME, _QUIT, b"", seq, encode_reply(
                GameStatus.OK, None, {"message": "No seat waits for this JOIN: nothing to give up."})])
            return
        if self._track(world, client, _QUIT, record.seat, seq):
            self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, _QUIT, record.seat, seq, _NIL])

    def _parked_join(self, client: bytes, seq: bytes) -> bool:
        """Whether that JOIN of ``client`` is parked (the recovery window; rare, so a scan)."""
        return any(frames[0] == client and frames[2] == _JOIN and frames[4] == seq for frames in self._parked)

    def _on_batch(self, client: bytes, frames: list[bytes]) -> None:
        if len(frames) < 8 or (len(frames) - 5) % 3 or frames[4] not in _BATCH_INNER:
            self._error(client, _BATCH, b"", b"", ErrorCode.BAD_FRAMES,
                        "Expected [ARENA1][BATCH][world][STEP|RESET] then (seat, seq, body) triples.")
            return
        world_name, inner = frames[3], frames[4]
        seats = self.placement.seats
        lost = self.placement.lost
        if any(frames[index] not in seats and frames[index] not in lost for index in range(5, len(frames), 3)
               ) and self._park(frames, b""):
            return
        world = next((w for w in self.placement.worlds.values() if w.name.encode() == world_name), None)
        forward = [PROTOCOL_FRAME, _REQUEST, client, _BATCH, world_name, inner]
        for index in range(5, len(frames), 3):
            seat, seq, body = frames[index], frames[index + 1], frames[index + 2]
            if not 0 < len(seq) <= MAX_SEQ_BYTES:
                self._error(client, inner, seat, b"", ErrorCode.BAD_FRAMES,
                            f"A batch's seq frames must be 1 to {MAX_SEQ_BYTES} bytes.")
                continue
            record = seats.get(seat)
            if record is None:
                self._unknown_seat(client, inner, seat, seq)
                continue
            if record.client and record.client != client:
                self._error(client, inner, seat, seq, ErrorCode.NOT_YOUR_SEAT,
                            "This seat belongs to another connection.")
                continue
            if world is None or record.world != world.identity:
                self._error(client, inner, seat, seq, ErrorCode.GAME_LOST,
                            f"Seat is not on world {world_name[:40]!r}.")
                continue
            record.client = client
            if record.join_seq:
                self.placement.joined(record)
            if self._track(world, client, inner, seat, seq):
                forward += (seat, seq, body)
        if world is not None and len(forward) > 6:
            self._send_world(world.identity, forward)

    def _error(self, client: bytes, command: bytes, seat: bytes, seq: bytes, code: ErrorCode,
               message: str) -> None:
        self._send_client([client, PROTOCOL_FRAME, command, seat, seq,
                           encode_reply(GameStatus.BAD_REQUEST, None, {"message": message}, code)])

    def _send_client(self, frames: list[bytes]) -> None:
        try:
            wire.send_message(self.frontend, frames)
        except zmq.Again:
            self._dropped_replies += 1
            if self._dropped_replies == 1 or self._dropped_replies % 1000 == 0:
                log.warning("agent %r is not reading (at its high-water mark): reply dropped (%d so far)",
                            frames[0][:40], self._dropped_replies)
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            log.debug("agent %r is gone: reply dropped", frames[0])  # pragma: no mutate

    # ------------------------------------------------------------------ worlds
    def _on_backend(self, frames: list[bytes]) -> None:
        identity = frames[0]
        if len(frames) < 3 or frames[1] != PROTOCOL_FRAME:
            log.warning("world message with a bad header dropped")  # pragma: no mutate
            return
        command = frames[2]
        world = self.placement.worlds.get(identity)
        if command == _READY:
            self._on_ready(identity, frames)
            return
        if world is None:
            if command != _DISCONNECT:  # a world we declared dead, or a stranger: it must register
                self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            return
        world.expiry = time.monotonic() + world.heartbeat * self.liveness
        if command == _REPLY:
            count = len(frames)
            if count < 8:
                log.warning("world %s: a REPLY of %d frames dropped", world.name, count)  # pragma: no mutate
                return
            inflight = world.inflight
            client = frames[3]
            # [BATCH][][][body] is the world's error about a whole batch, not a batch reply.
            if frames[4] == _BATCH and not (count == 8 and not frames[5] and not frames[6]):
                if count < 10 or (count - 7) % 3:
                    log.warning("world %s: a malformed batch REPLY dropped", world.name)  # pragma: no mutate
                    return
                for index in range(7, count - 1, 3):
                    if inflight.pop((frames[index], frames[index + 1]), None) is not None:
                        self._settled(client)
            elif count != 8:
                log.warning("world %s: a REPLY of %d frames dropped", world.name, count)  # pragma: no mutate
                return
            elif inflight.pop((frames[5], frames[6]), None) is not None:
                self._settled(client)
            self._send_client([client, PROTOCOL_FRAME, *frames[4:]])
        elif command == _RELEASE:
            self._on_release(world, frames)
        elif command == _DISCONNECT:
            self._world_gone(identity, "it disconnected")
        elif command != _HEARTBEAT:
            log.warning("world %s: unknown command %r dropped", world.name, command[:4])  # pragma: no mutate

    def _on_release(self, world: WorldRecord, frames: list[bytes]) -> None:
        try:
            self.placement.release_from(world, unpack(frames[3], MAX_BODY_BYTES) if len(frames) == 4 else None)
        except (ProtocolError, ValueError) as error:
            log.warning("world %s: a malformed RELEASE dropped: %s", world.name, error)  # pragma: no mutate

    def _on_ready(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            body = unpack(frames[3], MAX_BODY_BYTES) if len(frames) == 4 else None
            world, games = world_from_ready(identity, body, time.monotonic(), self.heartbeat, self.liveness)
        except (ProtocolError, ValueError) as error:
            log.warning("READY refused: %s", error)  # pragma: no mutate
            self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            self._world_gone(identity, "its READY was refused")
            return
        taken = self.placement.conflict(world, games)
        if taken:
            log.warning("READY of world %s refused: %s", world.name, taken)  # pragma: no mutate
            self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            return
        if games and world.name in self.dead_worlds:
            # Declared dead, it comes back with the games its agents were told are lost: it
            # must drop them (DISCONNECT) and register again empty. No split brain.
            # pragma: no mutate start
            log.warning("world %s comes back after it was declared dead: told to drop its %d games",
                        world.name, len(games))
            # pragma: no mutate end
            self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            return
        self.dead_worlds.pop(world.name, None)
        hosted = {seat.seat for _, _, seats in games for seat in seats}
        carried: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
        for old in [w for w in self.placement.worlds.values() if w.identity == identity or w.name == world.name]:
            # The same world on a new connection: what is in flight for games it still
            # hosts stays in flight (clients resend); the rest is lost.
            for key in [key for key in old.inflight if key[0] in hosted]:
                carried[key] = old.inflight.pop(key)
            self._world_gone(old.identity, "it registered again on a new connection")
        self.placement.add_world(world, games)
        world.inflight.update(carried)
        # pragma: no mutate start
        log.info("world %s ready: tasks %s, capacity %d, %d games adopted", world.name, sorted(world.tasks),
                 world.capacity, len(world.games))
        # pragma: no mutate end
        if self._parked:
            self._unpark()

    def _world_gone(self, identity: bytes, reason: str) -> None:
        world = self.placement.remove_world(identity, reason)
        if world is None:
            return
        level = logging.WARNING if world.games or world.inflight else logging.INFO
        log.log(level, "world %s removed: %s; %d games lost", world.name, reason, len(world.games))  # pragma: no mutate
        for (seat, seq), (client, command) in world.inflight.items():
            self._settled(client)
            self._error(client, command, seat, seq, ErrorCode.GAME_LOST,
                        f"The world hosting this game is gone ({reason}).")

    def _send_world(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            wire.send_message(self.backend, [identity, *frames])
        except zmq.Again:
            log.warning("world %r is not reading: message dropped", identity)  # pragma: no mutate
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            log.debug("world %r is unreachable: message dropped", identity)  # pragma: no mutate

    def _beat(self, now: float) -> None:
        """Heartbeat each world at its own rate; declare silent worlds dead; end the
        recovery window."""
        for world in list(self.placement.worlds.values()):
            if world.expiry <= now:
                self._send_world(world.identity, [PROTOCOL_FRAME, _DISCONNECT])
                self.dead_worlds[world.name] = now
                while len(self.dead_worlds) > 10_000:
                    del self.dead_worlds[next(iter(self.dead_worlds))]
                self._world_gone(world.identity, "it missed its heartbeats")
            elif now >= world.next_beat:
                self._send_world(world.identity, [PROTOCOL_FRAME, _HEARTBEAT])
                world.next_beat = now + world.heartbeat
        if self._parked and now >= self._recovering_until:
            self._unpark()

