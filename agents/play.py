"""Episode loops: a policy playing through a client, one env or many.

``play_episodes`` drives a :class:`~agents.client.BaseAgent` lock-step;
``play_parallel`` drives a :class:`~agents.parallel.ParallelBaseAgent` in **rounds**:
every env plays one episode per round, every live env steps at once, and the envs
reset together once all are done. Both report each finished episode as an
:class:`EpisodeOutcome`, which ``arena play`` and ``arena demo`` summarise.

Counting in rounds keeps the sample fair: stopping at the first N episodes to finish
would favour short ones (a kill-chain attacker's quick wins over its long timeouts).
So ``play_parallel`` plays ``ceil(episodes / num_envs)`` rounds and reports every
episode of them (:func:`rounds_for`).

A game whose world died answers GAME_LOST; with ``rejoin`` the loops join again (the
broker places the seat on a live world, waiting up to the client's timeout for one) and
go on, the lost episode not counted (``on_game_lost`` hears of it). Other failures
raise :class:`PlayError` (:class:`GameLostError` without ``rejoin``), with the client's
reason.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from protocol import AgentRole, AgentStatus, ArenaError, ErrorCode, Observation

from .policies import Policy

__all__ = ["MAX_REJOINS", "EpisodeOutcome", "GameLostError", "PlayError", "Summary", "play_episodes", "play_parallel",
           "rounds_for"]

#: Game losses in a row (no episode finished in between) after which a loop gives up.
MAX_REJOINS = 10
#: Seconds between joins while no world can take a new game (NO_WORLD), e.g. during a restart.
_REJOIN_PAUSE = 0.5


class PlayError(ArenaError):
    """A request of the loop failed: ``failure`` is the client's ``last_error`` (or None)."""

    def __init__(self, message: str, failure: Any = None) -> None:
        super().__init__(message)
        self.failure = failure


class GameLostError(PlayError):
    """The world hosting the game is gone (GAME_LOST)."""


@attrs.frozen
class EpisodeOutcome:
    env: int
    episode: int
    episode_return: float
    steps: int
    end_reason: str | None
    attacker: bool = True

    @property
    def won(self) -> bool:
        return self.end_reason == str(AgentStatus.Success)

    @property
    def detected(self) -> bool:
        """An attacker that failed was detected; a defender fails when the attack succeeds."""
        return self.attacker and self.end_reason == str(AgentStatus.Fail)

    @property
    def lost(self) -> bool:
        return not self.attacker and self.end_reason == str(AgentStatus.Fail)

    @property
    def timed_out(self) -> bool:
        return self.end_reason == str(AgentStatus.TimeoutReached)


@attrs.define
class Summary:
    """Running figures over episodes: what ``arena play --json`` prints. ``game_lost``
    counts the episodes cut short by a world's death (not in ``episodes``); ``partial``
    says why the run stopped before it played what it was asked to (None: it did not)."""

    started: float = attrs.Factory(time.perf_counter)
    episodes: int = 0
    wins: int = 0
    detections: int = 0
    losses: int = 0
    timeouts: int = 0
    total_return: float = 0.0
    steps: int = 0
    game_lost: int = 0
    partial: str | None = None

    def add(self, outcome: EpisodeOutcome) -> None:
        self.episodes += 1
        self.wins += outcome.won
        self.detections += outcome.detected
        self.losses += outcome.lost
        self.timeouts += outcome.timed_out
        self.total_return += outcome.episode_return
        self.steps += outcome.steps

    def as_dict(self) -> dict[str, Any]:
        seconds = time.perf_counter() - self.started
        figures: dict[str, Any] = {
            "episodes": self.episodes,
            "wins": self.wins,
            "detections": self.detections,
            "losses": self.losses,
            "timeouts": self.timeouts,
            "mean_return": self.total_return / self.episodes if self.episodes else 0.0,
            "steps": self.steps,
            "steps_per_second": self.steps / seconds if seconds > 0 else 0.0,
            "game_lost": self.game_lost,
            "partial": self.partial is not None,
        }
        if self.partial is not None:
            figures["reason"] = self.partial
        return figures


def rounds_for(episodes: int, num_envs: int) -> int:
    """Rounds ``play_parallel`` plays for at least ``episodes`` episodes over ``num_envs``
    envs: every env plays one episode per round, and every episode counts.

    >>> rounds_for(10, 64), rounds_for(10, 4), rounds_for(8, 4)
    (1, 3, 2)
    """
    return max(1, math.ceil(episodes / num_envs))


def _is_attacker(agent: Any) -> bool:
    return getattr(agent, "role", AgentRole.Attacker) is AgentRole.Attacker


def _failure(what: str, failure: Any) -> PlayError:
    """The error of a failed request: GameLostError when its world is gone."""
    kind = GameLostError if getattr(failure, "code", None) is ErrorCode.GAME_LOST else PlayError
    return kind(f"{what} failed: {failure or 'no reply'}", failure)


def _fail(agent: Any, what: str) -> PlayError:
    return _failure(what, getattr(agent, "last_error", None))


def _join_again(agent: Any) -> Observation:
    """JoinGame after a game was lost: while no world can take a new game (NO_WORLD: the
    one that died is being restarted), try again until the client's timeout."""
    deadline = time.monotonic() + getattr(agent, "timeout", 0.0)
    while True:
        observation = agent.register()
        if observation is not None:
            return observation
        error = _fail(agent, "JoinGame")
        if getattr(error.failure, "code", None) is not ErrorCode.NO_WORLD or time.monotonic() >= deadline:
            raise error
        time.sleep(_REJOIN_PAUSE)  # another process's restart: nothing to wait on but a new JOIN


def play_episodes(agent: Any, policy: Policy, episodes: int, rng: random.Random,
                  on_episode: Callable[[EpisodeOutcome], None] | None = None, *, rejoin: bool = False,
                  on_game_lost: Callable[[PlayError], None] | None = None) -> Iterator[EpisodeOutcome]:
    """Register, then play ``episodes`` episodes lock-step, resetting between them. With
    ``rejoin``, a lost game (GAME_LOST) is joined again and its episode played anew."""
    observation: Observation | None = agent.register()
    if observation is None:
        raise _fail(agent, "JoinGame")
    fresh = True          # the observation starts an episode (a join's): no reset first
    lost_in_a_row = 0
    episode = 0
    while episode < episodes:
        try:
            if not fresh:
                observation = agent.request_game_reset()
                if observation is None:
                    raise _fail(agent, "ResetGame")
            fresh = False
            outcome = _play_one(agent, policy, observation, rng, episode)
        except GameLostError as lost:
            lost_in_a_row += 1
            if not rejoin or lost_in_a_row > MAX_REJOINS:
                raise
            if on_game_lost is not None:
                on_game_lost(lost)
            observation, fresh = _join_again(agent), True
            continue
        lost_in_a_row = 0
        if on_episode is not None:
            on_episode(outcome)
        yield outcome
        episode += 1


def _play_one(agent: Any, policy: Policy, observation: Observation, rng: random.Random,
              episode: int) -> EpisodeOutcome:
    episode_return, steps = 0.0, 0
    while True:
        action = policy(observation, rng)
        if action is None:
            raise PlayError("the policy found no action to take")
        result = agent.make_step(action)
        if result is None:
            raise _fail(agent, "a step")
        steps += 1
        episode_return += result.reward
        observation = result
        if result.end:
            return EpisodeOutcome(0, episode, episode_return, steps, result.info.get("end_reason"),
                                  _is_attacker(agent))


def play_parallel(agent: Any, policy: Policy, episodes: int, rng: random.Random,
                  on_episode: Callable[[EpisodeOutcome], None] | None = None, *, rejoin: bool = False,
                  on_game_lost: Callable[[PlayError], None] | None = None) -> Iterator[EpisodeOutcome]:
    """Play :func:`rounds_for` ``(episodes, num_envs)`` rounds, every env one episode per
    round, and report every episode (so ``num_envs`` per round, at least ``episodes``).
    With ``rejoin``, an env whose game was lost joins again and plays its episode anew."""
    count = agent.num_envs
    observations: list[Observation | None] = agent.register()
    failed = [env for env in range(count) if observations[env] is None]
    if failed:
        raise _failure(f"JoinGame of env {failed[0]} ({len(failed)} of {count} envs)",
                       agent.last_errors[failed[0]])
    rngs = [random.Random(rng.random()) for _ in range(count)]
    attacker = _is_attacker(agent)
    lost_in_a_row = [0] * count
    for round_number in range(rounds_for(episodes, count)):
        if round_number:
            observations = agent.request_game_reset()
            _rejoin_failed(agent, observations, "ResetGame", rejoin, on_game_lost, lost_in_a_row)
        returns = [0.0] * count
        steps = [0] * count
        playing = set(range(count))
        while playing:
            actions: list[Any] = [None] * count
            for env in playing:
                action = actions[env] = policy(observations[env], rngs[env])
                if action is None:
                    raise PlayError("the policy found no action to take")
            results = agent.make_step(actions)
            restarted = _rejoin_failed(agent, results, "a step", rejoin, on_game_lost, lost_in_a_row,
                                       sorted(playing))
            for env in sorted(playing):
                result = results[env]
                if env in restarted:  # a new game: its episode starts again
                    observations[env], returns[env], steps[env] = restarted[env], 0.0, 0
                    continue
                assert result is not None
                observations[env] = result
                returns[env] += result.reward
                steps[env] += 1
                if result.end:
                    playing.discard(env)
                    lost_in_a_row[env] = 0
                    outcome = EpisodeOutcome(env, round_number, returns[env], steps[env],
                                             result.info.get("end_reason"), attacker)
                    if on_episode is not None:
                        on_episode(outcome)
                    yield outcome


def _rejoin_failed(agent: Any, results: list[Observation | None], what: str, rejoin: bool,
                   on_game_lost: Callable[[PlayError], None] | None, lost_in_a_row: list[int],
                   envs: list[int] | None = None) -> dict[int, Observation]:
    """The envs of ``envs`` (default: all) whose request failed: those whose game was lost
    join again (with ``rejoin``; their new welcome Observations are returned and also put
    in ``results``); any other failure raises PlayError."""
    lost: list[int] = []
    for env in range(len(results)) if envs is None else envs:
        if results[env] is not None:
            continue
        error = _failure(f"{what} of env {env}", agent.last_errors[env])
        if not isinstance(error, GameLostError) or not rejoin or lost_in_a_row[env] >= MAX_REJOINS:
            raise error
        lost_in_a_row[env] += 1
        lost.append(env)
        if on_game_lost is not None:
            on_game_lost(error)
    if not lost:
        return {}
    joined = _join_envs_again(agent, lost)
    for env, observation in joined.items():
        results[env] = observation
    return joined


def _join_envs_again(agent: Any, envs: list[int]) -> dict[int, Observation]:
    """JoinGame for ``envs`` after their games were lost, as :func:`_join_again` does."""
    deadline = time.monotonic() + getattr(agent, "timeout", 0.0)
    joined: dict[int, Observation] = {}
    waiting = list(envs)
    while waiting:
        agent.send_joins(waiting)
        answers = agent.collect(waiting)
        retry = []
        for env in waiting:
            answer = answers.get(env)
            if isinstance(answer, Observation):
                joined[env] = answer
                continue
            error = _failure(f"JoinGame of env {env}", answer)
            if getattr(answer, "code", None) is not ErrorCode.NO_WORLD or time.monotonic() >= deadline:
                raise error
            retry.append(env)
        waiting = retry
        if waiting:
            time.sleep(_REJOIN_PAUSE)  # another process's restart: nothing to wait on but a new JOIN
    return joined
