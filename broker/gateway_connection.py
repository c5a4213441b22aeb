"""One gateway client: the per-connection state machine of :class:`~broker.gateway.Gateway`.

A :class:`Connection` is one accepted TCP socket, i.e. one seat. Bytes read go into its
:class:`~broker.gateway_codec.JsonFramer`; complete documents become :class:`Request`
records on a queue of at most ``max_queue`` (reading pauses while it is full); requests
are started one at a time (the next only once the broker answered this one), and
replies wait in an output buffer until the socket takes them. The gateway owns the
loop, the broker DEALER and the table of requests in flight; a connection asks it to
send a request (:meth:`Gateway._send`) or to drop the connection (:meth:`Gateway._drop`).

What a connection answers itself, with BAD_REQUEST (DESIGN §3):

* several requests in one read are answered one by one, in order; a request split
  across reads waits for the rest, and an incomplete document with no new bytes for
  ``incomplete_timeout`` is answered "Malformed Action";
* a request over ``max_request_bytes`` is answered and the connection closed once the
  reply is out (a lingering close: FIN, then the rest is read and dropped);
* an action before JoinGame, a second JoinGame, invalid UTF-8 / JSON / actions;
* a client that does not read its replies (``max_output_bytes`` waiting) is dropped.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import zmq

from protocol import Action, ActionType, Command, GameStatus, ProtocolError, seq_bytes

from .gateway_codec import (
    MALFORMED_MESSAGE,
    OVERSIZED,
    JsonFramer,
    join_body,
    parse_request,
    render_reply,
    request_body,
)

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["Connection", "Request"]

_JOIN = Command.JOIN.frame
_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
_RECV_BYTES = 65536
#: Seconds a request may take from its first byte to its last, however steadily it trickles.
INCOMPLETE_LIMIT = 10.0
_LINGER_CLOSE = 2.0  # seconds a closing connection is drained so its last reply is not lost to a reset


@attrs.frozen
class Request:
    """One parsed request: an action, or why it could not be used."""

    action: Action | None = None
    error: ProtocolError | None = None
    fatal: bool = False  # answer, then close the connection (oversized)


@attrs.define(eq=False)
class Connection:
    """One TCP client: its seat, buffers and the request it waits on.

    ``gateway`` is the owner: its limits, its poller, its table of incomplete-document
    deadlines, and where requests go (:meth:`Gateway._send`) and drops end
    (:meth:`Gateway._drop`). ``open`` is cleared by :meth:`close`, when the gateway
    forgets the connection.
    """

    gateway: Gateway = attrs.field(repr=False)
    sock: socket.socket
    fd: int
    to_agent: list[Any]
    framer: JsonFramer
    queue: deque[Request] = attrs.Factory(deque)
    output: bytearray = attrs.Factory(bytearray)
    seat: bytes | None = None
    seq: int = 0
    inflight: tuple[bytes, bytes] | None = None
    inflight_command: bytes = b""
    inflight_deadline: float = 0.0
    inflight_since: float = 0.0     # when it was sent (a broker that never answered: broker_grace)
    inflight_frames: list[bytes] | None = None   # what to send again if no reply comes
    inflight_resend: float = 0.0
    last_write: float = 0.0
    reading: bool = True
    closing: bool = False           # answer what is queued for output, then close
    linger_deadline: float | None = None
    partial_since: float | None = None  # when the incomplete document's first byte came
    events: int = 0
    open: bool = True

    @property
    def name(self) -> str:
        return f"{self.to_agent[0]}:{self.to_agent[1]}"

    # ------------------------------------------------------------------ input
    def read(self, now: float) -> None:
        """The socket is readable: frame what arrived, start what can be started."""
        try:
            data = self.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.gateway._drop(self, f"read failed: {error}", now)
            return
        if not data:
            self.gateway._drop(self, "closed by the agent", now)
            return
        if self.closing:  # draining before the close: nothing more is parsed
            return
        self.framer.feed(data)
        self.parse(now)
        self.advance(now)

    def parse(self, now: float) -> None:
        """Frame buffered bytes into requests, up to the queue's cap."""
        gateway = self.gateway
        queue, framer = self.queue, self.framer
        before = len(queue)
        while len(queue) < gateway.max_queue:
            document = framer.next()
            if document is None:
                break
            if document is OVERSIZED:
                queue.append(Request(error=ProtocolError(
                    "request", f"at most {gateway.max_request_bytes} bytes", "a longer one"), fatal=True))
                self.closing = True  # read and drop the rest; close once the reply is out
                break
            try:
                queue.append(Request(parse_request(document)))  # type: ignore[arg-type]  # a Document
            except ProtocolError as error:
                queue.append(Request(error=error))
        if framer.pending and not self.closing and len(queue) < gateway.max_queue:
            # Each new byte buys incomplete_timeout more, but a document must be whole within
            # INCOMPLETE_LIMIT of its first byte: a client trickling bytes holds no slot forever.
            if self.partial_since is None or len(queue) > before:
                self.partial_since = now
            limit = self.partial_since + max(INCOMPLETE_LIMIT, 100 * gateway.incomplete_timeout)
            gateway._partial[self] = min(now + gateway.incomplete_timeout, limit)
        else:
            self.partial_since = None
            gateway._partial.pop(self, None)
        reading = len(queue) < gateway.max_queue or self.closing
        if reading != self.reading:
            self.reading = reading
            self.watch()

    def incomplete(self, now: float) -> None:
        """No more bytes for the incomplete document within ``incomplete_timeout``: refuse it."""
        self.gateway._partial.pop(self, None)
        size = len(self.framer.take())
        self.queue.append(Request(error=ProtocolError(
            "request", "a complete JSON document",
            f"an incomplete one ({size} bytes) and no more bytes for {self.gateway.incomplete_timeout:g} s")))
        self.advance(now)

    # ------------------------------------------------------------------ requests
    def advance(self, now: float) -> None:
        """Start queued requests, one at a time: the next only once this one is answered."""
        while self.inflight is None and self.queue and self.open:
            self._dispatch(self.queue.popleft(), now)
            if not self.reading and not self.closing and len(self.queue) < self.gateway.max_queue:
                self.parse(now)  # room again: frame what is buffered, resume reading

    def _dispatch(self, request: Request, now: float) -> None:
        if request.error is not None:
            self.answer(GameStatus.BAD_REQUEST, None,
                        {"message": MALFORMED_MESSAGE, "reason": str(request.error)}, now)
            if request.fatal:
                self._close_after_output(now)
            return
        action = request.action
        assert action is not None
        kind = action.action_type
        if kind is ActionType.JoinGame and self.seat is not None:
            self.answer(GameStatus.BAD_REQUEST, None, "Agent already exists.", now)
            return
        if kind is not ActionType.JoinGame and self.seat is None:
            self.answer(GameStatus.BAD_REQUEST, None, {
                "message": "Bad request received: this agent has not joined a game; send JoinGame first.",
                "reason": f"{kind} before JoinGame"}, now)
            return
        gateway = self.gateway
        try:
            if kind is ActionType.JoinGame:
                command, body = _JOIN, join_body(gateway.task, gateway.game, action)
            else:
                command, body = request_body(action)
        except (ValueError, TypeError, OverflowError) as error:  # ProtocolError, or what msgpack cannot encode
            self.answer(GameStatus.BAD_REQUEST, None, {"message": MALFORMED_MESSAGE, "reason": str(error)}, now)
            return
        if command == _JOIN:
            gateway._send(self, _JOIN, b"", seq_bytes(next(gateway._join_numbers)), body, now)
        else:
            assert self.seat is not None
            self.seq += 1
            gateway._send(self, command, self.seat, seq_bytes(self.seq), body, now)

    # ------------------------------------------------------------------ output
    def answer(self, status: GameStatus, observation: dict[str, Any] | None,
               message: dict[str, Any] | str | None, now: float) -> None:
        """Queue a reply in NetSecGame's format."""
        self.write(render_reply(self.to_agent, status, observation, message), now)

    def write(self, data: bytes, now: float) -> None:
        """Queue rendered reply bytes and send what the socket takes."""
        if not self.output:
            self.last_write = now  # the send timeout counts from here
        self.output += data
        if len(self.output) > self.gateway.max_output_bytes:
            self.gateway._drop(self, f"not reading its replies ({len(self.output)} bytes waiting)", now)
            return
        self.flush(now)

    def flush(self, now: float) -> None:
        """Send what the socket takes; once a closing connection has said everything, linger."""
        if self.output:
            try:
                sent = self.sock.send(self.output)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self.gateway._drop(self, f"write failed: {error}", now)
                return
            if sent:
                del self.output[:sent]
                self.last_write = now
        if not self.output and self.closing and self.inflight is None and not self.queue \
                and self.linger_deadline is None:
            with contextlib.suppress(OSError):  # lingering close: FIN after the last reply, then drain
                self.sock.shutdown(socket.SHUT_WR)
            self.linger_deadline = now + _LINGER_CLOSE
        self.watch()

    def _close_after_output(self, now: float) -> None:
        self.closing, self.reading = True, True
        self.queue.clear()
        self.gateway._partial.pop(self, None)
        self.flush(now)

    # ------------------------------------------------------------------ polling
    def watch(self) -> None:
        """Poll the socket for what it needs: reading (unless paused), writing (if output waits)."""
        wanted = (_POLLIN if self.reading else 0) | (_POLLOUT if self.output else 0)
        if wanted != self.events and self.open:
            if wanted:
                self.gateway._poller.register(self.fd, wanted)
            else:
                self.gateway._poller.unregister(self.fd)
            self.events = wanted

    def close(self) -> None:
        """Stop polling and close the socket (no messages); the gateway has forgotten it."""
        if self.open:
            self.open = False
            if self.events:
                self.gateway._poller.unregister(self.fd)
                self.events = 0
        self.sock.close()
