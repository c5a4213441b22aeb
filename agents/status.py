"""The broker's status query (an MMI-style request answered by the broker itself).

>>> query_status("tcp://127.0.0.1:1", timeout=0.05)   # nobody there: an empty answer
{}
"""

from __future__ import annotations

import logging
from typing import Any

import zmq

from protocol import PROTOCOL_FRAME, Command, CurveClient, GameStatus, ProtocolError, decode_reply, seq_bytes

from .handshake import HandshakeWatch

__all__ = ["query_status"]

log = logging.getLogger(__name__)


def query_status(address: str, *, timeout: float = 5.0, curve: CurveClient | None = None,
                 context: zmq.Context | None = None) -> dict[str, Any]:
    """Ask the broker at ``address`` for its worlds, tasks, games and seats; {} on no answer
    (also when the broker has CURVE on and ``curve`` holds no allowed key)."""
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply(socket)
    watch = HandshakeWatch(socket)
    try:
        socket.connect(address)
        socket.send_multipart([PROTOCOL_FRAME, Command.STATUS.frame, b"", seq_bytes(1), b"\xc0"])
        if not socket.poll(timeout * 1000):
            failure = watch.failure()
            if failure:
                log.warning("no status from %s: %s", address, failure)
            return {}
        frames = socket.recv_multipart()
        if len(frames) != 5 or frames[1] != Command.STATUS.frame:
            return {}
        try:
            reply = decode_reply(frames[4])
        except ProtocolError:
            return {}
        return reply.message if reply.status is GameStatus.OK and isinstance(reply.message, dict) else {}
    finally:
        watch.close()
        socket.close(linger=0)
