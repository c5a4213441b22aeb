"""ZeroMQ plumbing shared by the broker, the worlds and the clients: the only module of
``protocol`` that imports pyzmq, and one that ``protocol/__init__`` does not import
(DESIGN §1), so ``import protocol`` stays free of ZeroMQ.

Why a peer stays silent: ZeroMQ queues messages for an address where nothing listens,
and a failed security handshake (a refused CURVE key, CURVE at one end only, a wrong
server key) raises no error a sender would see; its requests just wait. A
:class:`LinkWatch` follows a socket's monitor events (connection and handshake), so a
command can say early that nothing answers at an address and why (DESIGN §7: within
5 s, naming the address), and a client whose request timed out can say why. It is read
when convenient (events wait in the monitor's queue; a poller may watch
:attr:`LinkWatch.monitor`), never on the step path.

>>> import zmq
>>> socket = zmq.Context.instance().socket(zmq.SUB)
>>> link = LinkWatch(socket)
>>> _ = socket.connect("tcp://127.0.0.1:1")
>>> link.update(), link.silence()
(False, 'nothing accepts a connection there')
>>> link.close(); socket.close(linger=0)
"""

from __future__ import annotations

import contextlib

import zmq
from zmq.utils.monitor import recv_monitor_message

__all__ = ["NOTICE_AFTER", "LinkWatch", "describe_handshake_failure"]

#: Seconds a command waits for a first handshake before it says that nothing answers
#: (a handshake on a live link takes milliseconds, across machines with CURVE tens of
#: them; DESIGN §7 asks for the line within 5 s, and a loaded machine's start-up counts).
NOTICE_AFTER = 1.0

_FAILURES = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
_EVENTS = zmq.EVENT_HANDSHAKE_SUCCEEDED | _FAILURES | zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
#: Monitor events read at most per update (a bound, never reached in practice).
_DRAIN_LIMIT = 10_000
_ZAP_REFUSED = 400


def describe_handshake_failure(event: int, value: int, *, curve_here: bool, who: str = "this client") -> str:
    """Why a handshake failed, in words, from its monitor event and value. ``curve_here``:
    whether this end uses CURVE; if it does not, any failure means the peer does (ZeroMQ
    reports that as a mechanism mismatch, or with no detail when the peer hangs up first).

    >>> describe_handshake_failure(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, 0, curve_here=False)
    'CURVE is on at one end only (give both the broker and this client CURVE keys, or neither)'
    """
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        if value == _ZAP_REFUSED:
            return f"the broker refused {who}'s CURVE key (not in its allow-list)"
        return f"the broker's authenticator refused {who} (ZAP status {value})"
    if not curve_here or (event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                          and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH):
        return f"CURVE is on at one end only (give both the broker and {who} CURVE keys, or neither)"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return f"the security handshake failed (protocol error {value:#x})"
    return "the CURVE handshake failed (is the broker's public key the right one?)"


class LinkWatch:
    """Whether anything answers at the address ``socket`` connects to, and why not.

    Create it before connecting: the first handshake is an event too. ``up``: a
    handshake succeeded (with NULL security too) and the connection has not dropped
    since; ``ever_up``: one did at least once; ``lost``: it was up, then dropped.
    ``who`` names this end in explanations ("this client", "the gateway").
    """

    def __init__(self, socket: zmq.Socket, *, who: str = "this client") -> None:
        self._socket = socket
        self._curve_here = socket.getsockopt(zmq.MECHANISM) == zmq.CURVE
        self._who = who
        self.monitor: zmq.Socket | None = socket.get_monitor_socket(_EVENTS)
        self.up = False
        self.ever_up = False
        self.lost = False
        self._connected = False  # a TCP connection opened at some point
        self._failure: str | None = None

    def update(self) -> bool:
        """Read the events that arrived; whether the link is up now."""
        monitor = self.monitor
        for _ in range(_DRAIN_LIMIT):
            if monitor is None:
                break
            try:
                message = recv_monitor_message(monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            self._on_event(int(message["event"]), int(message["value"]))
        return self.up

    def _on_event(self, event: int, value: int) -> None:
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.up = self.ever_up = True
            self.lost, self._failure = False, None
        elif event & _FAILURES:
            self.up = False
            self._failure = describe_handshake_failure(event, value, curve_here=self._curve_here, who=self._who)
        elif event == zmq.EVENT_CONNECTED:
            self._connected = True
        elif event == zmq.EVENT_DISCONNECTED and self.up:
            self.up, self.lost = False, True

    def failure(self) -> str | None:
        """Why the latest handshake failed; None if none did, or a later one succeeded."""
        self.update()
        return self._failure

    @property
    def refused(self) -> bool:
        """The latest handshake failed: the reason is certain, no need to wait."""
        return self._failure is not None

    def silence(self) -> str:
        """Why nothing answers, as far as the events tell."""
        if self._failure:
            return self._failure
        if self.lost:
            return "the connection was lost"
        if self._connected:
            return "a connection opened but no ZeroMQ handshake completed (the wrong port?)"
        return "nothing accepts a connection there"

    def close(self) -> None:
        """Stop watching (before closing the socket)."""
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            with contextlib.suppress(zmq.ZMQError):  # the socket is closed already
                self._socket.disable_monitor()
            monitor.close(linger=0)
