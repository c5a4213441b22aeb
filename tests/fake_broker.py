"""A fake broker + world for the agent-client tests, over real ZeroMQ sockets.

:class:`FakeBroker` is a ROUTER bound on a free loopback port, served by a thread that
hosts real ``world.GameSession`` games and answers per PROTOCOL.md (single and batch
requests, batch replies, held replies released later). It stands in for the broker +
world pair; only the transport between them is left out. It can also misbehave on
request: stay silent, corrupt a reply, send a stale reply first, delay a reply, forget a
seat, reverse the order of a batch reply.

Also here: the tasks the tests play, the ``context``/``brokers``/``clients`` fixtures
(imported by the test modules that use them) and small helpers. Not a test module.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import yaml
import zmq

from agents.client import BaseAgent
from protocol import (
    PROTOCOL_FRAME,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    action_from_compact,
    encode_reply,
    int_from_seq,
    unpack,
)
from world import GameSession, Reply, TaskConfig, Trajectory, load_task, parse_task

from .conftest import TASKS

SINGLE_FILE = TASKS / "scenario1_small_attacker.yaml"
SINGLE = load_task(SINGLE_FILE)
_PAIR_DOCUMENT = copy.deepcopy(yaml.safe_load(SINGLE_FILE.read_text()))
_PAIR_DOCUMENT["env"]["required_players"] = 2
PAIR = parse_task(_PAIR_DOCUMENT, "pair.yaml", SINGLE_FILE.parent)  # two attackers per game, both to start

_JOIN, _STEP, _BATCH, _RESET, _QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                       Command.RESET.frame, Command.QUIT.frame)
WAIT = 10.0  # generous client timeout where nothing is meant to time out


@attrs.frozen
class Seen:
    """One message the fake received: its command, inner command and (seat, seq) pairs."""

    command: bytes
    inner: bytes | None
    requests: tuple[tuple[bytes, bytes], ...]


class FakeBroker:
    """Broker + world for tests: a ROUTER and GameSessions served by one thread."""

    def __init__(self, context: zmq.Context, task: TaskConfig = SINGLE, *, seed: int = 42, world: str = "w-1",
                 answer: bool = True, stale_first: bool = False, reverse_batches: bool = False,
                 refuse: bool = False) -> None:
        self.task, self.seed, self.world, self.answer = task, seed, world, answer
        self.refuse = refuse  # answer everything as the broker answers another protocol version
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sessions: dict[str, GameSession] = {}
        self.seats: dict[bytes, str] = {}
        self.seen: list[Seen] = []
        # Misbehaviour switches, set by the test thread under the lock.
        self.lock = threading.Lock()
        self.corrupt_next = False
        self.stale_first = stale_first
        self.delay_next = 0.0
        self.reverse_batches = reverse_batches
        self._delayed: list[tuple[float, list[bytes]]] = []
        self.sent_delayed = 0
        self._seat_ids = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fake-broker-{world}", daemon=True)

    # ------------------------------------------------------------------ control
    def start(self) -> FakeBroker:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "fake broker thread did not stop"
        self.socket.close(linger=0)

    def forget(self, seat: str) -> None:
        with self.lock:
            self.seats.pop(seat.encode(), None)

    def requests_of(self, command: bytes) -> list[tuple[bytes, bytes]]:
        """(seat, seq) of every request of ``command``, single or inside a batch."""
        with self.lock:
            return [pair for seen in self.seen if command in (seen.command, seen.inner) for pair in seen.requests]

    def messages(self, command: bytes) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if seen.command == command]

    # ------------------------------------------------------------------ loop
    def _run(self) -> None:
        while not self._stop.is_set():
            if self.socket.poll(10):
                while True:
                    try:
                        frames = self.socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    with self.lock:
                        self._handle(frames)
            now = time.monotonic()
            with self.lock:
                for session in list(self.sessions.values()):
                    self._send(self._drained(session, session.tick(now)))
                due = [frames for when, frames in self._delayed if when <= now]
                self._delayed = [(when, frames) for when, frames in self._delayed if when > now]
            for frames in due:
                self.socket.send_multipart(frames)
                self.sent_delayed += 1

    def _handle(self, frames: list[bytes]) -> None:
        client, command = frames[0], frames[2]
        if self.refuse:
            self.seen.append(Seen(command, None, ()))
            self._out([client, PROTOCOL_FRAME, Command.ERROR.frame, b"", b"", encode_reply(
                GameStatus.BAD_REQUEST, None, {"message": "Expected version 1 first."}, ErrorCode.BAD_VERSION)])
            return
        if command == _BATCH:
            world, inner, triples = frames[3], frames[4], frames[5:]
            requests = [(triples[i], triples[i + 1], triples[i + 2]) for i in range(0, len(triples), 3)]
            self.seen.append(Seen(command, inner, tuple((seat, seq) for seat, seq, _ in requests)))
            if not self.answer:
                return
            replies: list[Reply] = []
            for seat, seq, body in requests:
                replies += self._request(client, inner, seat, seq, body)
            self._send(replies, batch=(client, world, inner))
        else:
            seat, seq, body = frames[3], frames[4], frames[5]
            self.seen.append(Seen(command, None, ((seat, seq),)))
            if self.answer:
                self._send(self._request(client, command, seat, seq, body))

    def _request(self, client: bytes, command: bytes, seat: bytes, seq: bytes, body: bytes) -> list[Reply]:
        now = time.monotonic()
        if command == _JOIN:
            return self._join(client, seq, unpack(body), now)
        tag = (client, command, seat, seq)
        game = self.seats.get(seat)
        if game is None:
            return [Reply(seat, tag, GameStatus.BAD_REQUEST, None, {"message": "Unknown seat: JOIN first."},
                          ErrorCode.UNKNOWN_SEAT)]
        session = self.sessions[game]
        if command == _STEP:
            try:
                action = action_from_compact(unpack(body))
            except ProtocolError as error:
                return [session.reject(seat, error, tag)]
            return self._drained(session, session.step(seat, action, now, tag))
        if command == _RESET:
            trajectory, randomize, seed = unpack(body)
            return self._drained(session, session.reset(seat, now, tag, request_trajectory=trajectory,
                                                        randomize_topology=randomize, seed=seed))
        assert command == _QUIT
        return self._drained(session, session.quit(seat, now, tag))

    def _join(self, client: bytes, seq: bytes, body: dict[str, Any], now: float) -> list[Reply]:
        self._seat_ids += 1
        seat = f"s-{self._seat_ids}".encode()
        tag = (client, _JOIN, seat, seq)
        if body["task"] not in (None, self.task.name):
            return [Reply(seat, tag, GameStatus.BAD_REQUEST, None, {"message": f"No task {body['task']}"},
                          ErrorCode.UNKNOWN_TASK)]
        role = AgentRole.from_string(body["role"])
        name = body["game"] or next((name for name, s in self.sessions.items()
                                     if not s.started and s.free_seats(role) > 0), f"g-{len(self.sessions) + 1}")
        session = self.sessions.get(name)
        if session is None:
            session = self.sessions[name] = GameSession(self.task, seed=self.seed, name=name)
        self.seats[seat] = name
        return self._drained(session, session.join(seat, body["name"], role, now, tag))

    def _drained(self, session: GameSession, replies: list[Reply]) -> list[Reply]:
        for seat in session.released:
            self.seats.pop(seat, None)
        session.released.clear()
        return replies

    def _encode(self, reply: Reply) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        client, command, seat, seq = reply.request
        message = reply.message
        if isinstance(message, dict):
            message = {key: value.as_dict() if isinstance(value, Trajectory) else value
                       for key, value in message.items()}
            if command == _JOIN and reply.status is GameStatus.CREATED:
                message.update(seat=seat.decode(), world=self.world, game=self.seats[seat], task=self.task.name)
        body = encode_reply(reply.status, reply.observation, message, reply.code)
        if self.corrupt_next:
            self.corrupt_next, body = False, b"\xc1 not msgpack"
        return client, command, seat, seq, body

    def _send(self, replies: list[Reply], batch: tuple[bytes, bytes, bytes] | None = None) -> None:
        batched: list[tuple[bytes, bytes, bytes]] = []
        for reply in replies:
            client, command, seat, seq, body = self._encode(reply)
            if batch is not None and client == batch[0] and command == batch[2]:
                batched.append((seat, seq, body))
                continue
            if self.stale_first:
                self._out([client, PROTOCOL_FRAME, command, seat, b"\xff" * 8, body])
            self._out([client, PROTOCOL_FRAME, command, seat, seq, body])
        if batch is not None:
            if self.reverse_batches:
                batched.reverse()
            client, world, inner = batch
            self._out([client, PROTOCOL_FRAME, _BATCH, world, inner, *(f for triple in batched for f in triple)])

    def _out(self, frames: list[bytes]) -> None:
        if self.delay_next:
            self._delayed.append((time.monotonic() + self.delay_next, frames))
            self.delay_next = 0.0
        else:
            self.socket.send_multipart(frames)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def brokers(context: zmq.Context) -> Iterator[Any]:
    """``brokers(task=SINGLE, **options)`` -> a started FakeBroker; all stopped at teardown."""
    made: list[FakeBroker] = []

    def make(task: TaskConfig = SINGLE, **options: Any) -> FakeBroker:
        fake = FakeBroker(context, task, **options).start()
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


@pytest.fixture
def clients() -> Iterator[Any]:
    """Registers clients to terminate at teardown (even when a test fails)."""
    made: list[Any] = []

    def keep(client: Any) -> Any:
        made.append(client)
        return client

    yield keep
    for client in made:
        client.terminate_connection()


def agent_for(fake: FakeBroker, context: zmq.Context, **options: Any) -> BaseAgent:
    options.setdefault("timeout", WAIT)
    return BaseAgent(fake.endpoint, AgentRole.Attacker, context=context, **options)


def wait_until(condition: Any, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def by_seat(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, list[int]]:
    result: dict[bytes, list[int]] = {}
    for seat, seq in pairs:
        result.setdefault(seat, []).append(int_from_seq(seq))
    return result

