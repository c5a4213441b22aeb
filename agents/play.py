"""Episode loops: a policy playing through a client, one env or many.

``play_episodes`` drives a :class:`~agents.client.BaseAgent` lock-step;
``play_parallel`` drives a :class:`~agents.parallel.ParallelBaseAgent`, stepping every
live env at once and resetting them together once all are done. Both report each
finished episode as an :class:`EpisodeOutcome`, which ``arena play`` and ``arena demo``
summarise.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from protocol import AgentRole, AgentStatus, ArenaError, Observation

from .policies import Policy

__all__ = ["EpisodeOutcome", "Summary", "play_episodes", "play_parallel"]


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
    """Running figures over episodes: what ``arena play --json`` prints."""

    started: float = attrs.Factory(time.perf_counter)
    episodes: int = 0
    wins: int = 0
    detections: int = 0
    losses: int = 0
    timeouts: int = 0
    total_return: float = 0.0
    steps: int = 0

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
        return {
            "episodes": self.episodes,
            "wins": self.wins,
            "detections": self.detections,
            "losses": self.losses,
            "timeouts": self.timeouts,
            "mean_return": self.total_return / self.episodes if self.episodes else 0.0,
            "steps": self.steps,
            "steps_per_second": self.steps / seconds if seconds > 0 else 0.0,
        }


def _is_attacker(agent: Any) -> bool:
    return getattr(agent, "role", AgentRole.Attacker) is AgentRole.Attacker


def _fail(agent: Any, what: str) -> ArenaError:
    return ArenaError(f"{what} failed: {getattr(agent, 'last_error', None) or 'no reply'}")


def play_episodes(agent: Any, policy: Policy, episodes: int, rng: random.Random,
                  on_episode: Callable[[EpisodeOutcome], None] | None = None) -> Iterator[EpisodeOutcome]:
    """Register, then play ``episodes`` episodes lock-step, resetting between them."""
    observation: Observation | None = agent.register()
    if observation is None:
        raise _fail(agent, "JoinGame")
    for episode in range(episodes):
        if episode:
            observation = agent.request_game_reset()
            if observation is None:
                raise _fail(agent, "ResetGame")
        episode_return, steps = 0.0, 0
        while True:
            action = policy(observation, rng)
            if action is None:
                raise ArenaError("the policy found no action to take")
            result = agent.make_step(action)
            if result is None:
                raise _fail(agent, "a step")
            steps += 1
            episode_return += result.reward
            observation = result
            if result.end:
                break
        outcome = EpisodeOutcome(0, episode, episode_return, steps, result.info.get("end_reason"),
                                 _is_attacker(agent))
        if on_episode is not None:
            on_episode(outcome)
        yield outcome


def play_parallel(agent: Any, policy: Policy, episodes: int, rng: random.Random,
                  on_episode: Callable[[EpisodeOutcome], None] | None = None) -> Iterator[EpisodeOutcome]:
    """Play until ``episodes`` episodes finished across all envs (rounds of num_envs)."""
    observations: list[Observation | None] = agent.register()
    if not any(observations):
        raise _fail(agent, "JoinGame")
    finished = 0
    episode = 0
    rngs = [random.Random(rng.random()) for _ in range(agent.num_envs)]
    while finished < episodes:
        if episode:
            observations = agent.request_game_reset()
        returns = [0.0] * agent.num_envs
        steps = [0] * agent.num_envs
        reported = [observation is None for observation in observations]
        while not agent.all_done:
            actions = [None if done or observations[i] is None else policy(observations[i], rngs[i])
                       for i, done in enumerate(agent.done_mask)]
            results = agent.make_step(actions)
            for i, result in enumerate(results):
                if result is None or actions[i] is None:
                    continue
                observations[i] = result
                returns[i] += result.reward
                steps[i] += 1
                if result.end and not reported[i]:
                    reported[i] = True
                    outcome = EpisodeOutcome(i, episode, returns[i], steps[i], result.info.get("end_reason"),
                                             _is_attacker(agent))
                    finished += 1
                    if on_episode is not None:
                        on_episode(outcome)
                    yield outcome
                    if finished >= episodes:
                        return
        episode += 1
