"""ArenaParallelEnv: attacker and defender teams of one game as a PettingZoo ParallelEnv.

Every seat of one game is an agent of the env, named by role and number
(``attacker_0``, ``defender_0``, ``benign_0``), in that order, which is also the order in
which each step's actions reach the game (attackers first). ``broker`` chooses where the
game runs: None plays it in this process, a frontend address plays one *named* game on a
running stack (every seat joins it; ``game`` names it, default a fresh random name), all
seats over one :class:`~agents.parallel.ParallelBaseAgent` with a role per env.

* ``observation_space(agent)``, ``action_space(agent)``: per role, the flat
  ``Box(0, 1, (n,), float32)`` and ``Discrete(len(table))`` of :mod:`agents.env_core`,
  the same objects on every call; ``action_mask(agent)`` and ``infos[agent]["action_mask"]``
  give the masks; a masked (or missing) action is a counted no-op, ``info["masked"]``.
* ``agents`` shrinks as agents finish: an agent whose ``terminated`` or ``truncated`` is
  True leaves it in that step. Every step returns an entry for every agent that was in
  ``agents`` before it, never empty dicts while the episode runs.
* **Held replies.** A game answers the step that ends one agent's episode only when every
  agent's episode ended (its final reward depends on the others; PROTOCOL.md §4). Such an
  agent stays in ``agents`` with ``info["waiting"] = True``, reward 0 and no flags; its
  actions are ignored; in the step in which the game releases its reply it gets its final
  reward and leaves. With the default order (attackers first) an attacker's last step
  ends the defenders' episodes in the same step, so with one attacker nobody waits.

>>> env = ArenaParallelEnv()                      # the default task: one attacker, one defender
>>> observations, infos = env.reset(seed=3)
>>> env.agents, env.action_space("defender_0") is env.action_space("defender_0")
(['attacker_0', 'defender_0'], True)
>>> actions = {agent: int(infos[agent]["action_mask"].argmax()) for agent in env.agents}
>>> observations, rewards, terminations, truncations, infos = env.step(actions)
>>> rewards, infos["defender_0"]["masked"]
({'attacker_0': -1.0, 'defender_0': -1.0}, False)
>>> env.close()
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .extras import needs

with needs("ArenaParallelEnv (agents.pettingzoo_env)", "rl"):
    import numpy as np
    from pettingzoo import ParallelEnv

from protocol import Action, AgentRole, ArenaError, GameStatus, PassAction, ReplyBody

from .env_backends import answer_text, make_games, resolve_task
from .env_core import NO_OP, AgentSeat, as_role
from .utils import state_as_ordered_string

__all__ = ["ArenaParallelEnv"]

log = logging.getLogger(__name__)

_ROLE_ORDER = (AgentRole.Attacker, AgentRole.Defender, AgentRole.Benign)
_DEFAULT_ROLES = {AgentRole.Attacker: 1, AgentRole.Defender: 1}


class ArenaParallelEnv(ParallelEnv):  # type: ignore[misc]
    """The external seats of one game (see the module docstring).

    ``roles``: seats per role, e.g. ``{"Attacker": 1, "Defender": 1}`` (default: in
    process every seat of the task, through a broker one attacker and one defender).
    Other arguments as :class:`agents.gym_env.ArenaEnv`'s."""

    metadata = {"name": "netsec_arena_parallel_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, task: Any = None, *, roles: Mapping[AgentRole | str, int] | None = None,
                 broker: str | None = None, game: str | None = None, seed: int = 42, flatten_obs: bool = True,
                 timeout: float = 120.0, name: str = "ArenaParallelEnv", render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        if broker is None:
            task = resolve_task(task)
            if roles is None:
                roles = {role: count for role, count in task.seats.items() if count}
        counts = {as_role(role): int(count) for role, count in (roles or _DEFAULT_ROLES).items()}
        self._roles = {f"{role.value.lower()}_{index}": role for role in _ROLE_ORDER
                       for index in range(counts.get(role, 0))}
        if not any(role is AgentRole.Attacker for role in self._roles.values()):
            raise ValueError("a game needs at least one attacker")
        self.possible_agents: list[str] = list(self._roles)
        self._game = game if broker is None or game else f"pz-{os.urandom(6).hex()}"
        self._games = make_games(broker, task, seed=seed, timeout=timeout, name=name)
        self._seats: dict[str, AgentSeat] = {}
        try:
            answers = self._join()
        except BaseException:
            self._games.close()
            raise
        for agent, answer in answers.items():
            catalog = self._games.catalog(agent, answer)
            self._seats[agent] = seat = AgentSeat(agent, self._roles[agent], catalog, flatten=flatten_obs)
            seat.begin(answer, catalog)
        self.observation_spaces = {agent: seat.observation_space for agent, seat in self._seats.items()}
        self.action_spaces = {agent: seat.action_space for agent, seat in self._seats.items()}
        self.agents: list[str] = list(self.possible_agents)
        self._waiting: set[str] = set()
        self._sent: dict[str, tuple[bool, str | None]] = {}   # agent -> (masked, label) of its last action
        self._fresh = True
        self._closed = False

    def _join(self) -> dict[str, ReplyBody]:
        return self._games.join({agent: (role, self._game) for agent, role in self._roles.items()})

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> Any:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> Any:
        return self.action_spaces[agent]

    def action_mask(self, agent: str) -> np.ndarray:
        """The agent's valid actions now, as a bool array."""
        return self._seats[agent].mask()

    def seat(self, agent: str) -> AgentSeat:
        """An agent's table, layout, catalog and state (``seat(a).table.labels`` ...)."""
        return self._seats[agent]

    # ------------------------------------------------------------------ the API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        randomize = bool((options or {}).get("randomize_topology", False))
        if self._fresh and seed is None and not randomize:
            pass                 # the episode the join started
        elif self._waiting:
            # A held seat cannot vote for a reset: leave the game and sit down again.
            self._games.quit(list(self._seats))
            for agent, answer in self._join().items():
                self._seats[agent].begin(answer, self._games.catalog(agent, answer))
            if seed is not None or randomize:
                self._reset_all(seed, randomize)
        else:
            self._reset_all(seed, randomize)
        self._fresh = False
        self.agents = list(self.possible_agents)
        self._waiting = set()
        self._sent = {}
        return ({agent: seat.observe() for agent, seat in self._seats.items()},
                {agent: seat.info() for agent, seat in self._seats.items()})

    def _reset_all(self, seed: int | None, randomize: bool) -> None:
        agents = list(self._seats)
        self._games.send_resets(dict.fromkeys(agents, (seed, randomize)))
        answers = self._games.collect(agents, len(agents))
        for agent in agents:
            answer = answers.get(agent)
            if not isinstance(answer, ReplyBody) or answer.status is not GameStatus.RESET_DONE or \
                    answer.observation is None:
                raise ArenaError(f"{agent} could not reset: {answer_text(answer)}")
            self._seats[agent].begin(answer, self._games.catalog(agent, answer))

    def step(self, actions: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, bool],
                                                         dict[str, bool], dict[str, dict[str, Any]]]:
        self._fresh = False
        live = [agent for agent in self.agents if agent not in self._waiting]
        sends: dict[str, Action | PassAction] = {}
        for agent in live:
            seat = self._seats[agent]
            action = actions.get(agent)
            if action is None:
                sends[agent], masked, index = NO_OP, True, None
            else:
                sends[agent], masked, index = seat.resolve(action)
            self._sent[agent] = (masked, seat.label(index))
        self._games.send_steps(sends)
        answers = self._games.collect(live, 1 if live else 0)
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        for agent in self.agents:
            seat = self._seats[agent]
            answer = answers.pop(agent, None)
            if answer is None:   # held by the game until every agent's episode ended
                self._waiting.add(agent)
                reward, terminated, truncated = 0.0, False, False
                info = seat.info()
                info["waiting"] = True
            else:
                if not isinstance(answer, ReplyBody) or answer.observation is None:
                    raise ArenaError(f"the step of {agent} failed: {answer_text(answer)}")
                reward, terminated, truncated = seat.advance(answer.observation)
                if answer.status is GameStatus.FORBIDDEN and not (terminated or truncated):
                    terminated = True
                info = seat.info(answer.observation)
            masked, label = self._sent.get(agent, (False, None))
            info["masked"], info["label"] = masked, label
            observations[agent], rewards[agent] = seat.observe(), reward
            terminations[agent], truncations[agent], infos[agent] = terminated, truncated, info
        if answers:
            log.debug("answers for agents no longer in the episode ignored: %s", sorted(map(str, answers)))
        self.agents = [agent for agent in self.agents if not (terminations[agent] or truncations[agent])]
        self._waiting &= set(self.agents)
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return "".join(f"{agent} (step {seat.steps}): {state_as_ordered_string(seat.state)}\n"
                       for agent, seat in self._seats.items())

    def close(self) -> None:
        """Leave the game (QUIT every seat). Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._games.close()
