"""A minimal broker made of a real ROUTER socket (no mocks), and the trace's SUB end,
for the world worker tests (tests/test_world_worker.py).

``FakeBroker`` binds a ROUTER (the broker's backend) on a free loopback port and speaks
PROTOCOL.md §1's backend dialect to a WorldWorker. ``Trace`` is the SUB end of the trace;
it counts only after an ``alive`` event proved the subscription is through. Every wait is
bounded by ``WAIT``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import yaml
import zmq

from protocol import (
    PROTOCOL_FRAME,
    Command,
    GameStatus,
    ReplyBody,
    action_to_compact,
    decode_reply,
    pack,
    seq_bytes,
    unpack,
)
from world import parse_task
from world.worker import WorldWorker

from .conftest import CLIENT, TASKS, scan

READY, HEARTBEAT, DISCONNECT, RELEASE, REQUEST, REPLY = (
    Command.READY.frame, Command.HEARTBEAT.frame, Command.DISCONNECT.frame, Command.RELEASE.frame,
    Command.REQUEST.frame, Command.REPLY.frame)
CLIENT_ID = b"agent-1"
WAIT = 10.0  # generous bound for anything that should take milliseconds


def quick_task(hold_timeout: float, name: str = "quick") -> Any:
    """The default task, but a game needs both its attacker and its defender to start."""
    document = copy.deepcopy(yaml.safe_load((TASKS / "default.yaml").read_text()))
    document["arena"].update(name=name, start={"Attacker": 1, "Defender": 1}, hold_timeout=hold_timeout)
    return parse_task(document, f"{name}.yaml")


@attrs.define
class Answer:
    client: bytes
    command: bytes
    raw: bytes
    batched: bool

    @property
    def body(self) -> ReplyBody:
        return decode_reply(self.raw)


class FakeBroker:
    """The backend half of a broker: a bound ROUTER that records what the world sends."""

    def __init__(self, context: zmq.Context) -> None:
        self.context = context
        self.router = self._bind("tcp://127.0.0.1:*")
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.identity: bytes | None = None
        self.readies: list[tuple[bytes, dict[str, Any]]] = []
        self.answers: dict[tuple[bytes, bytes], Answer] = {}
        self.reply_messages: list[list[bytes]] = []
        self.releases: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.disconnects = 0
        self.beat: float | None = None      # send heartbeats this often while waiting
        self._next_beat = 0.0

    def _bind(self, endpoint: str) -> zmq.Socket:
        router = self.context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind(endpoint)
        return router

    def restart(self) -> None:
        """Close the ROUTER and bind a new one on the same port (a broker restart)."""
        self.router.close(linger=0)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                self.router = self._bind(self.endpoint)
                return
            except zmq.ZMQError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.router.close(linger=0)

    # -------------------------------------------------------------- receiving
    def _receive(self) -> None:
        identity, *frames = self.router.recv_multipart()
        assert frames[0] == PROTOCOL_FRAME, frames
        command = frames[1]
        if command == READY:
            self.identity = identity
            self.readies.append((identity, unpack(frames[2])))
        elif command == HEARTBEAT:
            self.heartbeats += 1
        elif command == DISCONNECT:
            self.disconnects += 1
        elif command == RELEASE:
            self.releases.append(unpack(frames[2]))
        elif command == REPLY:
            self.reply_messages.append(frames)
            client, inner = frames[2], frames[3]
            if inner == Command.BATCH.frame and len(frames) > 7:
                assert frames[4] == b"w-test" and (len(frames) - 6) % 3 == 0, frames
                for index in range(6, len(frames), 3):
                    self._answer(frames[index], frames[index + 1], Answer(client, frames[5], frames[index + 2], True))
            else:
                assert len(frames) == 7, frames
                self._answer(frames[4], frames[5], Answer(client, inner, frames[6], False))
        else:
            raise AssertionError(f"unexpected message {frames}")

    def _answer(self, seat: bytes, seq: bytes, answer: Answer) -> None:
        assert (seat, seq) not in self.answers, f"second reply to {seat!r} {seq!r}"
        self.answers[(seat, seq)] = answer

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            if self.beat is not None and self.identity is not None and now >= self._next_beat:
                self.router.send_multipart([self.identity, PROTOCOL_FRAME, HEARTBEAT])
                self._next_beat = now + self.beat
            wait = min(deadline, self._next_beat if self.beat else deadline) - now
            if self.router.poll(max(wait, 0.001) * 1000):
                self._receive()

    def listen(self, seconds: float) -> None:
        """Record whatever arrives during ``seconds``."""
        end = time.monotonic() + seconds
        self.wait(lambda: time.monotonic() >= end, "the end of the pause", seconds + 1)

    # -------------------------------------------------------------- sending
    def send(self, *frames: bytes) -> None:
        assert self.identity is not None
        self.router.send_multipart([self.identity, *frames])

    def request(self, command: Command, seat: bytes, seq: int, body: Any, client: bytes = CLIENT_ID) -> None:
        raw = body if isinstance(body, bytes) else pack(body)
        self.send(PROTOCOL_FRAME, REQUEST, client, command.frame, seat, seq_bytes(seq), raw)

    def reply(self, seat: bytes, seq: int, timeout: float = WAIT) -> ReplyBody:
        return self.answer(seat, seq, timeout).body

    def answer(self, seat: bytes, seq: int | bytes, timeout: float = WAIT) -> Answer:
        key = (seat, seq if isinstance(seq, bytes) else seq_bytes(seq))
        self.wait(lambda: key in self.answers, f"the reply to {seat!r} #{seq}", timeout)
        return self.answers[key]

    def call(self, command: Command, seat: bytes, seq: int, body: Any) -> ReplyBody:
        self.request(command, seat, seq, body)
        return self.reply(seat, seq)

    def join(self, seat: bytes, role: str, game: str, task: str = "default", seq: int = 1) -> None:
        self.request(Command.JOIN, seat, seq, {"task": task, "role": role, "game": game, "name": seat.decode()})

    def released(self) -> tuple[list[Any], list[Any]]:
        seats = [seat for body in self.releases for seat in body["seats"]]
        return seats, [game for body in self.releases for game in body["closed"]]


class Trace:
    """The SUB end of the trace; counts only after the handshake."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self.messages: list[tuple[bytes, dict[str, Any]]] = []

    def _receive(self, timeout: float) -> None:
        if self.socket.poll(timeout * 1000):
            topic, body = self.socket.recv_multipart()
            self.messages.append((topic, unpack(body)))

    def handshake(self) -> None:
        deadline = time.monotonic() + WAIT
        while not any(m["events"][0]["kind"] == "alive" for _, m in self.messages):
            assert time.monotonic() < deadline, "no alive event on the trace"
            self._receive(0.1)
        self.messages = self.messages[-1:]

    def events(self, topic: bytes) -> list[dict[str, Any]]:
        return [event for t, m in self.messages if t == topic for event in m["events"]]

    def wait(self, condition: Callable[[], Any], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what} on the trace"
            self._receive(0.1)


@attrs.define
class Harness:
    broker: FakeBroker
    worker: WorldWorker
    thread: threading.Thread
    trace: Trace


def start_game(broker: FakeBroker, seat: bytes, game: str) -> ReplyBody:
    broker.join(seat, "Attacker", game)
    reply = broker.reply(seat, 1)
    assert reply.status is GameStatus.CREATED, reply
    return reply


SCAN = action_to_compact(scan(CLIENT, "192.168.1.0/24"))
