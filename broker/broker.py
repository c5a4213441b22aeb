"""The broker: one ROUTER for agents, one for world workers, one plain Poller loop.

It stands where NetSecGame's action queue and answer queues stood. It reads routing
frames only (PROTOCOL.md §1): a step is forwarded to the world that holds the seat's
game without decoding its body; only JOIN and STATUS bodies are decoded. Replies carry
the agent's identity back, so the return path needs no lookup.

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
from typing import Any

import zmq

from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    encode_reply,
    unpack,
)

from .placement import Placement, PlacementError, TaskInfo, WorldRecord
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
_HWM = 100_000


def _text(value: Any, field: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(field, f"a non-empty string of at most {limit} characters", repr(value)[:60])
    return value


class Broker:
    """Routes agents' requests to world workers and their replies back."""

    def __init__(self, frontend: str = DEFAULT_ENDPOINTS["frontend"], backend: str = DEFAULT_ENDPOINTS["backend"],
                 trace: str | None = DEFAULT_ENDPOINTS["trace"],
                 trace_input: str | None = DEFAULT_ENDPOINTS["trace_input"], *, heartbeat: float = 1.0,
                 liveness: int = 3, context: zmq.Context | None = None) -> None:
        if liveness < 3:
            raise ValueError("liveness must be at least 3 heartbeats")
        self.addresses = {"frontend": frontend, "backend": backend, "trace": trace, "trace_input": trace_input}
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.context = context or zmq.Context()
        self._own_context = context is None
        self.placement = Placement()
        self.endpoints: dict[str, str] = {}
        self._stop = threading.Event()
        self.frontend = self._router()
        self.backend = self._router()
        self.frontend.setsockopt(zmq.MAXMSGSIZE, MAX_BODY_BYTES * 4)
        # Clients name their sockets; a reconnecting client takes its identity (and seats) back.
        self.frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.trace_proxy = TraceProxy(self.context, trace_input, trace) if trace and trace_input else None
        self.started = time.monotonic()

    def _router(self) -> zmq.Socket:
        socket = self.context.socket(zmq.ROUTER)
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
        log.info("broker serving: %s", self.endpoints)
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
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                handler(frames)
            except Exception:  # never let one message stop the broker
                log.exception("message dropped: %r", [f[:40] for f in frames[:6]])

    # ------------------------------------------------------------------ agents
    def _on_frontend(self, frames: list[bytes]) -> None:
        client = frames[0]
        if len(frames) < 3 or frames[1] != PROTOCOL_FRAME:
            other_version = len(frames) > 1 and frames[1].startswith(b"ARENA")
            self._error(client, _ERROR, b"", b"", ErrorCode.BAD_VERSION if other_version else ErrorCode.BAD_FRAMES,
                        f"Expected {'version 1' if other_version else 'the frame ARENA1'} first (PROTOCOL.md §1).")
            return
        command = frames[2]
        if command in _SEAT_COMMANDS:
            if len(frames) != 6:
                self._error(client, command, b"", b"", ErrorCode.BAD_FRAMES,
                            "Expected [ARENA1][command][seat][seq][body].")
                return
            seat, seq = frames[3], frames[4]
            record = self.placement.seats.get(seat)
            if record is None:
                self._error(client, command, seat, seq, ErrorCode.UNKNOWN_SEAT,
                            "Unknown seat: JOIN first (or the seat was released).")
                return
            if record.client != client:
                if record.client:
                    self._error(client, command, seat, seq, ErrorCode.NOT_YOUR_SEAT,
                                "This seat belongs to another connection.")
                    return
                record.client = client  # a seat adopted from a world's READY: first claimant
            world = self.placement.worlds.get(record.world)
            if world is None:
                self._error(client, command, seat, seq, ErrorCode.GAME_LOST, "The seat's world is gone.")
                return
            world.inflight[(seat, seq)] = (client, command)
            self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, command, seat, seq, frames[5]])
        elif command == _BATCH:
            self._on_batch(client, frames)
        elif command == _JOIN:
            self._on_join(client, frames)
        elif command == _STATUS:
            seq = frames[4] if len(frames) > 4 else b""
            self._send_client([client, PROTOCOL_FRAME, _STATUS, b"", seq,
                               encode_reply(GameStatus.OK, None, self.placement.status(time.monotonic()))])
        else:
            self._error(client, _ERROR, b"", b"", ErrorCode.BAD_FRAMES,
                        f"Unknown command {command[:4]!r} (PROTOCOL.md §2).")

    def _on_join(self, client: bytes, frames: list[bytes]) -> None:
        if len(frames) != 6:
            self._error(client, _JOIN, b"", b"", ErrorCode.BAD_FRAMES, "Expected [ARENA1][JOIN][][seq][body].")
            return
        seq = frames[4]
        try:
            body = unpack(frames[5], MAX_BODY_BYTES)
            if not isinstance(body, dict):
                raise ProtocolError("join", "a map {task, role, game, name}", type(body).__name__)
            task = _text(body.get("task"), "join.task", 200, optional=True)
            role = _text(body.get("role"), "join.role", 20)
            game = _text(body.get("game"), "join.game", 200, optional=True)
            name = _text(body.get("name", "agent"), "join.name", 200)
            try:
                role = AgentRole.from_string(role).value  # type: ignore[arg-type]
            except ValueError:
                raise ProtocolError("join.role", "Attacker, Defender or Benign", repr(body.get("role"))[:40]) from None
        except ProtocolError as error:
            self._error(client, _JOIN, b"", seq, ErrorCode.MALFORMED, str(error))
            return
        try:
            seat = self.placement.place_join(client, task, role, game)
        except PlacementError as error:
            self._error(client, _JOIN, b"", seq, error.code, error.message)
            return
        record = self.placement.games[seat.game]
        world = self.placement.worlds[seat.world]
        world.inflight[(seat.seat, seq)] = (client, _JOIN)
        from protocol import pack  # local: JOIN is rare

        body = pack({"task": record.task, "role": role, "game": record.name, "name": name})
        self._send_world(world.identity, [PROTOCOL_FRAME, _REQUEST, client, _JOIN, seat.seat, seq, body])

    def _on_batch(self, client: bytes, frames: list[bytes]) -> None:
        if len(frames) < 8 or (len(frames) - 5) % 3 or frames[4] not in _BATCH_INNER:
            self._error(client, _BATCH, b"", b"", ErrorCode.BAD_FRAMES,
                        "Expected [ARENA1][BATCH][world][STEP|RESET] then (seat, seq, body) triples.")
            return
        world_name, inner = frames[3], frames[4]
        world = next((w for w in self.placement.worlds.values() if w.name.encode() == world_name), None)
        forward = [PROTOCOL_FRAME, _REQUEST, client, _BATCH, world_name, inner]
        seats = self.placement.seats
        for index in range(5, len(frames), 3):
            seat, seq, body = frames[index], frames[index + 1], frames[index + 2]
            record = seats.get(seat)
            if record is None or (record.client and record.client != client):
                self._error(client, inner, seat, seq, ErrorCode.UNKNOWN_SEAT if record is None
                            else ErrorCode.NOT_YOUR_SEAT, "Unknown seat, or another connection's seat.")
                continue
            if world is None or record.world != world.identity:
                self._error(client, inner, seat, seq, ErrorCode.GAME_LOST,
                            f"Seat is not on world {world_name[:40]!r}.")
                continue
            record.client = client
            world.inflight[(seat, seq)] = (client, inner)
            forward += (seat, seq, body)
        if world is not None and len(forward) > 6:
            self._send_world(world.identity, forward)

    def _error(self, client: bytes, command: bytes, seat: bytes, seq: bytes, code: ErrorCode,
               message: str) -> None:
        self._send_client([client, PROTOCOL_FRAME, command, seat, seq,
                           encode_reply(GameStatus.BAD_REQUEST, None, {"message": message}, code)])

    def _send_client(self, frames: list[bytes]) -> None:
        try:
            self.frontend.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            log.warning("agent %r is not reading (at its high-water mark): reply dropped", frames[0])
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            log.debug("agent %r is gone: reply dropped", frames[0])

    # ------------------------------------------------------------------ worlds
    def _on_backend(self, frames: list[bytes]) -> None:
        identity = frames[0]
        if len(frames) < 3 or frames[1] != PROTOCOL_FRAME:
            log.warning("world message with a bad header dropped")
            return
        command = frames[2]
        world = self.placement.worlds.get(identity)
        if command == _REPLY:
            if world is None:
                self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
                return
            world.expiry = time.monotonic() + world.heartbeat * self.liveness
            client, inner = frames[3], frames[4]
            inflight = world.inflight
            if inner == _BATCH:
                for index in range(7, len(frames) - 1, 3):
                    inflight.pop((frames[index], frames[index + 1]), None)
            elif len(frames) >= 7:
                inflight.pop((frames[5], frames[6]), None)
            self._send_client([client, PROTOCOL_FRAME, *frames[4:]])
        elif command == _HEARTBEAT:
            if world is None:
                self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            else:
                world.expiry = time.monotonic() + world.heartbeat * self.liveness
        elif command == _READY:
            self._on_ready(identity, frames)
        elif command == _RELEASE:
            if world is None:
                return
            world.expiry = time.monotonic() + world.heartbeat * self.liveness
            body = unpack(frames[3], MAX_BODY_BYTES) if len(frames) > 3 else {}
            for seat in body.get("seats", []) if isinstance(body, dict) else []:
                self.placement.release(seat.encode() if isinstance(seat, str) else bytes(seat))
            for game in body.get("closed", []) if isinstance(body, dict) else []:
                self.placement.close_game(str(game))
        elif command == _DISCONNECT:
            self._world_gone(identity, "it disconnected")
        else:
            log.warning("unknown world command %r dropped", command[:4])

    def _on_ready(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            body = unpack(frames[3], MAX_BODY_BYTES) if len(frames) == 4 else None
            if not isinstance(body, dict):
                raise ProtocolError("ready", "a map", type(body).__name__)
            tasks = {
                str(name): TaskInfo(str(name), {str(r): int(n) for r, n in info["seats"].items()},
                                    frozenset(str(r) for r in info["allowed_roles"]), str(info.get("hash", "")))
                for name, info in body["tasks"].items()
            }
            now = time.monotonic()
            heartbeat = float(body.get("heartbeat", self.heartbeat))
            if not 0 < heartbeat <= 60:
                raise ValueError(f"heartbeat {heartbeat} s is out of range")
            world = WorldRecord(identity, str(body["world"]), int(body.get("capacity", 1000)), tasks, heartbeat,
                                expiry=now + heartbeat * self.liveness, registered_at=now)
            self._world_gone(identity, "it registered again")
            for other in [w for w in self.placement.worlds.values() if w.name == world.name]:
                self._world_gone(other.identity, "it registered again on a new connection")
            self.placement.add_world(world, body.get("games", []))
        except (ProtocolError, KeyError, TypeError, ValueError, AttributeError) as error:
            log.warning("READY refused: %s", error)
            self._send_world(identity, [PROTOCOL_FRAME, _DISCONNECT])
            return
        log.info("world %s ready: tasks %s, capacity %d, %d games adopted", world.name, sorted(tasks),
                 world.capacity, len(world.games))

    def _world_gone(self, identity: bytes, reason: str) -> None:
        world = self.placement.remove_world(identity)
        if world is None:
            return
        level = logging.WARNING if world.games or world.inflight else logging.INFO
        log.log(level, "world %s removed: %s; %d games lost", world.name, reason, len(world.games))
        for (seat, seq), (client, command) in world.inflight.items():
            self._error(client, command, seat, seq, ErrorCode.GAME_LOST,
                        f"The world hosting this game is gone ({reason}).")

    def _send_world(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            self.backend.send_multipart([identity, *frames], zmq.NOBLOCK)
        except zmq.Again:
            log.warning("world %r is not reading: message dropped", identity)
        except zmq.ZMQError as error:
            if error.errno != zmq.EHOSTUNREACH:
                raise
            log.debug("world %r is unreachable: message dropped", identity)

    def _beat(self, now: float) -> None:
        """Heartbeat each world at its own rate; declare silent worlds dead."""
        for world in list(self.placement.worlds.values()):
            if world.expiry <= now:
                self._send_world(world.identity, [PROTOCOL_FRAME, _DISCONNECT])
                self._world_gone(world.identity, "it missed its heartbeats")
            elif now >= world.next_beat:
                self._send_world(world.identity, [PROTOCOL_FRAME, _HEARTBEAT])
                world.next_beat = now + world.heartbeat
