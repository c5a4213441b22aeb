"""The gateway's send timeout counts from the reply that found the client's socket full,
whichever path wrote it (a broker reply, an unreadable one, a request the broker never
answered, a request the gateway could not forward), and every stuck client is dropped on
the sweep that finds it (README "NetSecGame agents through the gateway": a client that
stops reading is dropped after ``send_timeout``; its seat is quit).

The Gateway is built in process and never run: the test plays its loop's timers (calling
the sweep with chosen clocks) on connections whose socket buffer is already full (a
socketpair whose far end never reads), so the very next reply cannot be sent whole. The
broker address is a port nobody listens on; nothing waits."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import zmq

import broker.gateway
from broker.gateway import Gateway
from broker.gateway_codec import JsonFramer
from broker.gateway_connection import Connection
from protocol import Command, GameStatus, encode_reply, seq_bytes

STEP = Command.STEP.frame
SEND_TIMEOUT = 5.0
NOW = 1000.0  # the test's clock: the sweep is called with chosen times


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), task="t", send_timeout=SEND_TIMEOUT,
                     reply_timeout=60.0, retry_interval=30.0, broker_grace=30.0)
    yield server
    server.close()


@pytest.fixture
def stuck(gateway: Gateway) -> Iterator[list[Connection]]:
    """``stuck[i]``: connections whose client reads nothing and whose socket is full."""
    made: list[tuple[Connection, socket.socket]] = []

    def connect() -> Connection:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with pytest.raises(BlockingIOError):
            for _ in range(10_000):
                ours.send(b"x" * 4096)
        conn = Connection(gateway, ours, ours.fileno(), ["127.0.0.1", 4242], JsonFramer(gateway.max_request_bytes),
                          last_write=NOW - 100 * SEND_TIMEOUT)  # long ago: the reply must restart the count
        gateway._conns[conn.fd] = conn
        made.append((conn, theirs))
        return conn

    yield [connect(), connect()]
    for conn, theirs in made:
        theirs.close()
        if gateway._conns.get(conn.fd) is conn:
            gateway._drop(conn, "test over", NOW)


def in_flight(gateway: Gateway, conn: Connection, seat: bytes, seq: int) -> tuple[bytes, bytes]:
    """Make ``conn`` wait for the broker's reply to STEP (seat, seq), as _send leaves it."""
    key = (seat, seq_bytes(seq))
    conn.seat, conn.seq = seat, seq
    conn.inflight, conn.inflight_command = key, STEP
    conn.inflight_since = conn.inflight_deadline = NOW  # the broker is late already
    gateway._inflight[key] = conn
    return key


def assert_counted_from(gateway: Gateway, conn: Connection, written_at: float) -> None:
    """Kept just before ``send_timeout`` has passed since ``written_at``, dropped at it."""
    assert conn.output, "the reply should wait in the connection's output"
    gateway._sweep(written_at + SEND_TIMEOUT - 0.5)
    assert gateway._conns.get(conn.fd) is conn, "dropped before send_timeout passed since the reply"
    gateway._sweep(written_at + SEND_TIMEOUT)
    assert conn.fd not in gateway._conns, "not dropped send_timeout after the reply that did not fit"


def test_a_broker_reply_that_does_not_fit_starts_the_send_timeout(gateway: Gateway, stuck: list[Connection]) -> None:
    conn = stuck[0]
    key = in_flight(gateway, conn, b"seat-1", 3)
    gateway._on_reply(STEP, *key, encode_reply(GameStatus.OK, None, {"message": "x" * 100}), NOW)
    assert_counted_from(gateway, conn, NOW)


def test_an_unreadable_reply_answered_for_starts_the_send_timeout(gateway: Gateway, stuck: list[Connection]) -> None:
    conn = stuck[0]
    key = in_flight(gateway, conn, b"seat-1", 3)
    gateway._on_reply(STEP, *key, b"\xc1 not msgpack", NOW)
    assert b"cannot read" in conn.output
    assert_counted_from(gateway, conn, NOW)


def test_a_request_given_up_starts_the_send_timeout(gateway: Gateway, stuck: list[Connection]) -> None:
    conn = stuck[0]
    key = in_flight(gateway, conn, b"seat-1", 3)
    gateway._give_up(conn, key, {"message": "The game server did not answer.", "reason": "test"}, NOW)
    assert b"did not answer" in conn.output
    assert_counted_from(gateway, conn, NOW)


def test_a_request_that_cannot_be_forwarded_starts_the_send_timeout(
        monkeypatch: pytest.MonkeyPatch, stuck: list[Connection]) -> None:
    monkeypatch.setattr(broker.gateway, "_HWM", 1)  # the gateway's queue to the broker: one message
    server = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), task="t", send_timeout=SEND_TIMEOUT)
    try:
        with pytest.raises(zmq.Again):  # fill it: nobody takes messages at that address
            for _ in range(100):
                server._dealer.send_multipart([b"filler"], zmq.NOBLOCK)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):
            for _ in range(10_000):
                ours.send(b"x" * 65536)
        conn = Connection(server, ours, ours.fileno(), ["127.0.0.1", 4242], JsonFramer(server.max_request_bytes),
                          last_write=NOW - 100 * SEND_TIMEOUT)
        server._conns[conn.fd] = conn
        server._send(conn, STEP, b"seat-1", seq_bytes(3), b"\x90", NOW)
        assert b"cannot reach the game server" in conn.output
        assert_counted_from(server, conn, NOW)
        theirs.close()
    finally:
        server.close()


def test_every_stuck_client_is_dropped_on_the_sweep_that_finds_it(gateway: Gateway,
                                                                   stuck: list[Connection]) -> None:
    for number, conn in enumerate(stuck):
        key = in_flight(gateway, conn, f"seat-{number}".encode(), 3)
        gateway._on_reply(STEP, *key, encode_reply(GameStatus.OK, None, {"message": "x"}), NOW)
    gateway._sweep(NOW + SEND_TIMEOUT)
    assert not any(conn.fd in gateway._conns for conn in stuck), "a second stuck client waited for the next sweep"
