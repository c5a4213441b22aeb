"""BaseAgent over real ZeroMQ sockets, against :class:`tests.fake_broker.FakeBroker`.

(ParallelBaseAgent is tested in ``test_agents_parallel.py``.)
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import zmq

from agents.client import BaseAgent
from agents.connection import BAD_REPLY, TIMEOUT, split_reply
from agents.parallel import ParallelBaseAgent
from protocol import PROTOCOL_FRAME, Action, ActionType, AgentRole, AgentStatus, ErrorCode, GameStatus, int_from_seq

from .conftest import WINNING_ATTACK
from .fake_broker import (
    _BATCH,
    _JOIN,
    _QUIT,
    _RESET,
    _STEP,
    PAIR,
    SINGLE,
    WAIT,
    agent_for,
    brokers,
    by_seat,
    clients,
    context,
    wait_until,
)

__all__ = ["brokers", "clients", "context"]  # fixtures, imported for pytest


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



def test_an_unanswered_request_is_sent_again_with_its_seq_and_the_failure_says_how_often(
        brokers: Any, context: zmq.Context) -> None:
    silent = brokers(answer=False)
    agent = agent_for(silent, context, timeout=1.0, retry_interval=0.2)
    try:
        assert agent.register() is None
        seqs = [seq for _, seq in silent.requests_of(_JOIN)]
        assert len(seqs) >= 2 and len(set(seqs)) == 1
        assert agent.last_error is not None and agent.last_error.code == TIMEOUT
        assert f"sent {len(seqs)} times" in agent.last_error.message
    finally:
        agent.terminate_connection()
