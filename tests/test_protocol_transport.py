"""Why a peer stays silent (protocol.transport), in-process on real pyzmq sockets over
loopback TCP: :func:`describe_handshake_failure`'s words for each monitor event, and
:class:`LinkWatch` following a socket through no listener, a listener that is no ZeroMQ
peer, a link that comes up and drops, a failed handshake later healed (DESIGN §7: say
early that nothing answers and why). Every wait is bounded; every socket is closed."""

from __future__ import annotations

import socket as stdsocket
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from protocol.transport import LinkWatch, describe_handshake_failure

#: Seconds an event may take to arrive on loopback before the test gives up (milliseconds in practice).
WAIT = 5.0
ONE_END = "CURVE is on at one end only (give both the broker and {who} CURVE keys, or neither)"
WRONG_SERVER_KEY = "the CURVE handshake failed (is the broker's public key the right one?)"
MISMATCH = zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
UNEXPECTED = zmq.PROTOCOL_ERROR_ZMTP_UNEXPECTED_COMMAND
AUTH, PROTOCOL = zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
NO_DETAIL = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _until(link: LinkWatch, condition: Callable[[], bool]) -> None:
    """Read events until ``condition`` holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        link.update()
        if condition():
            return
        assert time.monotonic() < deadline, "no such event within the wait"
        assert link.monitor is not None
        link.monitor.poll(20)


def _bind_again(socket: zmq.Socket, address: str) -> None:
    """Bind ``address`` once the socket closed there has let the port go (ZeroMQ closes
    sockets in its I/O thread, a moment later)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.bind(address)
            return
        except zmq.ZMQError as error:
            if error.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _curve_server(context: zmq.Context, public: bytes, secret: bytes) -> zmq.Socket:
    """A CURVE server with no ZAP domain: any client knowing its public key gets in."""
    socket = context.socket(zmq.ROUTER)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return socket


# --- describe_handshake_failure ------------------------------------------------------------


@pytest.mark.parametrize(("event", "value", "curve_here", "expected"), [
    (AUTH, 400, True, "the broker refused this client's CURVE key (not in its allow-list)"),
    (AUTH, 500, True, "the broker's authenticator refused this client (ZAP status 500)"),
    (AUTH, 300, False, "the broker's authenticator refused this client (ZAP status 300)"),
    (PROTOCOL, MISMATCH, True, ONE_END.format(who="this client")),
    (PROTOCOL, MISMATCH, False, ONE_END.format(who="this client")),
    (PROTOCOL, UNEXPECTED, True, "the security handshake failed (protocol error 0x10000001)"),
    (PROTOCOL, UNEXPECTED, False, ONE_END.format(who="this client")),
    (NO_DETAIL, 104, True, WRONG_SERVER_KEY),
    (NO_DETAIL, MISMATCH, True, WRONG_SERVER_KEY),
    (NO_DETAIL, 0, False, ONE_END.format(who="this client")),
])
def test_each_failure_in_words(event: int, value: int, curve_here: bool, expected: str) -> None:
    """A ZAP refusal first; then any failure at an end without CURVE, or a mechanism
    mismatch, is CURVE at one end only; other protocol errors by number; the rest at a
    CURVE end is a wrong server key."""
    assert describe_handshake_failure(event, value, curve_here=curve_here) == expected


def test_the_failure_names_who_is_refused() -> None:
    auth = describe_handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400, curve_here=True, who="the gateway")
    assert auth == "the broker refused the gateway's CURVE key (not in its allow-list)"
    zap = describe_handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 500, curve_here=True, who="the gateway")
    assert zap == "the broker's authenticator refused the gateway (ZAP status 500)"
    one_end = describe_handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0, curve_here=False, who="the gateway")
    assert one_end == ONE_END.format(who="the gateway")


# --- LinkWatch -----------------------------------------------------------------------------


def test_nothing_listening(context: zmq.Context) -> None:
    """A port where nothing listens: no event at all, so nothing accepts a connection there."""
    reserved = stdsocket.socket()  # bound, never listening: connections are refused
    reserved.bind(("127.0.0.1", 0))
    socket = context.socket(zmq.DEALER)
    link = LinkWatch(socket)
    try:
        socket.connect(f"tcp://127.0.0.1:{reserved.getsockname()[1]}")
        assert link.monitor is not None
        link.monitor.poll(200)
        assert link.update() is False
        assert (link.up, link.ever_up, link.lost, link.refused) == (False, False, False, False)
        assert link.failure() is None
        assert link.silence() == "nothing accepts a connection there"
    finally:
        link.close()
        socket.close(linger=0)
        reserved.close()


def test_a_listener_that_is_no_zeromq_peer(context: zmq.Context) -> None:
    """A TCP connection opens but no handshake follows: the wrong port. When that peer
    hangs up mid-handshake, ZeroMQ reports a failure with no detail, which at an end
    without CURVE means the other end wants CURVE; the link was never up, so not lost."""
    listener = stdsocket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(WAIT)
    socket = context.socket(zmq.DEALER)
    link = LinkWatch(socket, who="the monitor")
    try:
        socket.connect(f"tcp://127.0.0.1:{listener.getsockname()[1]}")
        connection, _ = listener.accept()
        _until(link, lambda: link.silence() != "nothing accepts a connection there")
        assert link.silence() == "a connection opened but no ZeroMQ handshake completed (the wrong port?)"
        assert (link.up, link.refused, link.lost) == (False, False, False)
        connection.close()
        _until(link, lambda: link.refused)
        again, _ = listener.accept()  # ZeroMQ reconnects only after the drop: its events came before
        again.close()
        link.update()
        assert (link.up, link.ever_up, link.lost) == (False, False, False)
        assert link.failure() == link.silence() == ONE_END.format(who="the monitor")
    finally:
        link.close()
        socket.close(linger=0)
        listener.close()


def test_a_link_that_comes_up_drops_and_comes_back(context: zmq.Context) -> None:
    """Up after a handshake (NULL security too); lost when it drops; up again, not lost, on
    the next handshake; ever_up stays."""
    server = context.socket(zmq.ROUTER)
    server.bind("tcp://127.0.0.1:*")
    address = server.last_endpoint.decode()
    socket = context.socket(zmq.DEALER)
    link = LinkWatch(socket)
    try:
        assert (link.up, link.ever_up, link.lost) == (False, False, False)
        socket.connect(address)
        _until(link, lambda: link.up)
        assert link.update() is True
        assert (link.ever_up, link.lost, link.refused, link.failure()) == (True, False, False, None)
        server.close(linger=0)
        _until(link, lambda: not link.up)
        assert link.update() is False
        assert (link.ever_up, link.lost, link.refused) == (True, True, False)
        assert link.silence() == "the connection was lost"
        server = context.socket(zmq.ROUTER)
        _bind_again(server, address)
        _until(link, lambda: link.up)
        assert (link.ever_up, link.lost) == (True, False)
        monitor = link.monitor
        link.close()
        assert link.monitor is None and monitor is not None and monitor.closed
        assert link.update() is True, "closed, it keeps what it knew"
    finally:
        link.close()
        socket.close(linger=0)
        server.close(linger=0)


def test_a_failed_handshake_then_a_good_one(context: zmq.Context) -> None:
    """A CURVE client facing a server with another key fails (the wrong server key) and
    is refused: the reason is certain; a later good handshake clears it."""
    server_public, server_secret = zmq.curve_keypair()
    other_public, other_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    impostor = _curve_server(context, other_public, other_secret)
    impostor.bind("tcp://127.0.0.1:*")
    address = impostor.last_endpoint.decode()
    socket = context.socket(zmq.DEALER)
    socket.curve_serverkey = server_public
    socket.curve_publickey = client_public
    socket.curve_secretkey = client_secret
    link = LinkWatch(socket, who="the gateway")
    server = None
    try:
        socket.connect(address)
        _until(link, lambda: link.refused)
        assert link.update() is False
        assert link.failure() == link.silence() == WRONG_SERVER_KEY
        assert (link.up, link.ever_up, link.lost) == (False, False, False)
        impostor.close(linger=0)
        server = _curve_server(context, server_public, server_secret)
        _bind_again(server, address)
        _until(link, lambda: link.up)
        assert (link.refused, link.failure(), link.ever_up, link.lost) == (False, None, True, False)
    finally:
        link.close()
        socket.close(linger=0)
        impostor.close(linger=0)
        if server is not None:
            server.close(linger=0)


def test_curve_here_only_names_who_must_change(context: zmq.Context) -> None:
    """A client without CURVE facing a CURVE server: CURVE at one end only, naming this end
    ("this client" unless told)."""
    public, secret = zmq.curve_keypair()
    server = _curve_server(context, public, secret)
    server.bind("tcp://127.0.0.1:*")
    sockets = [context.socket(zmq.DEALER) for _ in range(2)]
    links = [LinkWatch(sockets[0]), LinkWatch(sockets[1], who="the world")]
    try:
        for socket, link in zip(sockets, links, strict=True):
            socket.connect(server.last_endpoint.decode())
            _until(link, lambda link=link: link.refused)
        assert [link.failure() for link in links] == [ONE_END.format(who="this client"),
                                                       ONE_END.format(who="the world")]
    finally:
        for link, socket in zip(links, sockets, strict=True):
            link.close()
            socket.close(linger=0)
        server.close(linger=0)


def test_close_after_the_socket_is_closed(context: zmq.Context) -> None:
    """Closing the watch after its socket is harmless, and so is closing it twice."""
    socket = context.socket(zmq.DEALER)
    link = LinkWatch(socket)
    monitor = link.monitor
    socket.close(linger=0)
    link.close()
    link.close()
    assert link.monitor is None and monitor is not None and monitor.closed
    assert link.update() is False
