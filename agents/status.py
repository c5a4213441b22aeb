"""The broker's status query (an MMI-style request answered by the broker itself).

>>> query_status("tcp://127.0.0.1:1", timeout=0.05)   # nobody there: an empty answer
{}
>>> reply = ask_status("tcp://127.0.0.1:1", timeout=0.05)
>>> reply.answer is None, reply.reason
(True, 'nothing accepts a connection there')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import zmq

from protocol import PROTOCOL_FRAME, Command, CurveClient, GameStatus, ProtocolError, decode_reply, seq_bytes
from protocol.transport import NOTICE_AFTER, LinkWatch

__all__ = ["StatusReply", "ask_status", "query_status"]

log = logging.getLogger(__name__)


@attrs.frozen
class StatusReply:
    """A status query's outcome: the broker's answer, or why there is none."""

    answer: dict[str, Any] | None
    reason: str | None = None  # why no answer, when the socket's events tell
    reached: bool = False      # a ZeroMQ peer answered the handshake at the address


def ask_status(address: str, *, timeout: float = 5.0, curve: CurveClient | None = None,
               context: zmq.Context | None = None, on_silence: Callable[[str], None] | None = None,
               notice_after: float = NOTICE_AFTER) -> StatusReply:
    """Ask the broker at ``address`` for its worlds, tasks, games and seats, waiting at
    most ``timeout`` seconds. ``on_silence(reason)`` is called once, after
    ``notice_after`` seconds without an answer (a command says what it waits for)."""
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(socket)
    watch = LinkWatch(socket)
    started = time.monotonic()
    deadline = started + timeout
    try:
        socket.connect(address)
        socket.send_multipart([PROTOCOL_FRAME, Command.STATUS.frame, b"", seq_bytes(1), b"\xc0"])
        noticed = on_silence is None
        while True:
            now = time.monotonic()
            wait = deadline - now if noticed else min(deadline, started + notice_after) - now
            if socket.poll(max(0.0, wait) * 1000):
                break
            now = time.monotonic()
            if now >= deadline:
                watch.update()
                reason = watch.silence() if not watch.up else "the peer answers the handshake but not the query"
                if watch.failure():
                    log.warning("no status from %s: %s", address, watch.failure())
                return StatusReply(None, reason, watch.ever_up)
            if not noticed:
                noticed = True
                watch.update()
                assert on_silence is not None
                on_silence(watch.silence() if not watch.up else "connected, waiting for the answer")
        frames = socket.recv_multipart()
        if len(frames) != 5 or frames[1] != Command.STATUS.frame:
            return StatusReply(None, "an answer that is not a broker's status", True)
        try:
            reply = decode_reply(frames[4])
        except ProtocolError as error:
            return StatusReply(None, f"an undecodable answer ({error})", True)
        if reply.status is not GameStatus.OK or not isinstance(reply.message, dict):
            return StatusReply(None, f"the broker refused the query ({reply.message})", True)
        return StatusReply(reply.message, None, True)
    finally:
        watch.close()
        socket.close(linger=0)


def query_status(address: str, *, timeout: float = 5.0, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> dict[str, Any]:
    """Ask the broker at ``address`` for its worlds, tasks, games and seats; {} on no answer
    (also when the broker has CURVE on and ``curve`` holds no allowed key)."""
    return ask_status(address, timeout=timeout, curve=curve, context=context).answer or {}
