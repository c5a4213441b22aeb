"""Why a broker stays silent: ZeroMQ's security handshake fails without an error a
client would see (a refused CURVE key, CURVE at one end only, a wrong server key); its
requests just wait. A :class:`HandshakeWatch` keeps a socket's monitor events of the
handshake and is read only when a request has timed out, never on the step path.

>>> import zmq
>>> socket = zmq.Context.instance().socket(zmq.DEALER)
>>> watch = HandshakeWatch(socket)
>>> watch.failure() is None
True
>>> watch.close(); socket.close(linger=0)
"""

from __future__ import annotations

import contextlib

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = ["HandshakeWatch"]

_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
           | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_DRAIN_LIMIT = 10_000


def _describe(event: int, value: int) -> str | None:
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return None
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        if value == 400:
            return "the broker refused this client's CURVE key (not in its allow-list)"
        return f"the broker's authenticator refused this client (ZAP status {value})"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "CURVE is on at one end only (give both the broker and this client CURVE keys, or neither)"
        return f"the security handshake failed (protocol error {value:#x})"
    return "the CURVE handshake failed (is the broker's public key the right one?)"


class HandshakeWatch:
    """A monitor of ``socket``'s handshakes (create it before connecting)."""

    def __init__(self, socket: zmq.Socket) -> None:
        self._socket = socket
        self._monitor: zmq.Socket | None = socket.get_monitor_socket(_EVENTS)
        self._failure: str | None = None

    def failure(self) -> str | None:
        """Why the latest handshake failed; None if none did, or a later one succeeded."""
        monitor = self._monitor
        for _ in range(_DRAIN_LIMIT):
            if monitor is None:
                break
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            self._failure = _describe(int(event["event"]), int(event["value"]))
        return self._failure

    def close(self) -> None:
        """Stop watching (before closing the socket)."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            with contextlib.suppress(zmq.ZMQError):  # the socket is closed already
                self._socket.disable_monitor()
            monitor.close(linger=0)
