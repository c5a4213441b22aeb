"""The peers of a gateway under test (tests/test_gateway_rules.py): a ZeroMQ ROUTER the test
plays as the broker, a raw TCP client speaking NetSecGame's framing (bare JSON out, replies
end in ``EOF``), and a gateway running in a thread whose exceptions are kept."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from broker.gateway import Gateway
from protocol import PROTOCOL_FRAME, Command, GameStatus, encode_reply, unpack

WAIT = 5.0  # seconds: the bound of every blocking wait
JOIN = json.dumps({"action_type": "ActionType.JoinGame",
                   "parameters": {"agent_info": {"name": "Rules", "role": "Attacker"}}})
_JOIN = Command.JOIN.frame


@dataclass(frozen=True)
class Received:
    """One request as the broker's ROUTER got it, and when."""

    identity: bytes
    command: bytes
    seat: bytes
    seq: bytes
    body: bytes
    at: float

    @property
    def request(self) -> Any:
        return unpack(self.body)


class PlayedBroker:
    """A ROUTER playing the broker: the test reads each request and answers it, or not."""

    def __init__(self, context: zmq.Context, endpoint: str = "tcp://127.0.0.1:*") -> None:
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def receive(self, timeout: float = WAIT) -> Received:
        if not self.socket.poll(timeout * 1000):
            raise TimeoutError(f"the gateway sent nothing within {timeout} s")
        identity, frame, command, seat, seq, body = self.socket.recv_multipart()
        assert frame == PROTOCOL_FRAME
        return Received(identity, command, seat, seq, body, time.monotonic())

    def silent_for(self, seconds: float) -> bool:
        """Nothing arrives within ``seconds``."""
        return not self.socket.poll(seconds * 1000)

    def answer(self, request: Received, status: GameStatus, message: dict[str, Any] | str | None = None, *,
               seat: bytes | None = None, code: str | None = None) -> float:
        """Reply to ``request`` (same command and seq; ``seat`` for a JOIN's); returns when."""
        self.send(request, encode_reply(status, None, message, code), seat=seat)
        return time.monotonic()

    def send(self, request: Received, body: bytes, *, seat: bytes | None = None, frame: bytes = PROTOCOL_FRAME,
             extra: tuple[bytes, ...] = ()) -> None:
        """Send ``body`` as the reply to ``request``, in any frames."""
        self.socket.send_multipart([request.identity, frame, request.command, request.seat if seat is None else seat,
                                    request.seq, body, *extra])

    def seat(self, join: Received, seat: bytes) -> None:
        """Answer a JOIN with CREATED and the seat, as a world does (seat frame and message)."""
        assert join.command == _JOIN and join.seat == b""
        self.answer(join, GameStatus.CREATED, {"message": "Welcome", "seat": seat.decode(), "world": "w-1"},
                    seat=seat)

    def close(self) -> None:
        self.socket.close(linger=0)


class Client:
    """NetSecGame's client framing over a plain TCP socket."""

    def __init__(self, address: tuple[str, int], rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting: the window the server may fill
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(WAIT)
        self.sock.connect(address)
        self._buffer = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def receive(self) -> dict[str, Any]:
        while b"EOF" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the gateway")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"EOF")
        return json.loads(message)

    def request(self, text: str) -> dict[str, Any]:
        self.send(text)
        return self.receive()

    def quiet_for(self, seconds: float) -> bool:
        """No byte arrives (and no close) within ``seconds``."""
        return not self._buffer and not select.select([self.sock], [], [], seconds)[0]

    def closed_by_gateway(self) -> bool:
        """Read to the end: True once the gateway closed (EOF or reset), within WAIT."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()


@dataclass
class Running:
    """A gateway serving in its own thread."""

    server: Gateway
    address: tuple[str, int]
    thread: threading.Thread
    errors: list[BaseException]
    clients: list[Client] = field(default_factory=list)

    def client(self, rcvbuf: int | None = None) -> Client:
        self.clients.append(Client(self.address, rcvbuf))
        return self.clients[-1]

    def joined(self, broker: PlayedBroker, seat: bytes, rcvbuf: int | None = None) -> tuple[Client, Received]:
        """A client whose JoinGame the broker answered with ``seat``."""
        client = self.client(rcvbuf)
        client.send(JOIN)
        join = broker.receive()
        broker.seat(join, seat)
        assert client.receive()["status"] == "GameStatus.CREATED"
        return client, join

    def alive(self) -> bool:
        """Still serving: the loop neither died nor raised."""
        return self.thread.is_alive() and not self.errors

    def stopped_cleanly(self) -> bool:
        """:meth:`Gateway.run` returned (within WAIT) without raising."""
        self.thread.join(WAIT)
        return not self.thread.is_alive() and not self.errors


def serve(server: Gateway) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``server`` in a thread; what :meth:`Gateway.run` raises is kept, not lost."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, name="gateway-rules", daemon=True)
    thread.start()
    return thread, errors


#: A broker address nothing listens at (port 1: connections are refused at once), not a
#: free port guessed now that another test may bind later.
NOWHERE = "tcp://127.0.0.1:1"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll another thread's state (no event to wait on) until ``condition()`` is truthy."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)
    return value
