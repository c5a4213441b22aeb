"""ParallelBaseAgent over real ZeroMQ sockets, against :class:`tests.fake_broker.FakeBroker`."""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest
import zmq

from agents.connection import TIMEOUT
from agents.parallel import ParallelBaseAgent
from agents.utils import generate_valid_actions
from protocol import AgentRole, AgentStatus, ErrorCode

from .conftest import WINNING_ATTACK, scan
from .fake_broker import _BATCH, _JOIN, _QUIT, _RESET, _STEP, PAIR, SINGLE, WAIT, brokers, clients, context

__all__ = ["brokers", "clients", "context"]  # fixtures, imported for pytest


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


def test_unanswered_requests_are_sent_again_with_the_same_seq_until_the_timeout(brokers: Any, clients: Any,
                                                                               context: zmq.Context) -> None:
    # Lazy Pirate (zguide ch. 4; DESIGN §7): a reply lost with a broker that restarted must
    # not cost the episode, and the world's reply cache makes the repeat harmless.
    silent = brokers(answer=False)
    envs = clients(ParallelBaseAgent(silent.endpoint, "Attacker", 3, timeout=1.0, retry_interval=0.2,
                                     context=context))
    assert envs.register() == [None] * 3
    sent = Counter(seq for _, seq in silent.requests_of(_JOIN))
    assert len(sent) == 3, "one sequence number per env, repeated, never a new one"
    assert all(count >= 2 for count in sent.values()), sent
    assert [error.code for error in envs.last_errors] == [TIMEOUT] * 3
