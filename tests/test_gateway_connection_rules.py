"""broker.gateway_connection in-process: one NetSecGame client's connection state machine.

A :class:`Connection` is driven here directly, with a recording stand-in for its gateway
(limits, poller, incomplete-document deadlines, ``_send`` and ``_drop``) and a scripted
socket, so every rule of the module docstring (DESIGN §3; README "Existing NetSecGame
agents") is checked with exact texts and boundaries: requests answered one by one in
order, a split request waiting for the rest, the incomplete-document deadline, the size
cap with its lingering close, BAD_REQUEST texts for requests a connection answers itself,
and a client that does not read its replies.
"""

from __future__ import annotations

import errno
import itertools
import json
import socket
from collections import deque
from typing import Any

import pytest
import zmq

from broker.gateway_codec import JsonFramer, join_body, parse_request, request_body
from broker.gateway_connection import INCOMPLETE_LIMIT, Connection, Request
from protocol import Command, GameStatus, ProtocolError, seq_bytes

POLLIN, POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
FD = 17
TO = ["10.0.0.9", 40000]
JOIN = b'{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": {"name": "A", "role": "Attacker"}}}'
SCAN = (b'{"action_type": "ActionType.ScanNetwork", "parameters": {"source_host": {"ip": "192.168.1.2"}, '
        b'"target_network": {"ip": "192.168.1.0", "mask": 24}}}')
RESET = b'{"action_type": "ActionType.ResetGame", "parameters": {}}'
MALFORMED = "Bad request received: Malformed Action"


class FakeSocket:
    """A non-blocking socket: ``incoming`` is what recv returns (bytes or an exception to raise);
    ``capacity`` is how many bytes send still takes (None: all)."""

    def __init__(self) -> None:
        self.incoming: deque[bytes | BaseException] = deque()
        self.sent = bytearray()
        self.capacity: int | None = None
        self.send_error: BaseException | None = None
        self.shutdown_error: BaseException | None = None
        self.shutdowns: list[int] = []
        self.closed = 0

    def recv(self, size: int) -> bytes:
        if not isinstance(size, int) or size < 1:
            raise TypeError("recv needs a positive size")
        item = self.incoming.popleft() if self.incoming else BlockingIOError(errno.EAGAIN, "again")
        if isinstance(item, BaseException):
            raise item
        return item

    def send(self, data: bytes | bytearray) -> int:
        if self.send_error is not None:
            raise self.send_error
        data = bytes(data)
        take = len(data) if self.capacity is None else min(self.capacity, len(data))
        self.sent += data[:take]
        if self.capacity is not None:
            self.capacity -= take
        return take

    def shutdown(self, how: int) -> None:
        self.shutdowns.append(how)
        if self.shutdown_error is not None:
            raise self.shutdown_error

    def close(self) -> None:
        self.closed += 1

    def replies(self) -> list[dict[str, Any]]:
        """What the client has received, as JSON replies (each ends in EOF)."""
        data = bytes(self.sent)
        assert data.endswith(b"EOF") or not data
        return [json.loads(part) for part in data.split(b"EOF")[:-1]]


class FakePoller:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def register(self, fd: int, events: int) -> None:
        self.calls.append(("register", fd, events))

    def unregister(self, fd: int) -> None:
        self.calls.append(("unregister", fd))


class FakeGateway:
    """What a Connection uses of its Gateway; ``_send`` records and marks the request in flight
    as the real one does, ``_drop`` records and closes (the real one discards the connection)."""

    def __init__(self, **limits: Any) -> None:
        self.max_queue = limits.get("max_queue", 64)
        self.max_request_bytes = limits.get("max_request_bytes", 1 << 20)
        self.max_output_bytes = limits.get("max_output_bytes", 16 << 20)
        self.incomplete_timeout = limits.get("incomplete_timeout", 0.1)
        self.task = limits.get("task")
        self.game = limits.get("game")
        self._partial: dict[Connection, float] = {}
        self._poller = FakePoller()
        self._join_numbers = itertools.count(1)
        self.sent: list[tuple[bytes, bytes, bytes, bytes, float]] = []
        self.dropped: list[tuple[str, float]] = []

    def _send(self, conn: Connection, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float) -> None:
        assert isinstance(conn, Connection)
        self.sent.append((command, seat, seq, body, now))
        conn.inflight = (b"" if command == Command.JOIN.frame else seat, seq)

    def _drop(self, conn: Connection, reason: str, now: float) -> None:
        assert isinstance(conn, Connection)
        self.dropped.append((reason, now))
        conn.close()


def connect(**limits: Any) -> tuple[Connection, FakeGateway, FakeSocket]:
    gateway = FakeGateway(**limits)
    sock = FakeSocket()
    conn = Connection(gateway, sock, FD, TO, JsonFramer(gateway.max_request_bytes))  # type: ignore[arg-type]
    conn.watch()
    return conn, gateway, sock


def receive(conn: Connection, sock: FakeSocket, data: bytes | BaseException, now: float = 1.0) -> None:
    sock.incoming.append(data)
    conn.read(now)


def answered(conn: Connection, now: float = 2.0) -> None:
    """The broker answered the request in flight (what Gateway._on_reply does around its reply)."""
    conn.inflight = None
    conn.advance(now)


def joined(conn: Connection, sock: FakeSocket, seat: bytes = b"seat-1") -> None:
    receive(conn, sock, JOIN)
    conn.seat = seat
    answered(conn)


def bad(reason: str) -> dict[str, Any]:
    return {"to_agent": TO, "status": "GameStatus.BAD_REQUEST", "observation": None,
            "message": {"message": MALFORMED, "reason": reason}}


# ---------------------------------------------------------------------------- reading
def test_join_is_sent_with_task_game_and_a_join_number() -> None:
    """JoinGame goes to the broker as JOIN, no seat, the next join number, join_body's body."""
    conn, gateway, sock = connect(task="t", game="g")
    receive(conn, sock, JOIN, now=3.5)
    action = parse_request(JOIN)
    assert gateway.sent == [(Command.JOIN.frame, b"", seq_bytes(1), join_body("t", "g", action), 3.5)]
    assert conn.inflight == (b"", seq_bytes(1)) and not sock.sent
    conn2, _, sock2 = connect()
    conn2.gateway = gateway
    receive(conn2, sock2, JOIN)
    assert gateway.sent[-1][2] == seq_bytes(2)


def test_steps_are_sent_with_the_seat_and_rising_seq() -> None:
    """After the join, each request carries the seat and seq 1, 2, ... (one at a time)."""
    conn, gateway, sock = connect()
    joined(conn, sock)
    receive(conn, sock, SCAN + RESET, now=4.0)
    assert gateway.sent[-1] == (Command.STEP.frame, b"seat-1", seq_bytes(1), request_body(parse_request(SCAN))[1], 4.0)
    assert len(conn.queue) == 1  # the reset waits for the scan's reply
    answered(conn, now=5.0)
    reset_body = request_body(parse_request(RESET))[1]
    assert gateway.sent[-1] == (Command.RESET.frame, b"seat-1", seq_bytes(2), reset_body, 5.0)
    assert conn.seq == 2 and not conn.queue


def test_requests_in_one_read_are_answered_one_by_one_in_order() -> None:
    """Several requests in one read: each answered, in order (README)."""
    conn, gateway, sock = connect()
    receive(conn, sock, SCAN + b" nonsense")
    assert sock.replies() == [
        {"to_agent": TO, "status": "GameStatus.BAD_REQUEST", "observation": None,
         "message": {"message": "Bad request received: this agent has not joined a game; send JoinGame first.",
                     "reason": "ActionType.ScanNetwork before JoinGame"}},
        bad("request: expected a JSON object, got invalid JSON (Expecting value at char 0)")]
    assert not gateway.sent


def test_second_join_is_refused_with_netsecgame_text() -> None:
    """A JoinGame from a joined connection: NetSecGame's bare-string answer (reference §2.2)."""
    conn, gateway, sock = connect()
    joined(conn, sock)
    receive(conn, sock, JOIN)
    assert sock.replies() == [{"to_agent": TO, "status": "GameStatus.BAD_REQUEST", "message": "Agent already exists."}]
    assert len(gateway.sent) == 1 and conn.inflight is None


def test_requests_msgpack_cannot_encode_are_refused() -> None:
    """An integer or a string msgpack cannot carry: Malformed Action with the encoder's reason."""
    conn, gateway, sock = connect()
    receive(conn, sock, JOIN.replace(b'"A"', b'"A\\ud800"'))
    conn2, gateway2, sock2 = connect()
    joined(conn2, sock2)
    receive(conn2, sock2, b'{"action_type": "ActionType.ResetGame", "parameters": {"seed": ' + b"9" * 30 + b"}}")
    assert sock.replies() == [
        bad("'utf-8' codec can't encode character '\\ud800' in position 1: surrogates not allowed")]
    assert sock2.replies() == [bad("Integer value out of range")]
    assert not gateway.sent and len(gateway2.sent) == 1 and conn2.seq == 0


def test_would_block_and_interrupted_reads_do_nothing() -> None:
    """No bytes yet (EAGAIN, EINTR): nothing happens."""
    conn, gateway, sock = connect()
    receive(conn, sock, BlockingIOError(errno.EAGAIN, "again"))
    receive(conn, sock, InterruptedError(errno.EINTR, "interrupted"))
    assert conn.open and not gateway.dropped and not sock.sent


def test_read_errors_and_end_of_stream_drop_the_connection() -> None:
    """A failed read or the agent closing its side: the gateway drops the connection, saying why."""
    conn, gateway, sock = connect()
    receive(conn, sock, ConnectionResetError(errno.ECONNRESET, "reset by peer"), now=6.0)
    assert gateway.dropped == [("read failed: [Errno 104] reset by peer", 6.0)]
    conn, gateway, sock = connect()
    receive(conn, sock, b"", now=7.0)
    assert gateway.dropped == [("closed by the agent", 7.0)]
    assert not conn.open and sock.closed == 1


# ---------------------------------------------------------------------------- incomplete requests
def test_split_request_waits_with_a_deadline() -> None:
    """A split request waits for the rest; each new byte buys incomplete_timeout more."""
    conn, gateway, sock = connect(incomplete_timeout=0.25)
    receive(conn, sock, JOIN[:10], now=1.0)
    assert gateway._partial == {conn: 1.25} and conn.partial_since == 1.0
    receive(conn, sock, JOIN[10:20], now=1.5)
    assert gateway._partial == {conn: 1.75} and conn.partial_since == 1.0
    receive(conn, sock, JOIN[20:], now=1.6)
    assert gateway._partial == {} and conn.partial_since is None
    assert len(gateway.sent) == 1


def test_trickled_request_has_an_overall_limit() -> None:
    """However steadily bytes trickle, a request must be whole within INCOMPLETE_LIMIT of its
    first byte (or 100 incomplete_timeouts, if longer)."""
    conn, gateway, sock = connect(incomplete_timeout=0.1)
    receive(conn, sock, b"{", now=1.0)
    receive(conn, sock, b'"a', now=10.95)
    assert gateway._partial[conn] == pytest.approx(1.0 + INCOMPLETE_LIMIT)
    conn, gateway, sock = connect(incomplete_timeout=0.2)
    receive(conn, sock, b"{", now=1.0)
    receive(conn, sock, b'"a', now=20.9)
    assert gateway._partial[conn] == pytest.approx(21.0)
    receive(conn, sock, b'"', now=20.95)
    assert gateway._partial[conn] == pytest.approx(21.0)


def test_limit_restarts_with_each_new_document() -> None:
    """A document completed and a new one begun in the same read: the limit counts from then."""
    conn, gateway, sock = connect(incomplete_timeout=0.1)
    receive(conn, sock, b"[", now=1.0)
    receive(conn, sock, b'1] {"a', now=5.0)
    assert conn.partial_since == 5.0
    receive(conn, sock, b'b', now=14.98)
    assert gateway._partial[conn] == pytest.approx(15.0)


def test_incomplete_request_is_answered_malformed() -> None:
    """No more bytes within incomplete_timeout: BAD_REQUEST naming the size; the framer empties."""
    conn, gateway, sock = connect(incomplete_timeout=0.1)
    receive(conn, sock, b'{"a": [1', now=1.0)
    conn.incomplete(1.1)
    assert conn.last_write == 1.1
    assert sock.replies() == [bad("request: expected a complete JSON document, got an incomplete one (8 bytes) "
                                  "and no more bytes for 0.1 s")]
    assert gateway._partial == {} and not conn.framer.pending
    receive(conn, sock, JOIN, now=2.0)
    assert len(gateway.sent) == 1


# ---------------------------------------------------------------------------- oversized requests
def test_oversized_request_is_answered_then_the_connection_lingers_closed() -> None:
    """Over max_request_bytes: answered, requests after it dropped, FIN once the reply is out,
    the rest read and dropped until the linger deadline."""
    conn, gateway, sock = connect(max_request_bytes=200)
    receive(conn, sock, b"[" + b" " * 250, now=3.0)
    assert sock.replies() == [bad("request: expected at most 200 bytes, got a longer one")]
    assert conn.closing and conn.reading and not conn.queue
    assert sock.shutdowns == [socket.SHUT_WR] and conn.linger_deadline == pytest.approx(5.0)
    assert gateway._partial == {}
    receive(conn, sock, JOIN + JOIN, now=3.5)  # drained, not parsed
    assert len(sock.replies()) == 1 and not gateway.sent and not conn.framer.pending
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN)
    conn.flush(4.0)
    assert sock.shutdowns == [socket.SHUT_WR] and conn.linger_deadline == pytest.approx(5.0)


def test_oversized_request_after_queued_ones() -> None:
    """Requests queued before the oversized one are answered first; its own answer closes."""
    conn, gateway, sock = connect(max_request_bytes=200)
    joined(conn, sock)
    receive(conn, sock, SCAN + b"  " + b"[" * 300, now=3.0)
    assert len(gateway.sent) == 2 and not sock.sent and not sock.shutdowns  # the scan is in flight
    assert conn.closing and len(conn.queue) == 1
    conn.flush(3.1)
    assert not sock.shutdowns and conn.linger_deadline is None  # a request still in flight
    answered(conn, now=3.2)
    assert sock.replies() == [bad("request: expected at most 200 bytes, got a longer one")]
    assert sock.shutdowns == [socket.SHUT_WR] and conn.linger_deadline == pytest.approx(5.2)


def test_close_after_output_waits_for_the_reply_to_leave() -> None:
    """The FIN follows the last reply: not while it still waits in the output buffer."""
    conn, gateway, sock = connect(max_request_bytes=100)
    sock.capacity = 10
    receive(conn, sock, b"{" * 150, now=1.0)
    assert not sock.shutdowns and conn.linger_deadline is None and conn.output
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN | POLLOUT)
    sock.capacity = None
    conn.flush(1.5)
    assert sock.replies() == [bad("request: expected at most 100 bytes, got a longer one")]
    assert sock.shutdowns == [socket.SHUT_WR] and conn.linger_deadline == pytest.approx(3.5)
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN)


def test_a_fatal_request_in_the_queue_stops_the_queue() -> None:
    """A fatal request's answer clears what was queued after it and its partial deadline."""
    conn, gateway, sock = connect()
    conn.queue.extend([Request(error=ProtocolError("request", "x", "y"), fatal=True), Request(parse_request(JOIN))])
    gateway._partial[conn] = 9.0
    conn.reading = False
    conn.advance(2.0)
    assert sock.replies() == [bad("request: expected x, got y")]
    assert not conn.queue and gateway._partial == {} and not gateway.sent
    assert conn.closing and conn.reading and conn.linger_deadline == pytest.approx(4.0)
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN)


def test_failed_shutdown_still_lingers() -> None:
    """A FIN that fails (the peer is gone) is ignored: the linger deadline still ends it."""
    conn, _, sock = connect(max_request_bytes=10)
    sock.shutdown_error = OSError(errno.ENOTCONN, "not connected")
    receive(conn, sock, b"[" * 20, now=1.0)
    assert sock.shutdowns == [socket.SHUT_WR] and conn.linger_deadline == pytest.approx(3.0)


# ---------------------------------------------------------------------------- queue cap
def test_reading_pauses_at_the_queue_cap_and_resumes() -> None:
    """At most max_queue parsed requests wait; reading pauses there and resumes with room."""
    conn, gateway, sock = connect(max_queue=2)
    assert gateway._poller.calls == [("register", FD, POLLIN)]
    joined(conn, sock)
    receive(conn, sock, SCAN * 4 + b'{"x', now=3.0)
    # one in flight, two queued, one left in the framer, the partial one waits without a deadline
    assert len(gateway.sent) == 2 and len(conn.queue) == 2 and not conn.reading
    assert gateway._partial == {}
    assert gateway._poller.calls[-1] == ("unregister", FD)
    answered(conn, now=4.0)
    assert len(gateway.sent) == 3 and len(conn.queue) == 2 and not conn.reading
    answered(conn, now=5.0)
    assert len(gateway.sent) == 4 and len(conn.queue) == 1 and conn.reading
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN)
    assert gateway._partial == {conn: pytest.approx(5.1)}
    assert [s[2] for s in gateway.sent[1:]] == [seq_bytes(1), seq_bytes(2), seq_bytes(3)]


def test_queue_exactly_full_keeps_reading_paused_until_one_leaves() -> None:
    """With max_queue waiting, reading stays paused; the bytes left stay buffered."""
    conn, gateway, sock = connect(max_queue=1)
    joined(conn, sock)
    receive(conn, sock, SCAN + SCAN, now=3.0)
    assert len(conn.queue) == 1 and not conn.reading and not conn.framer.pending
    answered(conn, now=3.5)
    assert not conn.queue and conn.reading and len(gateway.sent) == 3


def test_nothing_is_dispatched_on_a_closed_connection() -> None:
    """Once the gateway dropped the connection, queued requests are not started."""
    conn, gateway, sock = connect()
    joined(conn, sock)
    conn.queue.append(Request(parse_request(SCAN)))
    conn.close()
    conn.advance(3.0)
    assert len(gateway.sent) == 1 and len(conn.queue) == 1


# ---------------------------------------------------------------------------- writing
def test_reply_waits_when_the_socket_is_full() -> None:
    """What the socket does not take waits, and the connection polls for writing."""
    conn, gateway, sock = connect()
    sock.capacity = 20
    conn.answer(GameStatus.OK, None, "m", 1.0)
    assert len(sock.sent) == 20 and conn.output and conn.last_write == 1.0
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN | POLLOUT)
    sock.capacity = 0
    conn.flush(2.0)
    assert conn.last_write == 1.0  # no progress: the send timeout keeps counting
    conn.write(b"more", 2.5)
    assert conn.last_write == 1.0  # output was waiting already
    sock.capacity = None
    conn.flush(3.0)
    assert conn.last_write == 3.0 and not conn.output
    assert bytes(sock.sent) == (b'{"to_agent": ["10.0.0.9", 40000], "status": "GameStatus.OK", "message": "m"}EOF'
                                b"more")
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN)


def test_write_to_an_empty_buffer_starts_the_send_clock() -> None:
    """last_write restarts when a reply is queued on an empty buffer (the send timeout)."""
    conn, _, sock = connect()
    sock.capacity = 0
    conn.write(b"abc", 5.0)
    assert conn.last_write == 5.0 and bytes(conn.output) == b"abc"


def test_blocked_or_interrupted_send_keeps_the_output() -> None:
    conn, gateway, sock = connect()
    sock.send_error = BlockingIOError(errno.EAGAIN, "again")
    conn.write(b"abc", 1.0)
    sock.send_error = InterruptedError(errno.EINTR, "interrupted")
    conn.flush(1.5)
    assert bytes(conn.output) == b"abc" and conn.open and not gateway.dropped and conn.last_write == 1.0


def test_failed_send_drops_the_connection() -> None:
    conn, gateway, sock = connect()
    sock.send_error = BrokenPipeError(errno.EPIPE, "broken pipe")
    conn.write(b"abc", 4.0)
    assert gateway.dropped == [("write failed: [Errno 32] broken pipe", 4.0)]


def test_a_client_that_does_not_read_is_dropped() -> None:
    """More than max_output_bytes waiting: dropped; exactly max_output_bytes is kept."""
    conn, gateway, sock = connect(max_output_bytes=10)
    sock.capacity = 0
    conn.write(b"x" * 10, 1.0)
    assert not gateway.dropped and conn.open
    conn.write(b"y", 2.0)
    assert gateway.dropped == [("not reading its replies (11 bytes waiting)", 2.0)]


# ---------------------------------------------------------------------------- polling
def test_watch_registers_only_changes() -> None:
    """The poller is told only when what the connection waits for changes."""
    conn, gateway, _ = connect()
    conn.watch()
    assert gateway._poller.calls == [("register", FD, POLLIN)]
    conn.reading = False
    conn.watch()
    assert gateway._poller.calls[-1] == ("unregister", FD)
    conn.output += b"x"
    conn.watch()
    assert gateway._poller.calls[-1] == ("register", FD, POLLOUT)
    conn.reading = True
    conn.watch()
    assert gateway._poller.calls[-1] == ("register", FD, POLLIN | POLLOUT)
    assert len(gateway._poller.calls) == 4


def test_close_unregisters_once_and_closes_the_socket() -> None:
    conn, gateway, sock = connect()
    conn.close()
    assert not conn.open and sock.closed == 1
    assert gateway._poller.calls == [("register", FD, POLLIN), ("unregister", FD)]
    conn.output += b"x"
    conn.watch()
    conn.close()
    assert gateway._poller.calls == [("register", FD, POLLIN), ("unregister", FD)]
    assert sock.closed == 2


def test_close_of_an_unwatched_connection_does_not_unregister() -> None:
    gateway = FakeGateway()
    conn = Connection(gateway, FakeSocket(), FD, TO, JsonFramer(100))  # type: ignore[arg-type]
    conn.close()
    assert gateway._poller.calls == [] and not conn.open


def test_queue_cap_while_a_request_is_in_flight() -> None:
    """With a request in flight, at most max_queue requests are framed; the rest stay buffered."""
    conn, gateway, sock = connect(max_queue=2)
    joined(conn, sock)
    receive(conn, sock, SCAN, now=3.0)
    receive(conn, sock, SCAN * 3, now=3.1)
    assert len(conn.queue) == 2 and conn.framer.pending and not conn.reading
    assert len(gateway.sent) == 2


def test_oversized_request_while_one_is_in_flight_cancels_the_partial_deadline() -> None:
    """A document growing past the cap while a request is in flight: refused (once its turn
    comes), and its incomplete-document deadline is gone (no second, "incomplete" answer)."""
    conn, gateway, sock = connect(max_request_bytes=200)
    joined(conn, sock)
    receive(conn, sock, SCAN, now=3.0)
    receive(conn, sock, b"[" * 150, now=3.05)
    assert gateway._partial == {conn: pytest.approx(3.15)}
    receive(conn, sock, b"[" * 100, now=3.1)
    assert gateway._partial == {} and conn.partial_since is None and conn.closing and conn.reading
    answered(conn, now=3.2)
    assert sock.replies() == [bad("request: expected at most 200 bytes, got a longer one")]


def test_a_reply_does_not_extend_the_incomplete_deadline() -> None:
    """Only new bytes buy time: starting the next queued request leaves the deadline alone."""
    conn, gateway, sock = connect(incomplete_timeout=0.1)
    joined(conn, sock)
    receive(conn, sock, SCAN + SCAN + b'{"x', now=3.0)
    assert gateway._partial == {conn: pytest.approx(3.1)} and len(conn.queue) == 1
    answered(conn, now=3.08)
    assert len(gateway.sent) == 3 and not conn.queue
    assert gateway._partial == {conn: pytest.approx(3.1)} and conn.partial_since == 3.0


@pytest.mark.parametrize("case", ["incomplete", "second join", "before join", "unencodable", "malformed"])
def test_answers_start_the_send_clock(case: str) -> None:
    """Every answer a connection gives itself queues its reply at the current time: with the
    socket full, the send timeout counts from that moment (Gateway._sweep reads last_write)."""
    conn, _, sock = connect()
    if case in ("second join", "unencodable"):
        joined(conn, sock)
    sock.capacity = 0
    if case == "incomplete":
        receive(conn, sock, b"[", now=4.0)
        conn.incomplete(7.5)
    else:
        data = {"second join": JOIN, "before join": SCAN, "malformed": b"{]",
                "unencodable": b'{"action_type": "ActionType.ResetGame", "parameters": {"seed": ' + b"9" * 30 + b"}}"}
        receive(conn, sock, data[case], now=7.5)
    assert conn.output and conn.last_write == 7.5


def test_answer_renders_netsecgame_replies() -> None:
    """answer() queues the reply in NetSecGame's format (reference §2.2), observation included."""
    conn, _, sock = connect()
    conn.answer(GameStatus.OK, {"reward": -1}, None, 1.0)
    conn.answer(GameStatus.CREATED, {"reward": 0}, {"message": "Welcome"}, 1.5)
    assert sock.replies() == [
        {"to_agent": TO, "observation": {"reward": -1}, "status": "GameStatus.OK"},
        {"to_agent": TO, "status": "GameStatus.CREATED", "observation": {"reward": 0},
         "message": {"message": "Welcome"}}]
