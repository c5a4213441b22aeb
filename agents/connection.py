"""Socket and request plumbing shared by :class:`~agents.client.BaseAgent` and
:class:`~agents.parallel.ParallelBaseAgent` (PROTOCOL.md §1, agent side).

A :class:`Connection` is one DEALER socket connected to one broker frontend. It numbers
requests per seat (8-byte big-endian counters, ``protocol.seq_bytes``), sends without
ever blocking, and splits what comes back (single replies and batch replies alike) into
``(command, seat, seq, body)`` entries, which the clients match to their requests by
``(seat, seq)`` (a JOIN's reply by its sequence number alone: the seat is new).
:func:`await_replies` is the one bounded wait both clients use (:func:`read_ready` its
non-blocking form).

A request that fails never raises: the client gets a :class:`RequestFailure` (status,
code, message), logs it and keeps it in ``last_error``. A wait that has had no reply for
:data:`NOTICE_AFTER` seconds is said once (a :class:`Silence`: whether anything answers
at the address, or the game holds the request), long before the timeout. A JOIN the
client gives up before its reply came is quit by seq (:func:`quit_join_body`; such a
QUIT is matched by :func:`request_key`).

    connection = Connection("tcp://127.0.0.1:5570")
    seq = connection.next_seq(b"")
    connection.send([PROTOCOL_FRAME, Command.JOIN.frame, b"", seq, body])
    ...
    connection.close()
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import zmq

from protocol import (
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    ReplyBody,
    decode_reply,
    int_from_seq,
    pack,
    seq_bytes,
)
from protocol.security import CurveClient
from protocol.transport import NOTICE_AFTER, LinkWatch

__all__ = [
    "BAD_REPLY",
    "CLOSED",
    "HWM",
    "NIL_BODY",
    "NOTICE_AFTER",
    "RETRY_INTERVAL",
    "SEAT_GONE",
    "SEND_FAILED",
    "TIMEOUT",
    "Connection",
    "Key",
    "RequestFailure",
    "Silence",
    "await_replies",
    "failure_of",
    "quit_join_body",
    "read_ready",
    "request_key",
    "split_reply",
]

#: ``RequestFailure.code`` values for failures seen by the client itself (the server's
#: own codes are :class:`protocol.ErrorCode` members).
TIMEOUT = "TIMEOUT"          # no reply within the client's timeout
BAD_REPLY = "BAD_REPLY"      # a reply came but could not be decoded
SEND_FAILED = "SEND_FAILED"  # the request could not be queued (socket at its high-water mark)
CLOSED = "CLOSED"            # the client's connection was already terminated

#: Server codes that mean the request's seat is gone: the client forgets it, so that
#: ``register()`` can take a new one.
SEAT_GONE = frozenset({ErrorCode.UNKNOWN_SEAT, ErrorCode.SEAT_RELEASED, ErrorCode.GAME_LOST,
                       ErrorCode.NOT_JOINED})

#: Send and receive high-water marks (messages) of a client socket: far above what a
#: client keeps in flight, so pipelining never hits them, but not unbounded.
HWM = 100_000

#: A request's key: ``(seat frame, seq frame)``; a JOIN's seat is ``b""``, and the QUIT of a
#: pending JOIN (empty seat frame) is keyed by its command frame (:func:`request_key`).
Key = tuple[bytes, bytes]

#: Seconds without a reply after which a client sends its request again (same seq).
RETRY_INTERVAL = 2.0


# The backend's functions, called directly with plain ints: pyzmq's Python-level
# send_multipart, recv_multipart, Poller and Socket.poll, and its IntFlag arithmetic,
# cost several µs more per message, and the client's own work counts in every user's
# steps/s (DESIGN §6). Same semantics: bytes frames, copied out.
_POLLIN = int(zmq.POLLIN)
_NOBLOCK, _MORE = int(zmq.NOBLOCK), int(zmq.SNDMORE | zmq.NOBLOCK)
_send = zmq.backend.Socket.send
_recv = zmq.backend.Socket.recv
_zmq_poll = zmq.backend.zmq_poll


def _recv_message(socket: zmq.Socket) -> list[bytes]:
    """One whole multipart message (its frames arrive together). Frames' ``more`` flag,
    not getsockopt(RCVMORE), which builds an enum per frame."""
    frame = _recv(socket, _NOBLOCK, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _recv(socket, 0, False)
        frames.append(frame.bytes)
    return frames


_JOIN = Command.JOIN.frame
_BATCH = Command.BATCH.frame
_QUIT = Command.QUIT.frame
#: msgpack nil: the body of QUIT and STATUS.
NIL_BODY = b"\xc0"


def request_key(command: bytes, seat: bytes, seq: bytes) -> Key:
    """How a request's reply is matched: ``(seat, seq)``; a JOIN's by ``(b"", seq)`` (its
    seat is new); the QUIT of a pending JOIN, sent with an empty seat frame, by
    ``(QUIT, seq)`` (its reply names the seat it gave up, or none)."""
    if command == _JOIN:
        return (b"", seq)
    return (seat, seq) if seat else (command, seq)


def quit_join_body(join_seq: bytes) -> bytes:
    """The body of a QUIT that gives up the seat of the JOIN sent with ``join_seq``, before
    its reply came (PROTOCOL.md §3.2)."""
    return pack({"join": join_seq})


@attrs.frozen
class Silence:
    """A wait that got no reply for a while (said once per wait, DESIGN §7): whether the
    broker at ``endpoint`` answers at all, and for which requests the client waits.

    >>> str(Silence("tcp://127.0.0.1:9", 2.0, 120.0, False, "nothing accepts a connection there", ("JOIN",)))
    'nothing answers at tcp://127.0.0.1:9 (nothing accepts a connection there); still trying until the 120 s timeout'
    >>> str(Silence("tcp://127.0.0.1:9", 2.0, 120.0, True, "", ("JOIN",)))
    'no reply from tcp://127.0.0.1:9 for 2 s: the game holds the JOIN (waiting for its other players); up to 120 s'
    """

    endpoint: str
    waited: float
    timeout: float
    answering: bool            # the broker's link is up: the game holds the requests
    why: str                   # when not answering: what the socket's events tell
    commands: tuple[str, ...]  # what is waited for: "JOIN", "STEP", "RESET", "QUIT"

    def __str__(self) -> str:
        if not self.answering:
            return (f"nothing answers at {self.endpoint} ({self.why}); "
                    f"still trying until the {self.timeout:g} s timeout")
        what = ", ".join(self.commands)
        return (f"no reply from {self.endpoint} for {self.waited:.0f} s: the game holds the {what} "
                f"({_HELD_FOR.get(self.commands[0], 'waiting')}); up to {self.timeout:g} s")


_HELD_FOR = {"JOIN": "waiting for its other players", "STEP": "waiting for the other players' episodes to end",
             "RESET": "waiting for the other players to ask for a reset"}


@attrs.frozen
class RequestFailure:
    """Why a request returned None (or was refused): what ``last_error`` holds.

    ``status`` is the reply's status (None when no usable reply came), ``code`` an
    :class:`~protocol.ErrorCode` from the server or one of the client's own codes
    (``TIMEOUT``, ``BAD_REPLY``, ``SEND_FAILED``, ``CLOSED``), ``message`` the reason.

    >>> str(RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.UNKNOWN_SEAT, "Unknown seat"))
    'GameStatus.BAD_REQUEST UNKNOWN_SEAT: Unknown seat'
    """

    status: GameStatus | None
    code: ErrorCode | str | None
    message: str

    def __str__(self) -> str:
        head = " ".join(str(part) for part in (self.status, self.code) if part is not None)
        return f"{head}: {self.message}" if head else self.message


def failure_of(reply: ReplyBody) -> RequestFailure:
    """The failure a reply describes (its status, code and message/reason)."""
    message = reply.message
    if isinstance(message, dict):
        text = str(message.get("message", "")) or "no message"
        reason = message.get("reason")
        if reason:
            text = f"{text} ({reason})"
    elif message is None:
        text = "no observation in the reply"
    else:
        text = str(message)
    return RequestFailure(reply.status, reply.code, text)


def split_reply(frames: list[bytes]) -> list[tuple[bytes, bytes, bytes, bytes]] | None:
    """``[(command, seat, seq, body)]`` of one message from the broker, None if malformed.

    A single reply ``[ARENA1][command][seat][seq][body]`` gives one entry; a batch
    reply ``[ARENA1][BATCH][world][inner][seat][seq][body]...`` one per triple, with the
    inner command (an empty batch gives none).

    >>> split_reply([b"ARENA1", b"\\x03", b"w-1", b"\\x02", b"s-1", b"1", b"x", b"s-2", b"2", b"y"])
    [(b'\\x02', b's-1', b'1', b'x'), (b'\\x02', b's-2', b'2', b'y')]
    """
    count = len(frames)
    if count < 2 or frames[0] != PROTOCOL_FRAME:
        return None
    command = frames[1]
    if command == _BATCH and count >= 4 and (count - 4) % 3 == 0:
        inner = frames[3]
        return [(inner, frames[i], frames[i + 1], frames[i + 2]) for i in range(4, count, 3)]
    if count != 5:
        return None
    return [(command, frames[2], frames[3], frames[4])]


class Connection:
    """One DEALER socket to one broker frontend (LINGER 0, explicit high-water marks, a
    random routing id). Not thread-safe: one connection per thread, as ZeroMQ sockets."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None, *, hwm: int = HWM,
                 curve: CurveClient | None = None) -> None:
        self.endpoint = endpoint
        self.context = context if context is not None else zmq.Context.instance()
        socket = self.context.socket(zmq.DEALER)
        if curve is not None:
            curve.apply(socket)
        # Says why a broker stays silent: nothing there, or a failed handshake (a refused CURVE key).
        self._handshake = LinkWatch(socket)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, hwm)
        socket.setsockopt(zmq.RCVHWM, hwm)
        # A routing id of our own, so the broker sees the same client after a reconnect
        # (the id it generates would change, and its seats would look like someone else's).
        self.routing_id = b"agent-" + os.urandom(8).hex().encode()
        socket.setsockopt(zmq.ROUTING_ID, self.routing_id)
        try:
            socket.connect(endpoint)
        except zmq.ZMQError:
            self._handshake.close()
            socket.close(linger=0)
            raise
        self.socket: zmq.Socket | None = socket
        self._seqs: dict[bytes, int] = {}
        #: Replies that matched no request in flight (stale, duplicate or foreign).
        self.discarded = 0

    @property
    def closed(self) -> bool:
        return self.socket is None

    # ------------------------------------------------------------------ numbering
    def next_seq(self, seat: bytes) -> bytes:
        """The next sequence frame of ``seat`` (``b""`` numbers this socket's JOINs)."""
        number = self._seqs.get(seat, 0) + 1
        self._seqs[seat] = number
        return seq_bytes(number)

    def adopt_seat(self, seat: bytes, join_seq: bytes) -> None:
        """A JOIN gave ``seat``: its own numbers continue after the JOIN's, so every
        seat's sequence only ever grows (what a world's per-seat reply cache relies on)."""
        self._seqs[seat] = max(self._seqs.get(seat, 0), int_from_seq(join_seq))

    # ------------------------------------------------------------------ I/O
    def send(self, frames: list[bytes]) -> RequestFailure | None:
        """Queue one message without blocking; a failure instead of an exception."""
        socket = self.socket
        if socket is None:
            return RequestFailure(None, CLOSED, "the connection was terminated")
        try:
            for frame in frames[:-1]:
                _send(socket, frame, _MORE)
            _send(socket, frames[-1], _NOBLOCK)
        except zmq.Again:
            return RequestFailure(None, SEND_FAILED, f"the send queue to {self.endpoint} is full")
        except zmq.ZMQError as error:
            return RequestFailure(None, SEND_FAILED, f"cannot send to {self.endpoint}: {error}")
        return None

    def handshake_note(self) -> str:
        """``"; <why>"`` when the security handshake with the broker failed (for a timeout
        message), else ``""``."""
        failure = self._handshake.failure() if self.socket is not None else None
        return f"; {failure}" if failure else ""

    def link(self) -> tuple[bool, str]:
        """Whether the broker answers at the ZeroMQ level (a handshake succeeded and the
        connection holds), and if not, why as far as the socket's events tell. Read when a
        wait has gone quiet, never on the step path."""
        if self.socket is None:
            return False, "the connection was terminated"
        if self._handshake.update():
            return True, ""
        return False, self._handshake.silence()

    def reached(self) -> bool:
        """Whether the broker ever answered at the ZeroMQ level: if not, no request got
        there (so none holds a seat that would need giving up)."""
        if self.socket is not None:
            self._handshake.update()
        return self._handshake.ever_up

    def close(self) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            self._handshake.close()
            socket.close(linger=0)


def _decode(body: bytes) -> ReplyBody | RequestFailure:
    try:
        return decode_reply(body)
    except ProtocolError as error:
        return RequestFailure(None, BAD_REPLY, f"undecodable reply: {error}")
    except Exception as error:  # a hostile reply must never crash the client
        return RequestFailure(None, BAD_REPLY, f"undecodable reply: {type(error).__name__}: {error}")


def await_replies(
    pending: Mapping[Connection, dict[Key, Any]],
    deadline: float,
    on_reply: Callable[[Any, bytes, ReplyBody | RequestFailure], None],
    logger: logging.Logger,
    *,
    resend: Callable[[Key, Any], list[bytes]] | None = None,
    retry_interval: float = RETRY_INTERVAL,
    until: Callable[[], bool] | None = None,
    on_silence: Callable[[Connection, float], None] | None = None,
    notice_after: float = NOTICE_AFTER,
) -> int:
    """Wait until every request in ``pending`` is answered or ``deadline`` passes; returns
    how many times requests were sent again.

    ``pending`` maps each connection to ``{(seat, seq): tag}`` (possibly empty: what such
    a connection receives meanwhile is read and discarded); each answered request is
    removed and ``on_reply(tag, reply seat frame, decoded reply or failure)`` called.
    Requests still in ``pending`` on return timed out, or are still held by their game
    when ``until()`` (asked before each wait, so after each whole message) said to stop
    early; the caller decides what that means. Replies that match nothing are discarded
    (DEBUG log); an error the broker could not attribute (empty seat and seq: it could not
    parse a request) fails every request of that connection, since nothing else will
    answer them.

    With ``resend(key, tag)`` (the frames of that request as a single message), every
    ``retry_interval`` seconds without all replies the unanswered requests are sent again
    with their sequence numbers (Lazy Pirate, zguide ch. 4): a request lost with a broker
    that restarted gets through, and the world answers a resend from its per-seat reply
    cache, so nothing runs twice. Duplicate replies are discarded.

    With ``on_silence(connection, seconds waited)``: once per wait, ``notice_after``
    seconds in (if the wait lasts that long), it is called for each connection that still
    has requests unanswered, so the client can say early what it waits for (DESIGN §7:
    nothing answering is said within 5 s) instead of only at the timeout.
    """
    connections = [connection for connection in pending if connection.socket is not None]
    outstanding = sum(len(pending[connection]) for connection in connections)
    if not outstanding:
        return 0
    items = [(connection.socket, _POLLIN) for connection in connections]
    by_socket = {connection.socket: connection for connection in connections}
    monotonic = time.monotonic
    resends = 0
    started = monotonic()
    next_resend = started + retry_interval if resend is not None else math.inf
    notice_at = started + notice_after if on_silence is not None else math.inf
    # One message per ready socket per poll: a poll is cheaper than the zmq.Again a
    # drain-until-empty loop ends with, and the usual turn reads exactly one reply.
    while outstanding and (until is None or not until()):
        now = monotonic()
        remaining = deadline - now
        if remaining <= 0:
            return resends
        if now >= notice_at:
            assert on_silence is not None
            notice_at = math.inf
            for connection in connections:
                if pending[connection]:
                    on_silence(connection, now - started)
        if now >= next_resend:
            assert resend is not None
            for connection in connections:
                for key, tag in list(pending[connection].items()):
                    if connection.send(resend(key, tag)) is None:
                        resends += 1
            logger.debug("no reply within %g s: %d requests sent again", retry_interval, outstanding)
            next_resend = now + retry_interval
        wait = min(remaining, next_resend - now, notice_at - now)
        for socket, _ in _zmq_poll(items, math.ceil(wait * 1000)):
            connection = by_socket[socket]
            outstanding -= _read_one(connection, socket, pending[connection], on_reply, logger)
    return resends


def read_ready(pending: Mapping[Connection, dict[Key, Any]],
               on_reply: Callable[[Any, bytes, ReplyBody | RequestFailure], None], logger: logging.Logger) -> int:
    """Read every message already waiting on the connections of ``pending``, never
    blocking, matched as :func:`await_replies` matches them; how many requests it answered."""
    connections = [connection for connection in pending if connection.socket is not None]
    items = [(connection.socket, _POLLIN) for connection in connections]
    by_socket = {connection.socket: connection for connection in connections}
    answered = 0
    while items:
        ready = _zmq_poll(items, 0)
        if not ready:
            return answered
        for socket, _ in ready:
            connection = by_socket[socket]
            answered += _read_one(connection, socket, pending[connection], on_reply, logger)
    return answered


def _read_one(connection: Connection, socket: zmq.Socket, keys: dict[Key, Any],
              on_reply: Callable[[Any, bytes, ReplyBody | RequestFailure], None], logger: logging.Logger) -> int:
    """Read one whole message and answer the requests of ``keys`` it carries; how many."""
    try:
        frames = _recv_message(socket)
    except zmq.Again:  # pragma: no cover - the poll said readable
        return 0
    entries = split_reply(frames)
    if entries is None:
        connection.discarded += 1
        logger.debug("malformed message from %s discarded: %r", connection.endpoint,
                     [frame[:32] for frame in frames[:6]])
        return 0
    answered = 0
    for command, seat, seq, body in entries:
        tag = keys.pop((b"", seq) if command == _JOIN else (seat, seq) if seat else (command, seq), _MISSING)
        if tag is _MISSING and command == _QUIT:  # the QUIT of a pending JOIN names the seat it gave up
            tag = keys.pop((_QUIT, seq), _MISSING)
        if tag is not _MISSING:
            answered += 1
            on_reply(tag, seat, _decode(body))
        elif not seq and keys:
            answered += _unattributed(connection, keys, body, on_reply, logger)
        else:
            connection.discarded += 1
            logger.debug("stale reply discarded: command %r seat %r seq %r", command, seat, seq)
    return answered


_MISSING = object()


def _unattributed(connection: Connection, keys: dict[Key, Any], body: bytes,
                  on_reply: Callable[[Any, bytes, ReplyBody | RequestFailure], None],
                  logger: logging.Logger) -> int:
    """Fail every request of ``keys`` with the error in ``body``; how many it failed."""
    reply = _decode(body)
    if not isinstance(reply, ReplyBody) or reply.status is not GameStatus.BAD_REQUEST:
        connection.discarded += 1
        logger.debug("reply without seat and seq discarded: %s", reply)
        return 0
    failure = failure_of(reply)
    logger.warning("the broker at %s refused a request it could not parse: %s", connection.endpoint, failure)
    tags = list(keys.values())
    keys.clear()
    for tag in tags:
        on_reply(tag, b"", failure)
    return len(tags)
