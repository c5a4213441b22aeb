"""SeatPool: many seats over one broker connection, every request sent without waiting.

The environments need what the blocking clients (:class:`~agents.client.BaseAgent`,
:class:`~agents.parallel.ParallelBaseAgent`) cannot give them:

* **held replies survive a call.** A game holds the reply to the step that ends one
  agent's episode until every agent's episode ended (PROTOCOL.md §4). A PettingZoo env
  must go on stepping the other agents meanwhile, and take the held reply when it comes;
  the blocking clients discard a reply that arrives after their call returned.
* **any subset of seats, any command.** A vector env resets the envs that ended and
  steps the others, each with its own seed; an EnvPool-style ``send``/``recv`` sends to
  some envs and later takes whichever answered.

So a pool keeps every request in flight until its reply arrives, keyed by the caller's
own names for its seats. Requests of one call to :meth:`send` that go to one world
travel as one BATCH message, in the order given. A world processes a batch in one go and
answers with **one** message carrying every reply the batch released (PROTOCOL.md §1), so
``wait(keys, need=1)`` returns once that message is in: the requests of the batch still
unanswered then are held by their game. Without any message for ``retry_interval``
seconds, every message with requests still unanswered is sent again, whole (a world
answers a resend from its reply cache, and a resend of a held request changes nothing).

    pool = SeatPool("tcp://127.0.0.1:5570", task="default")
    joined = pool.join({"red": (AgentRole.Attacker, "duel"), "blue": (AgentRole.Defender, "duel")})
    pool.send(Command.STEP, {"red": pack_action(attack), "blue": pack_action(defence)})
    pool.wait({"red", "blue"}, need=1)
    replies = pool.take()            # {"red": ReplyBody, ...}: whatever arrived
    pool.close()                     # QUIT every seat, close the socket
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Collection, Hashable, Mapping

import attrs
import zmq

from protocol import PROTOCOL_FRAME, AgentRole, ArenaError, Command, GameStatus, ReplyBody, decode_reply
from protocol.security import CurveClient

from .client import QUIT_TIMEOUT, join_body
from .connection import (
    BAD_REPLY,
    CLOSED,
    NIL_BODY,
    RETRY_INTERVAL,
    TIMEOUT,
    Connection,
    RequestFailure,
    failure_of,
    split_reply,
)

__all__ = ["Answer", "SeatPool"]

log = logging.getLogger(__name__)

#: What a request gets: the decoded reply, or why there is none.
Answer = ReplyBody | RequestFailure

_JOIN, _BATCH, _QUIT, _ERROR = Command.JOIN.frame, Command.BATCH.frame, Command.QUIT.frame, Command.ERROR.frame
_BATCHABLE = frozenset({Command.STEP, Command.RESET})


@attrs.define
class _Seat:
    frame: bytes
    world: bytes | None
    game: str | None
    role: AgentRole


class SeatPool:
    """Seats named by the caller's keys, one DEALER :class:`~agents.connection.Connection`.

    ``task``: the broker's task name (None: its only or ``default`` task). ``name``: the
    agents' name in their games. ``timeout`` bounds every :meth:`wait`, in seconds.
    Not thread-safe (one socket)."""

    def __init__(self, endpoint: str, *, task: str | None = None, name: str = "ArenaEnv", timeout: float = 120.0,
                 retry_interval: float = RETRY_INTERVAL, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> None:
        if not timeout > 0 or not retry_interval > 0:
            raise ValueError(f"timeout and retry_interval must be positive, got {timeout!r}, {retry_interval!r}")
        self.endpoint = endpoint
        self.task = task
        self.name = name
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        try:
            self.connection = Connection(endpoint, context, curve=curve)
        except zmq.ZMQError as error:
            raise ArenaError(f"cannot connect to {endpoint!r}: {error}") from None
        self.seats: dict[Hashable, _Seat] = {}
        self._inflight: dict[tuple[bytes, bytes], tuple[Hashable, int]] = {}
        self._messages: dict[int, list[bytes]] = {}       # message id -> frames to resend
        self._unanswered: dict[int, int] = {}             # message id -> its requests in flight
        self._next_message = 0
        self._inbox: dict[Hashable, Answer] = {}
        self._join_frames: dict[Hashable, bytes] = {}     # key -> the seat frame its JOIN reply gave
        self._closed = False

    # ------------------------------------------------------------------ queries
    def world_of(self, key: Hashable) -> str | None:
        seat = self.seats.get(key)
        return None if seat is None or seat.world is None else seat.world.decode()

    def game_of(self, key: Hashable) -> str | None:
        seat = self.seats.get(key)
        return None if seat is None else seat.game

    def in_flight(self) -> set[Hashable]:
        """Keys with a request not yet answered (held ones included)."""
        return {key for key, _ in self._inflight.values()}

    # ------------------------------------------------------------------ requests
    def join(self, seats: Mapping[Hashable, tuple[AgentRole, str | None]]) -> dict[Hashable, ReplyBody]:
        """Take a seat per key (``(role, game name or None)``): all JOINs sent, then all
        awaited (a game holds joins until it starts). The replies are CREATED ones with
        the game's catalog (``message["catalog"]``); ArenaError names the first failure."""
        join_seqs: dict[Hashable, bytes] = {}
        for key, (role, game) in seats.items():
            if key in self.seats:
                raise ValueError(f"{key!r} already holds a seat")
            seq = join_seqs[key] = self.connection.next_seq(b"")
            frames = [PROTOCOL_FRAME, _JOIN, b"", seq, join_body(self.task, role, game, self.name, catalog=True)]
            retry = [*frames[:-1], join_body(self.task, role, game, self.name, retry=True, catalog=True)]
            self._post(frames, [((b"", seq), key)], resend=retry)
        self.wait(seats, need=len(seats))
        answers = self.take()
        replies: dict[Hashable, ReplyBody] = {}
        failures = []
        for key, (role, game) in seats.items():
            answer = answers.get(key)
            if not isinstance(answer, ReplyBody) or answer.status is not GameStatus.CREATED or \
                    answer.observation is None or not isinstance(answer.message, dict):
                why = answer if isinstance(answer, RequestFailure) else \
                    failure_of(answer) if isinstance(answer, ReplyBody) else "no reply"
                failures.append(f"{key} could not join task {self.task or '(default)'} as {role.value}: {why}")
                continue
            message = answer.message
            frame = self._join_frames.pop(key, b"") or str(message.get("seat", "")).encode()
            world = message.get("world")
            self.seats[key] = _Seat(frame, world.encode() if isinstance(world, str) and world else None,
                                    message.get("game") if isinstance(message.get("game"), str) else game, role)
            self.connection.adopt_seat(frame, join_seqs[key])
            replies[key] = answer
        if failures:  # the seats taken stay in the pool: close() quits them
            raise ArenaError("; ".join(failures))
        return replies

    def send(self, command: Command, bodies: Mapping[Hashable, bytes]) -> None:
        """Send one request per key, without waiting: STEPs and RESETs of seats on one world
        as one BATCH (in the order of ``bodies``), anything else one message each."""
        groups: dict[bytes | None, list[tuple[Hashable, bytes, bytes, bytes]]] = {}
        for key, body in bodies.items():
            seat = self.seats.get(key)
            if seat is None:
                self._inbox[key] = RequestFailure(None, CLOSED, f"{key!r} holds no seat")
                continue
            seq = self.connection.next_seq(seat.frame)
            world = seat.world if command in _BATCHABLE else None
            groups.setdefault(world, []).append((key, seat.frame, seq, body))
        frame = command.frame
        for world, requests in groups.items():
            if world is None or len(requests) == 1:
                for key, seat_frame, seq, body in requests:
                    self._post([PROTOCOL_FRAME, frame, seat_frame, seq, body], [((seat_frame, seq), key)])
                continue
            frames = [PROTOCOL_FRAME, _BATCH, world, frame]
            for _, seat_frame, seq, body in requests:
                frames += (seat_frame, seq, body)
            self._post(frames, [((seat_frame, seq), key) for key, seat_frame, seq, _ in requests])

    def _post(self, frames: list[bytes], keys: list[tuple[tuple[bytes, bytes], Hashable]],
              resend: list[bytes] | None = None) -> None:
        failure = self.connection.send(frames)
        if failure is not None:
            for _, key in keys:
                self._inbox[key] = failure
            return
        message = self._next_message
        self._next_message += 1
        self._messages[message] = resend or frames
        self._unanswered[message] = len(keys)
        for request, key in keys:
            self._inflight[request] = (key, message)

    # ------------------------------------------------------------------ replies
    def take(self, keys: Collection[Hashable] | None = None) -> dict[Hashable, Answer]:
        """The answers that arrived (for ``keys``, or all), removed from the pool."""
        if keys is None:
            answers, self._inbox = self._inbox, {}
            return answers
        return {key: self._inbox.pop(key) for key in keys if key in self._inbox}

    def wait(self, keys: Collection[Hashable], *, need: int | None = None, timeout: float | None = None) -> int:
        """Read replies until ``need`` (default: all) of ``keys`` have an answer, or the
        timeout passes; then the missing ones of those needed get a TIMEOUT failure.
        Every message is read whole, so ``need=1`` after a batch returns with all that
        the batch released. Returns how many of ``keys`` have an answer."""
        wanted = set(keys)
        need = len(wanted) if need is None else min(need, len(wanted))
        have = sum(1 for key in wanted if key in self._inbox)
        connection = self.connection
        socket = connection.socket
        if socket is None:
            for key in wanted - self._inbox.keys():
                self._inbox[key] = RequestFailure(None, CLOSED, "the pool was closed")
            return len(wanted)
        monotonic = time.monotonic
        deadline = monotonic() + (self.timeout if timeout is None else timeout)
        quiet_since = monotonic()
        while have < need:
            now = monotonic()
            if now >= deadline:
                self._time_out(wanted, timeout if timeout is not None else self.timeout)
                return sum(1 for key in wanted if key in self._inbox)
            if now - quiet_since >= self.retry_interval:
                self._resend()
                quiet_since = now
            wait = min(deadline, quiet_since + self.retry_interval) - now
            if not socket.poll(max(1, math.ceil(wait * 1000)), zmq.POLLIN):
                continue
            quiet_since = monotonic()
            have += self._read(socket, wanted)
        return have

    def _read(self, socket: zmq.Socket, wanted: set[Hashable]) -> int:
        """Read one message; how many answers for ``wanted`` it brought."""
        try:
            frames = socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:  # pragma: no cover - the poll said readable
            return 0
        entries = split_reply(frames)
        if entries is None:
            self.connection.discarded += 1
            return 0
        found = 0
        for command, seat, seq, body in entries:
            request = (b"", seq) if command == _JOIN else (seat, seq)
            held = self._inflight.pop(request, None)
            if held is None and command == _ERROR:
                held = self._inflight.pop((b"", seq), None)
            if held is None:
                if not seq and command == _ERROR:
                    found += self._fail_all(body, wanted)
                else:
                    self.connection.discarded += 1
                continue
            key, message = held
            self._answered(message)
            if command == _JOIN:
                self._join_frames[key] = seat
            self._inbox[key] = decode_body(body)
            found += key in wanted
        return found

    def _answered(self, message: int) -> None:
        left = self._unanswered.get(message, 1) - 1
        if left <= 0:
            self._unanswered.pop(message, None)
            self._messages.pop(message, None)
        else:
            self._unanswered[message] = left

    def _fail_all(self, body: bytes, wanted: set[Hashable]) -> int:
        """The broker could not parse a request (no seat, no seq): nothing else will answer."""
        reply = decode_body(body)
        failure = failure_of(reply) if isinstance(reply, ReplyBody) else reply
        log.warning("the broker at %s refused a request it could not parse: %s", self.endpoint, failure)
        found = 0
        for key, _ in list(self._inflight.values()):
            self._inbox[key] = failure
            found += key in wanted
        self._inflight.clear()
        self._messages.clear()
        self._unanswered.clear()
        return found

    def _resend(self) -> None:
        for frames in self._messages.values():
            self.connection.send(frames)
        if self._messages:
            log.debug("no reply within %g s: %d messages sent again", self.retry_interval, len(self._messages))

    def _time_out(self, wanted: set[Hashable], timeout: float) -> None:
        for request, (key, message) in list(self._inflight.items()):
            if key in wanted and key not in self._inbox:
                del self._inflight[request]
                self._answered(message)
                self._inbox[key] = RequestFailure(None, TIMEOUT, f"no reply within {timeout:g} s from "
                                                  f"{self.endpoint}{self.connection.handshake_note()}")

    # ------------------------------------------------------------------ leaving
    def quit(self, keys: Collection[Hashable] | None = None) -> None:
        """QUIT these seats (default: all), answers awaited at most QUIT_TIMEOUT seconds."""
        keys = list(self.seats) if keys is None else [key for key in keys if key in self.seats]
        if not keys or self.connection.closed:
            return
        # A QUIT answers the seat's held request too (SEAT_RELEASED): forget what it waited for.
        leaving = set(keys)
        for request in [r for r, (key, _) in self._inflight.items() if key in leaving]:
            _, message = self._inflight.pop(request)
            self._answered(message)
        self.take(keys)
        self.send(Command.QUIT, dict.fromkeys(keys, NIL_BODY))
        self.wait(keys, timeout=min(self.timeout, QUIT_TIMEOUT))
        for key, answer in self.take(keys).items():
            if isinstance(answer, RequestFailure) or answer.status is not GameStatus.OK:
                log.info("QUIT of %s: %s", key, answer if isinstance(answer, RequestFailure) else failure_of(answer))
        for key in keys:
            self.seats.pop(key, None)

    def close(self) -> None:
        """Quit every seat and close the socket. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.quit()
        finally:
            self.connection.close()

    def __del__(self) -> None:
        # Like BaseAgent: the socket closes on garbage collection (no QUIT: no I/O here).
        connection = getattr(self, "connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):  # interpreter shutdown
                connection.close()

    def __enter__(self) -> SeatPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def decode_body(body: bytes) -> Answer:
    """A reply body decoded, or the failure to decode it (a hostile reply never raises)."""
    try:
        return decode_reply(body)
    except Exception as error:
        return RequestFailure(None, BAD_REPLY, f"undecodable reply: {type(error).__name__}: {error}")
