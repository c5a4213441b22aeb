"""Process plumbing for the fuzz tests (tests/test_fuzz_processes.py).

* :func:`children_stderr_to` sends the stderr of the processes a :class:`~bin.stack.Stack`
  starts to a file (thousands of warnings stay out of pytest's output, and the file is
  searched for tracebacks); :class:`LogWatch` reads what a log gained since the last look.
* :class:`Reference` is an in-process copy of one game (same task, seed and name): a real
  world must answer a seat's requests exactly as it does, so "the fuzz changed nothing"
  is checked step by step to the end of the episode, not guessed from a reply code.
  A :class:`Victim` is a normal agent whose game is checked that way.
* :class:`Arena` is the stack under fuzz with its log and victims; :func:`exchange`
  sends frontend messages and checks each reply, in order, against what it is owed
  (:func:`receive_unordered` where a world answers some later than the broker others).

A world under fuzz (the test as its broker) and the gateway's TCP runner and checks are
in :mod:`tests.fuzz_peer_harness`. Every wait is bounded; every socket and process is
closed by the caller's fixtures.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import zmq

from agents import BaseAgent
from agents.policies import random_attacker
from agents.status import query_status
from bin.stack import Stack
from protocol import (
    PROTOCOL_FRAME,
    Action,
    AgentRole,
    GameStatus,
    Observation,
    ReplyBody,
    action_to_compact,
    decode_reply,
    pack,
    seq_bytes,
)
from world import load_task
from world.game_host import GameHost

from .fuzz_strategies import (
    BATCH,
    JOIN,
    OK,
    REQUEST,
    RESET,
    STEP,
    Expect,
)

ROOT = Path(__file__).resolve().parents[1]
SOLO = ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml"
TASK = "scenario1_small_attacker"
WAIT = 20.0  # seconds: the bound of anything that should take milliseconds
#: Hostile messages (ZeroMQ messages, or requests on a TCP connection) sent, per target.
SENT: Counter[str] = Counter()
#: The answers they got, per target and error code (to see what the fuzz reached).
OUTCOMES: Counter[str] = Counter()


def short(value: Any, limit: int = 300) -> str:
    """A repr that fits in an assertion message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def children_stderr_to(path: Path) -> Iterator[None]:
    """Point file descriptor 2 at ``path`` while children are started (they inherit it)."""
    with path.open("ab") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LogWatch:
    """What a log file gained since the last :meth:`new` (processes append to it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")


def tracebacks(text: str, context: int = 25) -> list[str]:
    """Each traceback in a log text with the log line before it (who logged it)."""
    lines = text.splitlines()
    return ["\n".join(lines[max(0, i - 1):i + context]) for i, line in enumerate(lines) if line.startswith("Traceback")]


def assert_no_tracebacks(watch: LogWatch, what: str) -> None:
    found = tracebacks(watch.new())
    assert not found, f"{what} logged {len(found)} tracebacks, the first:\n" + "\n---\n".join(found[:3])


def same(observation: Observation | None, expected: ReplyBody) -> bool:
    """Equal game state, reward and end (the info may differ: ids, names)."""
    other = expected.observation
    if observation is None or other is None:
        return False
    return (observation.state, observation.reward, observation.end) == (other.state, other.reward, other.end)


class Reference:
    """An in-process copy of one game: same task, seed and game name as on the real world."""

    def __init__(self, game: str, seed: int = 42) -> None:
        self.game = game
        self.host = GameHost({TASK: load_task(SOLO)}, "w-reference", seed=seed)
        self.seq = 0
        self.now = 0.0

    def call(self, command: bytes, body: bytes) -> ReplyBody:
        self.seq += 1
        self.now += 0.001
        out = self.host.request([PROTOCOL_FRAME, REQUEST, b"reference", command, b"seat", seq_bytes(self.seq), body],
                                self.now)
        [reply] = [frames for frames in out if frames[4] == b"seat"]
        return decode_reply(reply[6])

    def join(self) -> ReplyBody:
        return self.call(JOIN, pack({"task": TASK, "role": "Attacker", "game": self.game, "name": "watched"}))

    def step(self, action: Action) -> ReplyBody:
        return self.call(STEP, pack(action_to_compact(action)))


def play_lock_step(step: Callable[[Action], Observation | None], reference: Reference, observation: Observation,
                   rng: Any, steps: int | None = None) -> tuple[Observation, int]:
    """Random valid actions on the real game and the reference alike, each observation
    compared; ``steps`` of them, or to the end of the episode (max_steps bounds it)."""
    for played in range(steps or 200):
        action = random_attacker(observation, rng)
        assert action is not None, "no valid action"
        got, expected = step(action), reference.step(action)
        assert same(got, expected), f"step {played + 1}: {got} != {expected}"
        assert got is not None
        observation = got
        if steps is None and got.end:
            return observation, played + 1
    assert steps is not None, "the episode did not end"
    return observation, steps


class Victim:
    """A normal agent in a named game, playing before the fuzz starts: the fuzz must not
    change its game by one step (checked against a :class:`Reference`)."""

    def __init__(self, frontend: str, game: str) -> None:
        self.game = game
        self.agent = BaseAgent(frontend, AgentRole.Attacker, task=TASK, game=game, name=game, timeout=WAIT)
        self.reference = Reference(game)
        self.rng = random.Random(game)
        observation = self.agent.register()
        assert same(observation, self.reference.join()), self.agent.last_error
        assert observation is not None
        self.observation = observation
        self.play(1)

    @property
    def seat(self) -> bytes:
        assert self.agent.seat is not None
        return self.agent.seat.encode()

    def play(self, steps: int | None = None) -> tuple[Observation, int]:
        """``steps`` more steps (None: to the end of the episode), each as the reference plays it."""
        self.observation, played = play_lock_step(self.agent.make_step, self.reference, self.observation, self.rng,
                                                  steps)
        return self.observation, played


@attrs.define
class Arena:
    """The stack under fuzz, its log, the victims and a ZeroMQ context for the test's sockets."""

    stack: Stack
    log: Path
    victims: list[Victim]
    context: zmq.Context

    @property
    def frontend(self) -> str:
        return self.stack.endpoints["frontend"]

    def dealer(self, endpoint: str | None = None, identity: bytes | None = None) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        if identity is not None:
            sock.setsockopt(zmq.ROUTING_ID, identity)
        sock.connect(endpoint or self.frontend)
        return sock

    def assert_alive(self) -> None:
        dead = [(" ".join(map(str, p.args[3:5])), p.returncode) for p in self.stack.processes if p.poll() is not None]
        assert not dead, f"processes exited: {dead}"

    def status_until(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The broker's STATUS once ``condition`` holds for it (or the last one, after WAIT)."""
        deadline = time.monotonic() + WAIT
        while True:
            status = query_status(self.frontend, timeout=WAIT)
            if condition(status) or time.monotonic() > deadline:
                return status
            time.sleep(0.05)  # another process's state: nothing to wait on but a query


# ---------------------------------------------------------------------------- the broker frontend
Pending = list[deque[tuple[list[bytes], Expect]]]


def check_frontend_reply(parts: list[bytes], expect: Expect, frames: list[bytes]) -> None:
    what = f"{short(parts)} answered {short(frames)}"
    assert len(frames) == 5 and frames[0] == PROTOCOL_FRAME and frames[1] == expect.command, what
    assert expect.seat is None or frames[2] == expect.seat, f"{what}: seat not echoed"
    assert expect.seq is None or frames[3] == expect.seq, f"{what}: seq not echoed"
    reply = decode_reply(frames[4])
    outcome = OK if reply.status is GameStatus.OK and reply.code is None else str(reply.code)
    OUTCOMES[f"frontend {outcome}"] += 1
    assert reply.status in (GameStatus.OK, GameStatus.BAD_REQUEST) and outcome in expect.outcomes, \
        f"{what}: {outcome}, expected one of {sorted(expect.outcomes)} ({reply.message})"


def send_batch(sockets: list[zmq.Socket], batch: list[tuple[int, list[bytes], list[Expect]]]) -> Pending:
    """Send each message on its socket; the replies owed, per socket, in order."""
    for sock in sockets:
        assert not sock.poll(0), f"a reply nobody asked for: {short(sock.recv_multipart())}"
    pending: Pending = [deque() for _ in sockets]
    for index, parts, expects in batch:
        sockets[index].send_multipart(parts)
        SENT["frontend"] += 1
        pending[index].extend((parts, expect) for expect in expects)
    return pending


def receive_replies(sockets: list[zmq.Socket], pending: Pending, timeout: float = WAIT) -> None:
    """Every reply owed must come, in order, as expected (and none besides)."""
    poller = zmq.Poller()
    for sock in sockets:
        poller.register(sock, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    while any(pending) and time.monotonic() < deadline:
        for sock, _ in poller.poll(50):
            index = sockets.index(sock)
            while sock.poll(0):
                frames = sock.recv_multipart()
                assert pending[index], f"a reply nobody asked for: {short(frames)}"
                parts, expect = pending[index].popleft()
                check_frontend_reply(parts, expect, frames)
    missing = [item for queue in pending for item in queue]
    assert not missing, f"{len(missing)} replies missing, the first for {short(missing[0][0])}"


def exchange(sockets: list[zmq.Socket], batch: list[tuple[int, list[bytes], list[Expect]]],
             timeout: float = WAIT) -> None:
    receive_replies(sockets, send_batch(sockets, batch), timeout)


def split_reply(frames: list[bytes]) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """(command, seat, seq, body) of each reply in a message: one, or a batch's."""
    if len(frames) == 5 and frames[0] == PROTOCOL_FRAME:
        return [(frames[1], frames[2], frames[3], frames[4])]
    assert len(frames) >= 7 and frames[:2] == [PROTOCOL_FRAME, BATCH] and (len(frames) - 4) % 3 == 0, \
        f"not a reply: {short(frames)}"
    return [(frames[3], frames[i], frames[i + 1], frames[i + 2]) for i in range(4, len(frames), 3)]


def _fits(expect: Expect, command: bytes, outcome: str) -> bool:
    return outcome in expect.outcomes and (expect.command == command or
                                           (expect.command == b"" and command in (STEP, RESET)))


def receive_unordered(sock: zmq.Socket, owed: list[tuple[list[bytes], Expect]], timeout: float = WAIT) -> None:
    """Replies that come in any order (a world answers later than the broker does): each
    must match one request owed, by (seat, seq) where it echoes them, and its outcome."""
    pending = list(owed)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        if not sock.poll(50):
            continue
        for command, seat, seq, body in split_reply(sock.recv_multipart()):
            reply = decode_reply(body)
            outcome = OK if reply.status is GameStatus.OK and reply.code is None else str(reply.code)
            OUTCOMES[f"owner {outcome}"] += 1
            exact = [i for i, (_, e) in enumerate(pending)
                     if (e.seat, e.seq) == (seat, seq) and _fits(e, command, outcome)]
            loose = [i for i, (_, e) in enumerate(pending) if e.seat is None and _fits(e, command, outcome)]
            assert exact or loose, f"a reply {command!r} {seat!r} {seq!r} {outcome} ({reply.message}) matches no " \
                                   f"request owed: {short([(short(p, 80), e) for p, e in pending], 1500)}"
            del pending[(exact or loose)[0]]
    assert not pending, f"{len(pending)} replies missing: {short(pending, 1500)}"


def collect(sock: zmq.Socket, wanted: int, timeout: float) -> list[list[bytes]]:
    """``wanted`` messages within ``timeout`` (fewer if they do not come), and any already there besides."""
    got: list[list[bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < wanted and time.monotonic() < deadline:
        if sock.poll(50):
            got.append(sock.recv_multipart())
    while sock.poll(0):
        got.append(sock.recv_multipart())
    return got
