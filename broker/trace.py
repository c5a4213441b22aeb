"""The trace proxy: worlds publish into an XSUB, monitors subscribe to an XPUB.

It runs ``zmq.proxy_steerable`` in its own thread, off the routing loop, so a burst of
trace traffic never delays a step. XPUB_VERBOSE passes every subscription upstream,
so a world's PUB starts sending to a new monitor at once; PUB drops (and the monitor
sees a sequence gap) when a monitor cannot keep up — the trace never slows a game.
"""

from __future__ import annotations

import logging
import threading

import zmq

from protocol.security import CurveServer

__all__ = ["TraceProxy"]

log = logging.getLogger(__name__)

_TRACE_HWM = 100_000


class TraceProxy:
    """XSUB (trace input) -> XPUB (trace) in a background thread; with ``curve``, both
    are CURVE servers (the broker runs their ZAP authenticator)."""

    def __init__(self, context: zmq.Context, input_address: str, output_address: str, *,
                 curve: CurveServer | None = None) -> None:
        self.context = context
        self.addresses = (input_address, output_address)
        self.input = context.socket(zmq.XSUB)
        self.output = context.socket(zmq.XPUB)
        self.output.setsockopt(zmq.XPUB_VERBOSE, 1)
        for socket in (self.input, self.output):
            if curve is not None:
                curve.apply(socket)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.SNDHWM, _TRACE_HWM)
            socket.setsockopt(zmq.RCVHWM, _TRACE_HWM)
        self._control_address = f"inproc://trace-control-{id(self):x}"
        self._control = context.socket(zmq.PAIR)
        self._control.bind(self._control_address)
        self._thread: threading.Thread | None = None

    def bind(self) -> dict[str, str]:
        self.input.bind(self.addresses[0])
        self.output.bind(self.addresses[1])
        return {"trace_input": self.input.getsockopt_string(zmq.LAST_ENDPOINT),
                "trace": self.output.getsockopt_string(zmq.LAST_ENDPOINT)}

    def start(self) -> None:
        """Hand the sockets to the proxy thread (they are not touched here again)."""
        self._thread = threading.Thread(target=self._run, name="trace-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        control = self.context.socket(zmq.PAIR)
        control.connect(self._control_address)
        try:
            zmq.proxy_steerable(self.input, self.output, None, control)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as error:
            log.warning("trace proxy stopped: %s", error)
        finally:
            control.close(linger=0)
            self.input.close(linger=0)
            self.output.close(linger=0)

    def close(self) -> None:
        if self._thread is not None:
            self._control.send(b"TERMINATE")
            self._thread.join(timeout=5)
            self._thread = None
        else:
            self.input.close(linger=0)
            self.output.close(linger=0)
        self._control.close(linger=0)
