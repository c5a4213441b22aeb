"""A game session's start and reset rules, kept apart from its step rules.

:class:`~world.session.GameSession` inherits them: a game starts (held joins are
answered) when its seats are filled and an attacker is present; a reset runs once every
external seat asked for one and they agree on the seed and the topology change (reference
netsecgame.md §3.5; DESIGN §3), then answers every held reset once the game has started.
Scripted seats do not vote: they reset with the others (:mod:`world.scripted`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from protocol import ErrorCode

from .scripted import ScriptedPlay, reset_seat
from .seats import Reply, bad_reply, reset_reply, welcome_reply
from .trajectory import append_line, trajectory_file_name

__all__ = ["ResetRules"]

log = logging.getLogger(__name__)


class ResetRules(ScriptedPlay):
    """Starting and resetting (a mixin of GameSession)."""

    name: str
    episode: int
    _rewards_assigned: bool
    started: bool  # GameSession's property

    def _release_started(self) -> list[Reply]:
        if not self.started:
            return []
        if self._tick_zero_due:
            self._episode_started()
        replies = []
        for s in self.seats.values():
            held = s.held
            if held is None:
                continue
            if held.kind == "join":
                s.held = None
                replies.append(welcome_reply(self.task, self.world, s, held))
            elif held.kind == "reset" and held.done:
                s.held = None
                replies.append(reset_reply(self.task, self.world, s, held))
        return replies

    def _maybe_reset(self) -> list[Reply]:
        voters = list(self.seats.values())
        if not voters or any(s.reset_vote is None or s.held is None or s.held.kind != "reset"
                             or s.held.done for s in voters):
            return self._release_started()
        seeds = {s.reset_vote[0] for s in voters if s.reset_vote and s.reset_vote[0] is not None}
        topology = {s.reset_vote[1] for s in voters if s.reset_vote and s.reset_vote[0] is not None}
        problem = None
        if len(seeds) > 1:
            problem = (ErrorCode.SEED_CONFLICT, "Agents disagree on the seed "
                       f"({', '.join(map(str, sorted(seeds)))}); nothing was reset.")
        elif len(topology) > 1:
            problem = (ErrorCode.TOPOLOGY_CONFLICT, "Agents disagree on the topology change; "
                       "nothing was reset.")
        if problem is not None:
            replies = []
            for s in voters:
                held, s.held, s.reset_vote = s.held, None, None
                assert held is not None
                replies.append(bad_reply(s.seat, held.request, problem[0], problem[1]))
            return replies
        self._run_reset(next(iter(seeds), None), next(iter(topology), False))
        if self.events is not None:
            for s in voters:
                self._emit("reset", s)
        for s in voters:
            assert s.held is not None
            s.held.done = True
        return self._release_started()

    def _run_reset(self, seed: int | None, randomize: bool) -> None:
        """The world reset and the agents' new episode (reference §3.5 step 3)."""
        if seed is not None:
            self.rng.seed(seed)
        self.world.reset(randomize_topology=randomize and self.task.use_dynamic_addresses)
        if self.task.save_trajectories:
            self._save_trajectories()
        self._new_episode()

    def _new_episode(self) -> None:
        self.episode += 1
        self._rewards_assigned = False
        for s in self.seats.values():
            config = self.task.roles[s.role]
            s.state = self.world.start_state(config.start)
            s.goal = self.world.goal_state(config.goal)
            reset_seat(s)
        if self.scripted:
            self._new_scripted_episode()

    def _save_trajectories(self) -> None:
        directory = Path(self.task.trajectory_dir)
        for s in self._players():
            try:
                append_line(directory / trajectory_file_name(s.name, s.role), s.trajectory.as_dict())
            except OSError as error:
                log.error("%s: cannot save the trajectory of %s: %s", self.name, s.name, error)  # pragma: no mutate
