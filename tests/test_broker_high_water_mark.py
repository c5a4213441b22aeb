"""A client that does not read its replies (PROTOCOL.md "Limits"): past the frontend's
high-water mark the broker drops that client's replies, counts them in its log, and keeps
serving everyone else at once.

A real Broker runs in a thread on loopback `*` ports; its frontend's mark (100,000 by
default) is lowered before it binds, and the kernel buffers shrunk, so a few thousand
unread replies reach it. The deaf client floods STEPs for a seat nobody holds: the broker
answers each itself (UNKNOWN_SEAT), with no world involved. Every wait is bounded."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from broker import Broker
from protocol import PROTOCOL_FRAME, Command, ErrorCode, decode_reply, seq_bytes

from .fake_broker import context

__all__ = ["context"]  # the fixture, imported for pytest

STEP, STATUS = Command.STEP.frame, Command.STATUS.frame
#: requests the deaf client sends: many times what the lowered marks and buffers hold
FLOOD = 20_000
MARK = 50
WAIT = 10.0


@pytest.fixture
def broker(context: zmq.Context) -> Iterator[Broker]:
    running = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, context=context, heartbeat=0.2,
                     recovery=0.0)
    running.frontend.setsockopt(zmq.SNDHWM, MARK)  # options set before bind apply to every connection
    running.frontend.setsockopt(zmq.SNDBUF, 4096)
    running.bind()
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(WAIT)
    running.close()


def dealer(context: zmq.Context, endpoint: str, identity: bytes, *, small: bool = False) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, identity)
    if small:
        socket.setsockopt(zmq.RCVHWM, MARK)
        socket.setsockopt(zmq.RCVBUF, 4096)
    socket.connect(endpoint)
    return socket


def drain(socket: zmq.Socket, quiet: float = 0.5) -> list[list[bytes]]:
    """Every message waiting on ``socket``, until none comes for ``quiet`` seconds."""
    found = []
    while socket.poll(quiet * 1000):
        found.append(socket.recv_multipart())
    return found


def test_a_client_that_does_not_read_loses_replies_past_the_mark_counted_in_the_log(
        broker: Broker, context: zmq.Context, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="broker")
    endpoint = broker.endpoints["frontend"]
    deaf = dealer(context, endpoint, b"deaf-client", small=True)
    other = dealer(context, endpoint, b"other-client")
    try:
        for seq in range(1, FLOOD + 1):
            deaf.send_multipart([PROTOCOL_FRAME, STEP, b"nobody", seq_bytes(seq), b"\x90"])
        deadline = time.monotonic() + WAIT
        while "not reading" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        first = [r.getMessage() for r in caplog.records if "not reading" in r.getMessage()]
        assert first, "the broker logged no dropped reply"
        assert first[0] == ("agent b'deaf-client' is not reading (at its high-water mark): "
                            "reply dropped (1 so far)")

        # Neither slows anyone else: another client is answered at once while the deaf one is stuck.
        other.send_multipart([PROTOCOL_FRAME, STEP, b"nobody", seq_bytes(7), b"\x90"])
        assert other.poll(2000), "another client waited behind the deaf one"
        frames = other.recv_multipart()
        assert frames[1:4] == [STEP, b"nobody", seq_bytes(7)]
        assert decode_reply(frames[-1]).code is ErrorCode.UNKNOWN_SEAT

        received = drain(deaf)
        dropped = broker._dropped_replies
        assert 0 < len(received) < FLOOD, "some replies were delivered, the rest dropped"
        assert len(received) + dropped == FLOOD, "every reply was either delivered or counted as dropped"
        counted = [r.getMessage() for r in caplog.records if "not reading" in r.getMessage()]
        assert len(counted) == 1 + dropped // 1000, "logged at the first drop and every thousandth"
        if dropped >= 1000:
            assert counted[1].endswith("reply dropped (1000 so far)")
        seqs = [int.from_bytes(frames[3], "big") for frames in received]
        assert seqs == sorted(seqs), "the replies that got through kept their order"
    finally:
        deaf.close(linger=0)
        other.close(linger=0)
