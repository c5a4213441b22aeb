"""ParallelBaseAgent's EnvPool-style layer (``send_joins``, ``send_steps``, ``send_resets``,
``collect``, ``quit``): against a running stack (a broker and two world processes,
``bin.stack.Stack``) for what only real games do (held joins and held step replies, seeded
resets, a stopped world), and against :class:`tests.fake_broker.FakeBroker` for the
bookkeeping rules. Every wait is bounded by a client timeout; the stack is stopped at the end."""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from agents.connection import TIMEOUT, RequestFailure
from agents.parallel import ParallelBaseAgent
from agents.utils import generate_valid_actions
from bin.stack import Stack
from protocol import PASS, AgentRole, AgentStatus, ErrorCode, Observation

from .env_samples import DEFAULT, DEFENDED, TINY, short_defender, write_variant
from .fake_broker import WAIT, brokers, clients, context

__all__ = ["brokers", "clients", "context"]  # fixtures, imported for pytest

# A world stopped by one test must not be declared dead meanwhile: 1 s x 3 of silence.
HEARTBEAT = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("tasks")
    # The default task, but a game starts only with both its attacker and its defender.
    duel = write_variant(DEFAULT, directory, "duel_start", **{"arena.start": {"Attacker": 1, "Defender": 1}})
    tasks = [TINY, DEFENDED, short_defender(directory), duel]
    with Stack(tasks=[str(task) for task in tasks], worlds=2, heartbeat=HEARTBEAT) as running:
        yield running


def frontend(stack: Stack) -> str:
    return str(stack.endpoints["frontend"])


def observed(results: dict[int, Any]) -> dict[int, Observation]:
    """``results``, every one an Observation (else the failure is the assertion message)."""
    failures = {env: result for env, result in results.items() if not isinstance(result, Observation)}
    assert failures == {}
    return results


# ---------------------------------------------------------------------- a running stack
def test_per_env_roles_seat_both_sides_of_a_named_game_over_one_socket(stack: Stack) -> None:
    """The duel's game holds the defender's join until the attacker's arrives, then
    answers both: sent without waiting, collected together."""
    envs = ParallelBaseAgent(frontend(stack), [AgentRole.Attacker, AgentRole.Defender], 2, task="duel_start",
                             game="duel", timeout=WAIT)
    try:
        assert envs.roles == [AgentRole.Attacker, AgentRole.Defender] and len(envs.sockets) == 1
        envs.send_joins([1])
        assert envs.collect([1], need=0) == {} and envs.in_flight == [1]  # held: the game has no attacker
        envs.send_joins()                                                 # every env without a seat: env 0
        assert envs.in_flight == [0, 1]
        joined = observed(envs.collect())
        assert sorted(joined) == [0, 1] and envs.in_flight == [] and envs.done_mask == [False, False]
        assert envs.games == ["duel", "duel"] and envs.worlds[0] == envs.worlds[1] and all(envs.connected)
        assert "as AgentRole.Attacker" in joined[0].info["message"]
        assert "as AgentRole.Defender" in joined[1].info["message"]
        # The lock-step calls play the same seats.
        assert all(result is not None and not result.end for result in envs.make_step([PASS, PASS]))
        envs.send_joins([0])
        assert envs.collect() == {0: envs.last_errors[0]} and envs.last_errors[0].code is ErrorCode.ALREADY_JOINED
    finally:
        envs.terminate_connection()
    assert envs.connected == [False, False] and envs.all_done


def test_a_held_step_reply_is_kept_past_the_call_and_collected_later(stack: Stack) -> None:
    """short_defender: the defender's episode ends at its 3rd step, the attacker's at its
    8th. The defender's 3rd reply is held until then: collects for the attacker go on,
    and the reply that the attacker's last step releases is kept for a later collect."""
    envs = ParallelBaseAgent(frontend(stack), [AgentRole.Attacker, AgentRole.Defender], 2, task="short_defender",
                             game="held-step", timeout=WAIT)
    try:
        assert all(envs.register()), envs.last_errors
        held_from = None
        for step in range(1, 9):
            live = [0] if held_from else [0, 1]
            envs.send_steps(dict.fromkeys(live, PASS))
            answers = observed(envs.collect(live, need=1))       # the batch's one reply message
            if step < 8:
                assert 0 in answers and not answers[0].end
            if 1 not in answers and held_from is None:
                held_from = step
            assert envs.in_flight == ([] if held_from is None or step == 8 else [1])
        assert held_from == 3
        assert answers.keys() == {0} and answers[0].end      # the release came with it, not collected yet
        [(env, final)] = observed(envs.collect([1], need=0)).items()  # already read: no waiting
        assert env == 1 and final.end and final.info["end_reason"] == str(AgentStatus.Success)
        assert envs.done_mask == [True, True] and envs.in_flight == []
    finally:
        envs.terminate_connection()


def _episode(envs: ParallelBaseAgent, env: int, start: Observation, steps: int) -> list[tuple[Any, ...]]:
    """``steps`` seeded random valid actions of ``env``, one call each, while every other
    env plays PASS alongside: what each of its steps got."""
    rng = random.Random(7)
    observation, record = start, [(start.state, start.reward, start.end)]
    for _ in range(steps):
        if observation.end:
            break
        action = rng.choice(sorted(generate_valid_actions(observation.state), key=str))
        envs.send_steps({other: action if other == env else PASS for other in range(envs.num_envs)})
        observation = observed(envs.collect())[env]
        record.append((str(action), observation.state, observation.reward, observation.end))
    return record


def test_subset_resets_with_their_own_seeds_reproduce_the_same_episodes(stack: Stack) -> None:
    """Envs 0 and 2 reset with seeds 11 and 12 while 1 and 3 step; swapping the seeds swaps
    the episodes (defended_tiny: a scripted defender draws from the game's generator)."""
    envs = ParallelBaseAgent(frontend(stack), AgentRole.Attacker, 4, task="defended_tiny", timeout=WAIT)
    try:
        assert all(envs.register()), envs.last_errors
        assert len(set(envs.worlds)) == 2, envs.worlds     # batches to both worlds
        records: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
        for seeds in ({0: 11, 2: 12}, {0: 12, 2: 11}):
            envs.send_resets({env: (seed, False) for env, seed in seeds.items()})
            envs.send_steps({1: PASS, 3: PASS})
            answers = observed(envs.collect())
            assert sorted(answers) == [0, 1, 2, 3] and not any(envs.done_mask)
            for env in seeds:
                assert answers[env].info["message"] == "Resetting Game and starting again."
            assert all("message" not in answers[env].info for env in (1, 3))  # steps, not resets
            for env, seed in seeds.items():
                records[env, seed] = _episode(envs, env, answers[env], 6)
        assert records[0, 11] == records[2, 11] and records[0, 12] == records[2, 12]
        assert len(records[0, 11]) > 3
    finally:
        envs.terminate_connection()


class _ResumeAfter(logging.Handler):
    """Sends SIGCONT to a stopped process once the client logged ``resends`` resends."""

    def __init__(self, pid: int, resends: int) -> None:
        super().__init__(logging.DEBUG)
        self.pid, self.resends, self.seen = pid, resends, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "sent again" in record.getMessage():
            self.seen += 1
            if self.seen == self.resends:
                os.kill(self.pid, signal.SIGCONT)


def test_a_resend_after_the_retry_interval_does_not_run_a_step_twice(stack: Stack,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """A step sent to a stopped world is resent (same seq) every retry interval; the world,
    resumed after the 2nd resend, runs it once and answers the copies from its reply cache:
    the episode (max_steps 30) still ends at exactly its 30th step."""
    envs = ParallelBaseAgent(frontend(stack), AgentRole.Attacker, 1, task="two_networks_tiny", timeout=WAIT,
                             retry_interval=0.2)
    names = [world["world"] for world in stack.endpoints["worlds"]]
    try:
        assert all(envs.register()), envs.last_errors
        pid = stack.processes[1 + names.index(envs.worlds[0])].pid
        caplog.set_level(logging.DEBUG, logger=envs.logger.name)
        resume = _ResumeAfter(pid, resends=2)
        envs.logger.addHandler(resume)
        os.kill(pid, signal.SIGSTOP)
        try:
            envs.send_steps({0: PASS})
            [first] = observed(envs.collect()).values()
        finally:
            envs.logger.removeHandler(resume)
            os.kill(pid, signal.SIGCONT)
        assert resume.seen >= 2 and not first.end
        for step in range(2, 31):
            [result] = envs.make_step([PASS])
            assert result is not None and result.end == (step == 30), (step, envs.last_errors)
        assert result.info["end_reason"] == str(AgentStatus.TimeoutReached)
    finally:
        envs.terminate_connection()


# ---------------------------------------------------------------------- the bookkeeping
def test_collect_times_out_only_the_envs_it_waits_for(brokers: Any, context: zmq.Context, clients: Any) -> None:
    silent = brokers(answer=False)
    envs = clients(ParallelBaseAgent(silent.endpoint, "Attacker", 3, timeout=WAIT, context=context))
    envs.send_joins()
    assert envs.in_flight == [0, 1, 2]
    answers = envs.collect([0], timeout=0.1)
    assert list(answers) == [0] and answers[0].code == TIMEOUT and "JOIN of env 0" in answers[0].message
    assert envs.in_flight == [1, 2] and envs.done_mask[0]
    assert envs.collect([1, 2], need=0) == {}              # nothing waiting: no wait, no timeout
    answers = envs.collect(timeout=0.1)
    assert sorted(answers) == [1, 2] and envs.in_flight == [] and envs.collect() == {}


def test_an_env_takes_one_request_at_a_time_and_refusals_are_answers(brokers: Any, context: zmq.Context,
                                                                    clients: Any) -> None:
    fake = brokers()
    envs = clients(ParallelBaseAgent(fake.endpoint, "Attacker", 3, timeout=WAIT, context=context))
    assert all(envs.register())
    envs.send_steps({0: PASS})
    with pytest.raises(ValueError, match=r"envs \[0\] have a request in flight"):
        envs.send_resets({0: (1, False)})
    with pytest.raises(ValueError, match=r"collect\(\) first"):
        envs.make_step([PASS, PASS, PASS])
    with pytest.raises(ValueError, match="distinct indices below 3"):
        envs.send_steps({3: PASS})
    with pytest.raises(ValueError, match="Topology randomization without seed"):
        envs.send_resets({1: (None, True)})
    envs.send_steps({1: None, 2: PASS})  # type: ignore[dict-item]
    answers = envs.collect()
    assert isinstance(answers[0], Observation) and isinstance(answers[2], Observation)
    assert isinstance(answers[1], RequestFailure) and answers[1].code is ErrorCode.MALFORMED
    assert envs.done_mask == [False, True, False] and envs.last_errors[1] is answers[1]
    envs.quit([2])
    assert envs.connected == [True, True, False] and envs.done_mask[2]
    envs.send_resets({2: (None, False)})
    assert envs.collect()[2].code is ErrorCode.NOT_JOINED
    assert envs.register()[2] is not None and envs.connected == [True] * 3   # quit envs join again
    with pytest.raises(ValueError, match=r"role length \(2\) must be 1 \(broadcast\) or match num_envs \(3\)"):
        ParallelBaseAgent(fake.endpoint, ["Attacker", "Defender"], 3, context=context)
