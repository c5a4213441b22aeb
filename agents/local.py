"""Play policies against each other in process: a GameSession, no sockets.

The in-process mode of the client side (DESIGN §1: ``agents`` may use ``world`` for
it). It drives the session exactly as a worker loop would (joins held until the game
starts, one request in flight per seat, resets agreed by everyone), so what it
measures is the game itself.

>>> from agents.policies import blocking_defender, kill_chain_attacker
>>> from protocol import AgentRole
>>> from world import load_task
>>> match = LocalMatch(load_task(), [("red", AgentRole.Attacker, kill_chain_attacker),
...                                  ("blue", AgentRole.Defender, blocking_defender)], seed=3)
>>> results = list(match.play(2))
>>> [len(result.players) for result in results]
[2, 2]
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from protocol import Action, ActionType, AgentInfo, AgentRole, AgentStatus, ArenaError, GameStatus, Observation

from .policies import Policy

__all__ = ["EpisodeResult", "LocalMatch", "PlayerResult"]


@attrs.frozen
class PlayerResult:
    seat: str
    role: AgentRole
    episode_return: float
    steps: int
    end_reason: str | None


@attrs.frozen
class EpisodeResult:
    episode: int
    players: tuple[PlayerResult, ...]
    steps: int
    seconds: float

    def of_role(self, role: AgentRole) -> list[PlayerResult]:
        return [player for player in self.players if player.role is role]

    @property
    def attacker_won(self) -> bool:
        return any(p.end_reason == str(AgentStatus.Success) for p in self.of_role(AgentRole.Attacker))

    @property
    def attacker_detected(self) -> bool:
        return any(p.end_reason == str(AgentStatus.Fail) for p in self.of_role(AgentRole.Attacker))

    @property
    def attacker_timed_out(self) -> bool:
        return any(p.end_reason == str(AgentStatus.TimeoutReached) for p in self.of_role(AgentRole.Attacker))


class LocalMatch:
    """Policies seated in one in-process game; :meth:`play` yields each episode's result."""

    def __init__(self, task: Any, players: Sequence[tuple[str, AgentRole, Policy]], *, seed: int = 42,
                 max_rounds: int = 100_000) -> None:
        from world import GameSession  # in-process mode only

        self.session = GameSession(task, seed=seed, name="local")
        self.players = list(players)
        self.rngs = {seat: random.Random(seed * 1009 + index) for index, (seat, _, _) in enumerate(players)}
        self.max_rounds = max_rounds
        self._request = 0
        self.observations: dict[str, Observation | None] = {}

    def _send(self, seat: str, action: Action) -> list[Any]:
        self._request += 1
        return self.session.handle(seat, action, time.monotonic(), self._request)

    def _join_all(self) -> None:
        answered = []
        for seat, role, _ in self.players:
            answered += self._send(seat, Action(ActionType.JoinGame, {"agent_info": AgentInfo(seat, role)}))
        for reply in answered:
            if reply.status is not GameStatus.CREATED:
                raise ArenaError(f"{reply.seat} could not join: {reply.message}")
            self.observations[reply.seat] = reply.observation
        if len(answered) != len(self.players):
            raise ArenaError("the game did not start: the players do not fill its seats")

    def _reset_all(self) -> None:
        answered = []
        for seat, _, _ in self.players:
            answered += self._send(seat, Action(ActionType.ResetGame, {}))
        for reply in answered:
            if reply.status is not GameStatus.RESET_DONE:
                raise ArenaError(f"{reply.seat} could not reset: {reply.message}")
            self.observations[reply.seat] = reply.observation

    def play(self, episodes: int) -> Iterator[EpisodeResult]:
        self._join_all()
        try:
            for episode in range(episodes):
                if episode:
                    self._reset_all()
                yield self._episode(episode)
        finally:
            for seat, _, _ in self.players:
                self._send(seat, Action(ActionType.QuitGame, {}))

    def _episode(self, episode: int) -> EpisodeResult:
        started = time.perf_counter()
        returns = {seat: 0.0 for seat, _, _ in self.players}
        steps = dict.fromkeys(returns, 0)
        reasons: dict[str, str | None] = dict.fromkeys(returns)
        ended: set[str] = set()
        waiting: set[str] = set()
        for _ in range(self.max_rounds):
            if len(ended) == len(self.players):
                break
            for seat, _, policy in self.players:
                if seat in ended or seat in waiting:
                    continue
                action = policy(self.observations.get(seat), self.rngs[seat])
                if action is None:
                    raise ArenaError(f"policy of {seat} found no action to take")
                waiting.add(seat)
                steps[seat] += 1
                for reply in self._send(seat, action):
                    waiting.discard(reply.seat)
                    if reply.observation is None:
                        raise ArenaError(f"{reply.seat}: {reply.status} {reply.message}")
                    self.observations[reply.seat] = reply.observation
                    if reply.status is GameStatus.FORBIDDEN:
                        ended.add(reply.seat)
                        continue
                    returns[reply.seat] += reply.observation.reward
                    if reply.observation.end:
                        ended.add(reply.seat)
                        reasons[reply.seat] = reply.observation.info.get("end_reason")
        else:
            raise ArenaError(f"episode {episode} did not end within {self.max_rounds} rounds")
        players = tuple(PlayerResult(seat, role, returns[seat], steps[seat], reasons[seat])
                        for seat, role, _ in self.players)
        return EpisodeResult(episode, players, sum(steps.values()), time.perf_counter() - started)
