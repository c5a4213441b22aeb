"""BaseAgent and ParallelBaseAgent over real ZeroMQ sockets.

The clients talk to :class:`FakeBroker`: a ROUTER bound on a free loopback port, served
by a thread that hosts real ``world.GameSession`` games and answers per PROTOCOL.md
(single and batch requests, batch replies, held replies released later). It stands in
for the broker + world pair; only the transport between them is left out. It can also
misbehave on request: stay silent, corrupt a reply, send a stale reply first, delay a
reply, forget a seat, reverse the order of a batch reply.
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import yaml
import zmq

from agents.client import BaseAgent
from agents.connection import BAD_REPLY, TIMEOUT, split_reply
from agents.parallel import ParallelBaseAgent
from agents.utils import generate_valid_actions
from protocol import (
    PROTOCOL_FRAME,
    Action,
    ActionType,
    AgentRole,
    AgentStatus,
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

from .conftest import TASKS, WINNING_ATTACK, scan

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


# ---------------------------------------------------------------------- BaseAgent
def test_base_agent_plays_the_winning_attack(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    agent = clients(agent_for(fake, context, task=SINGLE.name, name="red"))
    assert agent.role is AgentRole.Attacker and agent.seat is None and agent.socket is not None
    start = agent.register()
    assert start is not None and start.reward == 0 and start.end is False
    assert start.info["seat"] == agent.seat and agent.seat is not None
    assert (agent.world, agent.game, agent.task) == ("w-1", start.info["game"], SINGLE.name)
    assert start.info["max_steps"] == 50 and "Welcome red" in start.info["message"]

    rewards = []
    for action in WINNING_ATTACK:
        observation = agent.make_step(action)
        assert observation is not None and agent.last_error is None
        rewards.append(observation.reward)
    assert rewards == [-1, -1, -1, -1, 99]
    assert observation.end and observation.info["end_reason"] == str(AgentStatus.Success)

    # After the end: FORBIDDEN still gives an Observation (as upstream); last_error says why.
    again = agent.make_step(WINNING_ATTACK[0])
    assert again is not None and again.end
    assert agent.last_error is not None and agent.last_error.status is GameStatus.FORBIDDEN
    assert agent.last_error.code is ErrorCode.EPISODE_ENDED

    reset = agent.request_game_reset(request_trajectory=True, seed=7)
    assert reset is not None and agent.last_error is None
    assert reset.state == start.state and reset.reward == 0 and not reset.end
    assert reset.info["message"] == "Resetting Game and starting again."
    assert len(reset.info["last_trajectory"]["trajectory"]["actions"]) == 5
    assert agent.make_step(WINNING_ATTACK[0]) is not None

    seat = agent.seat.encode()
    agent.terminate_connection()
    assert agent.socket is None and agent.seat is None
    agent.terminate_connection()  # idempotent
    assert [pair[0] for pair in fake.requests_of(_QUIT)] == [seat]
    # Sequence numbers: 8 bytes, one counter per seat, continuing after the JOIN's.
    seqs = by_seat(fake.requests_of(_STEP) + fake.requests_of(_RESET) + fake.requests_of(_QUIT))
    join_seq = int_from_seq(fake.requests_of(_JOIN)[0][1])
    assert sorted(seqs[seat]) == list(range(join_seq + 1, join_seq + 1 + len(seqs[seat])))
    assert all(len(seq) == 8 for _, seq in fake.requests_of(_STEP))


def test_context_manager_quits_its_seat(brokers: Any, context: zmq.Context) -> None:
    fake = brokers()
    with agent_for(fake, context) as agent:
        assert agent.register() is not None
        seat = agent.seat
    assert agent.socket is None
    assert [pair[0] for pair in fake.requests_of(_QUIT)] == [seat.encode()]
    assert fake.seats == {}


def test_failures_return_none_with_last_error(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    agent = clients(agent_for(fake, context))
    assert agent.make_step(WINNING_ATTACK[0]) is None  # no seat yet: nothing is sent
    assert agent.last_error.code is ErrorCode.NOT_JOINED
    assert agent.request_game_reset() is None and agent.last_error.code is ErrorCode.NOT_JOINED
    assert fake.seen == []
    with pytest.raises(ValueError, match="Incorrect data type"):
        agent.make_step("ScanNetwork")  # type: ignore[arg-type]

    wrong_task = clients(agent_for(fake, context, task="nope"))
    assert wrong_task.register() is None
    assert wrong_task.last_error.status is GameStatus.BAD_REQUEST
    assert wrong_task.last_error.code is ErrorCode.UNKNOWN_TASK

    assert agent.register() is not None
    assert agent.register() is None and agent.last_error.code is ErrorCode.ALREADY_JOINED
    reset = Action(ActionType.ResetGame, {"request_trajectory": False, "randomize_topology": False, "seed": None})
    assert agent.make_step(reset) is None and agent.last_error.code is ErrorCode.MALFORMED
    incomplete = Action(ActionType.ScanNetwork, {})
    assert agent.make_step(incomplete) is None and agent.last_error.code is ErrorCode.MALFORMED
    assert "source_host" in agent.last_error.message
    assert agent.make_step(WINNING_ATTACK[0]) is not None and agent.last_error is None


def test_unknown_seat_and_malformed_replies(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    agent = clients(agent_for(fake, context))
    assert agent.register() is not None

    with fake.lock:
        fake.corrupt_next = True
    assert agent.make_step(WINNING_ATTACK[0]) is None
    assert agent.last_error.code == BAD_REPLY and agent.last_error.status is None
    assert "undecodable reply" in agent.last_error.message

    fake.forget(agent.seat)
    assert agent.make_step(WINNING_ATTACK[0]) is None
    assert agent.last_error.status is GameStatus.BAD_REQUEST and agent.last_error.code is ErrorCode.UNKNOWN_SEAT
    assert "Unknown seat" in str(agent.last_error)
    # The seat is gone: the agent forgets it and may register again.
    assert agent.seat is None
    assert agent.register() is not None and agent.seat == "s-2"
    assert agent.make_step(WINNING_ATTACK[0]) is not None


def test_stale_and_late_replies_are_discarded(brokers: Any, context: zmq.Context, clients: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="BaseAgent")
    fake = brokers(stale_first=True)
    agent = clients(agent_for(fake, context))
    assert agent.register() is not None
    assert agent.make_step(WINNING_ATTACK[0]) is not None and agent.last_error is None
    assert agent._connection.discarded >= 1
    assert "stale reply discarded" in caplog.text

    # A reply that arrives after its request timed out is discarded later, not taken
    # as the answer to the next request.
    with fake.lock:
        fake.stale_first = False
        fake.delay_next = 0.5
    agent.timeout = 0.1
    assert agent.make_step(WINNING_ATTACK[1]) is None and agent.last_error.code == TIMEOUT
    wait_until(lambda: fake.sent_delayed)  # the late reply is on its way, ahead of the next one
    agent.timeout = WAIT
    discarded = agent._connection.discarded
    observation = agent.make_step(WINNING_ATTACK[2])
    assert observation is not None and agent._connection.discarded == discarded + 1
    assert observation.state.known_services  # the exploit's own reply, after FindServices ran


def test_timeout_when_nobody_answers(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers(answer=False)
    agent = clients(agent_for(fake, context, timeout=0.2))
    started = time.monotonic()
    assert agent.register() is None
    assert time.monotonic() - started < 2.0
    assert agent.last_error.code == TIMEOUT and agent.last_error.status is None
    assert "no reply within 0.2 s" in agent.last_error.message
    assert len(fake.requests_of(_JOIN)) == 1


def test_an_unattributed_broker_error_fails_the_requests_at_once(brokers: Any, context: zmq.Context,
                                                                 clients: Any) -> None:
    fake = brokers(refuse=True)
    agent = clients(agent_for(fake, context))
    started = time.monotonic()
    assert agent.register() is None
    assert agent.last_error.code is ErrorCode.BAD_VERSION and "version 1" in agent.last_error.message
    envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 3, timeout=WAIT, context=context))
    assert envs.register() == [None] * 3
    assert [error.code for error in envs.last_errors] == [ErrorCode.BAD_VERSION] * 3
    assert time.monotonic() - started < WAIT / 2


def test_held_join_waits_and_is_bounded(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers(PAIR)
    first = clients(agent_for(fake, context, game="duel", timeout=0.2))
    assert first.register() is None and first.last_error.code == TIMEOUT  # held: the game needs two
    second = clients(agent_for(fake, context, game="duel2"))
    third = clients(agent_for(fake, context, game="duel2"))
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(second.register()))
    waiter.start()
    time.sleep(0.1)
    assert results == []  # still held
    assert third.register() is not None
    waiter.join(timeout=WAIT)
    assert not waiter.is_alive() and results[0] is not None
    assert second.game == third.game == "duel2"


def test_topology_randomization_needs_a_seed(context: zmq.Context) -> None:
    agent = BaseAgent("tcp://127.0.0.1:1", "attacker", context=context, timeout=0.1)
    envs = ParallelBaseAgent("tcp://127.0.0.1:1", "attacker", 2, context=context, timeout=0.1)
    try:
        for client in (agent, envs):
            with pytest.raises(ValueError, match=r"^Topology randomization without seed is not supported\.$"):
                client.request_game_reset(randomize_topology=True)
    finally:
        agent.terminate_connection()
        envs.terminate_connection()


def test_split_reply() -> None:
    assert split_reply([b"ARENA2", b"\x02", b"s", b"q", b"b"]) is None
    assert split_reply([PROTOCOL_FRAME, b"\x02", b"s", b"q"]) is None
    assert split_reply([PROTOCOL_FRAME, _BATCH, b"w-1", _STEP]) == []
    # A broker error about a batch it could not parse: five frames, answered as one reply.
    assert split_reply([PROTOCOL_FRAME, _BATCH, b"", b"", b"x"]) == [(_BATCH, b"", b"", b"x")]


# ---------------------------------------------------------------------- ParallelBaseAgent
def test_parallel_skips_done_envs(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    num = 32
    envs = clients(ParallelBaseAgent(fake.endpoint, AgentRole.Attacker, num, task=SINGLE.name, timeout=WAIT,
                                     context=context))
    assert envs.num_envs == num and len(envs.sockets) == 1
    assert envs.connected == [False] * num
    starts = envs.register()
    assert all(obs is not None for obs in starts) and envs.last_errors == [None] * num
    assert envs.connected == [True] * num and envs.done_mask == [False] * num and not envs.all_done
    assert len(set(envs.seats)) == num and set(envs.worlds) == {"w-1"}
    assert len(fake.messages(_JOIN)) == num

    # Env i scans i % 4 times before the winning attack: episodes end at different steps.
    plans = [[WINNING_ATTACK[0]] * (i % 4) + WINNING_ATTACK for i in range(num)]
    finals: list[Any] = [None] * num
    round_ = 0
    while not envs.all_done:
        before = envs.done_mask
        # Done envs get a placeholder action, as upstream's reference user sends: never sent.
        actions = [plan[round_] if round_ < len(plan) else WINNING_ATTACK[0] for plan in plans]
        messages_before = len(fake.seen)
        results = envs.make_step(actions)
        assert len(fake.seen) == messages_before + 1  # one batch per round: one world
        for i, result in enumerate(results):
            assert (result is None) == before[i]
            if result is not None and result.end:
                finals[i] = result
        assert envs.done_mask == [before[i] or results[i].end for i in range(num)]
        mask = envs.done_mask
        mask[0] = not mask[0]
        assert envs.done_mask != mask  # a copy
        round_ += 1
    assert round_ == 8
    assert all(final.reward == 99 and final.info["end_reason"] == str(AgentStatus.Success) for final in finals)
    steps = Counter(seat for seat, _ in fake.requests_of(_STEP))
    assert [steps[seat.encode()] for seat in envs.seats] == [len(plan) for plan in plans]
    assert fake.messages(_STEP) == [] and len(fake.messages(_BATCH)) == 8

    resets = envs.request_game_reset(seed=5)
    assert [obs.state for obs in resets] == [obs.state for obs in starts]
    assert all(obs.info["message"] == "Resetting Game and starting again." for obs in resets)
    assert envs.done_mask == [False] * num and not envs.all_done
    assert fake.messages(_BATCH)[-1].inner == _RESET and len(fake.messages(_BATCH)[-1].requests) == num

    seats = envs.seats
    envs.terminate_connection()
    assert sorted(seat for seat, _ in fake.requests_of(_QUIT)) == sorted(seat.encode() for seat in seats)
    assert envs.connected == [False] * num and envs.sockets == [None] and envs.all_done
    envs.terminate_connection()  # idempotent
    assert fake.seats == {}


def random_play(envs: ParallelBaseAgent, seed: int, rounds: int) -> list[Any]:
    """Random valid actions (upstream's reference user), one rng per env; every result."""
    rngs = [random.Random(seed * 100 + i) for i in range(envs.num_envs)]
    record: list[Any] = []
    observations = envs.register()
    record.append(observations)
    for episode in range(2):
        if episode:
            observations = envs.request_game_reset(seed=episode)
            record.append(observations)
        for _ in range(rounds):
            if envs.all_done:
                break
            actions = [None if done else rngs[i].choice(sorted(generate_valid_actions(observations[i].state),
                                                               key=str))
                       for i, done in enumerate(envs.done_mask)]
            results = envs.make_step(actions)
            record.append(results)
            observations = [new if new is not None else old for new, old in zip(results, observations, strict=True)]
    return record


def test_batched_and_unbatched_give_the_same_observations(brokers: Any, context: zmq.Context,
                                                          clients: Any) -> None:
    records = {}
    fakes = {}
    for batched in (True, False):
        fake = fakes[batched] = brokers(seed=11)
        envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 8, batched=batched, timeout=WAIT,
                                         context=context))
        records[batched] = random_play(envs, seed=3, rounds=60)
        assert all(error is None for error in envs.last_errors)
    assert records[True] == records[False]
    assert len(records[True]) > 20
    assert any(obs is not None and obs.end for results in records[True] for obs in results)
    assert fakes[True].messages(_STEP) == [] and fakes[True].messages(_BATCH)
    assert fakes[False].messages(_BATCH) == [] and fakes[False].messages(_STEP)
    steps = len(fakes[True].requests_of(_STEP))
    assert steps == len(fakes[False].requests_of(_STEP)) and steps > 8


@pytest.mark.parametrize("batched", [True, False])
def test_held_replies_and_batch_replies_in_any_order(brokers: Any, context: zmq.Context, clients: Any,
                                                     batched: bool) -> None:
    fake = brokers(PAIR, reverse_batches=True)
    envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 4, game=["a", "a", "b", "b"], batched=batched,
                                     timeout=WAIT, context=context))
    starts = envs.register()  # each game's first join is held until its second arrives
    assert all(starts) and envs.games == ["a", "a", "b", "b"]
    scans = [scan("192.168.2.2", "192.168.1.0/24"), scan("192.168.2.2", "192.168.2.0/24")] * 2
    results = envs.make_step(scans)
    networks = [{str(n) for n in obs.state.known_hosts} for obs in results]
    assert networks[0] == networks[2] != networks[1] == networks[3]  # each env got its own reply
    # Resets: each game holds its first seat's reset until the second asks, then answers
    # both in the (reversed) batch reply.
    # The first seat of a game to end its episode is held until the second ends too; the
    # held reply comes with the second's (in one batch reply, or on its own).
    for action in WINNING_ATTACK:
        results = envs.make_step([action] * 4)
    assert [obs.reward for obs in results] == [99] * 4 and envs.all_done
    # Resets: each game holds its first seat's reset until the second asks.
    resets = envs.request_game_reset(seed=9)
    assert all(obs is not None and obs.state == start.state for obs, start in zip(resets, starts, strict=True))
    assert envs.done_mask == [False] * 4
    if batched:
        assert fake.messages(_STEP) == [] and fake.messages(_RESET) == []
        assert [len(seen.requests) for seen in fake.messages(_BATCH)] == [4] * 7


def test_sharding_across_two_brokers(brokers: Any, context: zmq.Context, clients: Any) -> None:
    first, second = brokers(world="w-1"), brokers(world="w-2")
    with pytest.raises(ValueError, match=r"endpoints length \(3\) must be 1 \(broadcast\) or match num_envs \(4\)"):
        ParallelBaseAgent([first.endpoint] * 3, "Attacker", 4, context=context)
    endpoints = [first.endpoint, second.endpoint] * 2
    envs = clients(ParallelBaseAgent(endpoints, "Attacker", 4, timeout=WAIT, context=context))
    assert len(envs.sockets) == 2 and envs.endpoints == endpoints
    assert all(envs.register())
    assert envs.worlds == ["w-1", "w-2", "w-1", "w-2"]
    assert envs.seats == ["s-1", "s-1", "s-2", "s-2"]  # the same seat ids on both brokers
    for action in WINNING_ATTACK:
        results = envs.make_step([action] * 4)
    assert [obs.reward for obs in results] == [99] * 4 and envs.all_done
    for fake in (first, second):
        assert len(fake.messages(_JOIN)) == 2 and len(fake.requests_of(_STEP)) == 10
    envs.terminate_connection()
    assert len(first.requests_of(_QUIT)) == len(second.requests_of(_QUIT)) == 2


def test_wrong_action_count_raises(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 4, timeout=WAIT, context=context))
    assert all(envs.register())
    with pytest.raises(ValueError, match=r"^Expected 4 actions, got 3$"):
        envs.make_step(WINNING_ATTACK[:3])
    with pytest.raises(ValueError, match=r"^Expected 4 actions, got one Action"):
        envs.make_step(WINNING_ATTACK[0])  # type: ignore[arg-type]
    assert fake.requests_of(_STEP) == []
    # A live env given no action fails (and becomes done), as upstream; the others play.
    results = envs.make_step([WINNING_ATTACK[0], None, WINNING_ATTACK[0], WINNING_ATTACK[0]])
    assert results[1] is None and results[0] is not None
    assert envs.done_mask == [False, True, False, False]
    assert envs.last_errors[1].code is ErrorCode.MALFORMED


def test_parallel_per_env_errors_and_timeouts(brokers: Any, context: zmq.Context, clients: Any) -> None:
    fake = brokers()
    envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 3, timeout=WAIT, context=context))
    assert all(envs.register())
    fake.forget(envs.seats[1])
    results = envs.make_step([WINNING_ATTACK[0]] * 3)
    assert results[1] is None and results[0] is not None and results[2] is not None
    assert envs.last_errors[1].code is ErrorCode.UNKNOWN_SEAT and envs.last_error is envs.last_errors[1]
    assert envs.done_mask == [False, True, False] and envs.connected == [True, False, True]
    resets = envs.request_game_reset()
    assert resets[1] is None and envs.done_mask == [False, True, False]
    assert envs.last_errors[1].code is ErrorCode.NOT_JOINED
    # Lost envs join again; seated ones answer ALREADY_JOINED; a reset brings all back.
    again = envs.register()
    assert again[1] is not None and again[0] is None and envs.connected == [True] * 3
    assert envs.last_errors[0].code is ErrorCode.ALREADY_JOINED
    assert all(envs.request_game_reset()) and envs.done_mask == [False] * 3

    silent = brokers(answer=False)
    mute = clients(ParallelBaseAgent(silent.endpoint, "Attacker", 3, timeout=0.2, context=context))
    started = time.monotonic()
    assert mute.register() == [None] * 3
    assert time.monotonic() - started < 2.0
    assert [error.code for error in mute.last_errors] == [TIMEOUT] * 3
    assert mute.done_mask == [True] * 3 and mute.all_done and mute.connected == [False] * 3
    assert mute.make_step([WINNING_ATTACK[0]] * 3) == [None] * 3  # all done: nothing sent
    assert len(silent.seen) == 3
