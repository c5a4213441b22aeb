"""Environments sharded over two real brokers, each with its own world (README "Speed and
scaling", "How many brokers": ``ParallelBaseAgent`` takes one endpoint per environment and
keeps one socket per broker). tests/test_agents_parallel.py checks the client's side against
a fake broker; here two :class:`bin.stack.Stack` s, and one broker dies under its envs
(README "When things fail": clients give up after their ``timeout``)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from agents import ParallelBaseAgent
from agents.connection import TIMEOUT
from agents.policies import random_attacker
from agents.status import query_status
from bin.stack import Stack
from protocol import AgentRole, Observation

from .arena_processes import SOLO

TASK = "scenario1_small_attacker"
MAX_STEPS = 50  # the task's max_steps: every episode ends within it
#: The agent's timeout: how long envs of a dead broker wait before they fail (seconds).
TIMEOUT_S = 2.0


@contextmanager
def stacks_running(*stacks: Stack) -> Iterator[tuple[Stack, ...]]:
    """Start ``stacks``, wait until their worlds registered; stop them all at the end."""
    with ExitStack() as started:
        for stack in stacks:
            started.enter_context(stack)
        for stack in stacks:
            stack.wait_registered()
        yield stacks


def two_brokers() -> Any:
    """Two stacks, a broker and a world each, serving the one-attacker task."""
    return stacks_running(*(Stack(tasks=[SOLO], worlds=1, heartbeat=0.2) for _ in range(2)))


@pytest.fixture(scope="module")
def brokers() -> Iterator[tuple[Stack, ...]]:
    with two_brokers() as stacks:
        yield stacks


def play_to_the_end(envs: ParallelBaseAgent, observations: list[Observation | None],
                    rng: random.Random) -> list[Observation | None]:
    """Random attacks for every live env until all are done (bounded by the step limit)."""
    last = list(observations)
    for _ in range(MAX_STEPS + 1):
        if envs.all_done:
            break
        actions = [None if done else random_attacker(obs, rng) for obs, done in zip(last, envs.done_mask, strict=True)]
        for env, result in enumerate(envs.make_step(actions)):
            if result is not None:
                last[env] = result
    return last


def split_as_listed(envs: ParallelBaseAgent, stacks: Sequence[Stack]) -> dict[str, Any]:
    """Each broker's STATUS holds exactly the seats and games of the envs listed for it."""
    statuses = {}
    for stack in stacks:
        frontend, world = stack.endpoints["frontend"], stack.endpoints["worlds"][0]["world"]
        mine = [env for env, endpoint in enumerate(envs.endpoints) if endpoint == frontend]
        status = query_status(frontend, timeout=10.0)
        assert status.get("seats") == len(mine), f"{frontend}: {status.get('seats')} seats for envs {mine}"
        assert [envs.worlds[env] for env in mine] == [world] * len(mine), f"envs {mine} not on {world}: {envs.worlds}"
        games = sorted((game["game"], game["world"]) for game in status["games"])
        assert games == sorted((envs.games[env], world) for env in mine), f"{frontend}: {games}"
        statuses[frontend] = status
    return statuses


def test_envs_sharded_over_two_brokers_play_where_listed_and_outlive_the_other_broker(
        brokers: tuple[Stack, Stack]) -> None:
    """Envs 0 and 3 through broker A, 1 and 2 through B: one socket per broker, each env's
    seat and game on its own broker's world, every episode played to its end. Then A is
    killed (SIGKILL) mid-episode: A's envs fail with TIMEOUT naming A after the agent's
    timeout, in the same call in which B's envs get their replies, and B's envs play on."""
    first, second = brokers
    a, b = first.endpoints["frontend"], second.endpoints["frontend"]
    endpoints = [a, b, b, a]
    on_a, on_b = [0, 3], [1, 2]
    envs = ParallelBaseAgent(endpoints, AgentRole.Attacker, 4, task=TASK, timeout=TIMEOUT_S)
    rng = random.Random(3)
    try:
        assert len(envs.sockets) == 2 and envs.endpoints == endpoints
        joined = envs.register()
        assert all(joined), envs.last_errors
        split_as_listed(envs, brokers)
        ended = play_to_the_end(envs, joined, rng)
        assert all(obs is not None and obs.end for obs in ended), ended
        assert envs.last_errors == [None] * 4, envs.last_errors

        observations = envs.request_game_reset()
        assert all(observations), envs.last_errors
        split_as_listed(envs, brokers)  # still there after an episode and a reset
        first.children[0].process.kill()
        first.children[0].process.wait()
        started = time.monotonic()
        results = envs.make_step([random_attacker(obs, rng) for obs in observations])
        waited = time.monotonic() - started
        assert TIMEOUT_S <= waited < TIMEOUT_S + 2.0, f"the step took {waited:.1f} s with a {TIMEOUT_S:g} s timeout"
        assert [results[env] for env in on_a] == [None, None], results
        assert all(results[env] is not None for env in on_b), envs.last_errors
        for env in on_a:
            error = envs.last_errors[env]
            assert error is not None and error.code == TIMEOUT and a in error.message, error
            assert b not in error.message, error
        assert [envs.last_errors[env] for env in on_b] == [None, None]
        assert [envs.done_mask[env] for env in on_a] == [True, True], "a failed env is done"

        for env in on_b:
            observations[env] = results[env]
        ended = play_to_the_end(envs, observations, rng)
        assert all(ended[env] is not None and ended[env].end for env in on_b), ended  # type: ignore[union-attr]
        assert [envs.last_errors[env] for env in on_b] == [None, None], envs.last_errors
        status = query_status(b, timeout=10.0)
        assert status.get("seats") == 2, f"B lost seats when A died: {status}"
    finally:
        envs.timeout = 0.5  # A's seats cannot be quit: do not wait the whole timeout for it
        envs.terminate_connection()
