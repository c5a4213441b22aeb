"""Frame I/O on the broker's hot path: one whole message in, one out, without pyzmq's
Python-level wrappers.

Every step crosses the broker twice (request and reply), so what each message costs in
Python is what a step costs (DESIGN §6, zeromq.md §0.3). pyzmq's ``recv_multipart`` and
``send_multipart`` build flag enums and call ``getsockopt(RCVMORE)`` per frame; its
backend ``send``/``recv`` with plain int flags and the frames' own ``more`` flag do the
same work for about half the cost. The world worker and the clients do the same with
their own copies (world/ and agents/ may not import broker/).

>>> import zmq
>>> context = zmq.Context()
>>> a, b = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
>>> _ = a.bind("inproc://frames-doc"), b.connect("inproc://frames-doc")
>>> send_message(a, [b"ARENA1", b"step", b"body"])
>>> b.poll(1000) and receive(b)
[b'ARENA1', b'step', b'body']
>>> a.close(); b.close(); context.term()
"""

from __future__ import annotations

import zmq

__all__ = ["readable", "receive", "send_message"]

_NOBLOCK, _SEND_MORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE)
_send, _recv = zmq.backend.Socket.send, zmq.backend.Socket.recv
_poll, _POLLIN = zmq.backend.zmq_poll, int(zmq.POLLIN)


def readable(socket: zmq.Socket) -> bool:
    """Whether a message is queued: a zero-timeout poll, about a quarter of what a
    ``recv`` that finds nothing costs (pyzmq builds a ``zmq.Again`` for it)."""
    return bool(_poll([(socket, _POLLIN)], 0))


def receive(socket: zmq.Socket) -> list[bytes]:
    """One whole message, without waiting (zmq.Again if none is queued): its frames arrive
    together, so only the first read can find nothing."""
    frame = _recv(socket, _NOBLOCK, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _recv(socket, 0, False)
        frames.append(frame.bytes)
    return frames


def send_message(socket: zmq.Socket, frames: list[bytes]) -> None:
    """``send_multipart(frames, NOBLOCK)``: only the first frame can meet the high-water
    mark (zmq.Again) or, on a ROUTER_MANDATORY socket, an unroutable peer
    (``ZMQError(EHOSTUNREACH)``); the other frames follow it."""
    for index in range(len(frames) - 1):
        _send(socket, frames[index], _SEND_MORE)
    _send(socket, frames[-1], _NOBLOCK)
