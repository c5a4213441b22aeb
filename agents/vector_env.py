"""ArenaVectorEnv: N games stepped together, as a Gymnasium VectorEnv and EnvPool-style.

Each env is one game with one learning agent (the task's other roles are its scripted
agents). ``broker`` chooses where they run: None plays N :class:`~world.GameSession`
objects in this process; a frontend address seats N agents on a running stack (the
broker spreads their games over its worlds) through one
:class:`~agents.parallel.ParallelBaseAgent` (one socket), with the requests of one call
to each world travelling as one BATCH message.

Two ways to drive it:

* Gymnasium's :class:`gymnasium.vector.VectorEnv`: ``reset(seed=)`` (an int seeds env
  ``i`` with ``seed + i``; a list gives one seed each), ``step(actions)`` with batched
  spaces (``Box((N, n))`` observations, ``MultiDiscrete`` actions).
* EnvPool-style, asynchronous: :meth:`send` (actions for some or all envs, returns at
  once) and :meth:`recv` (the results of the envs that answered, at least ``min_envs``
  of them, with ``info["env_id"]``), so an agent can compute on some envs' results while
  the others' games are still stepping.

**Autoreset: NEXT_STEP** (Gymnasium's default, ``metadata["autoreset_mode"]``): when an
env's episode ends, the step that ended it returns the final observation with
``terminated``/``truncated`` set; the *next* action sent to that env is not played but
resets the game (without a seed: the game's generator goes on), and that step returns
the new episode's first observation, reward 0 and no flags (``info["reset"]`` True).

Masks are batched: ``info["action_mask"]`` (``(k, n)`` bools) and :meth:`action_masks`.
A masked action is a counted no-op flagged in ``info["masked"]``. Infos follow the
vector convention: ``info[key]`` holds one entry per env, ``info["_" + key]`` says which
envs have one.

>>> envs = ArenaVectorEnv("two_networks_tiny", num_envs=4)
>>> observations, infos = envs.reset(seed=0)
>>> observations.shape, infos["action_mask"].shape, envs.action_space
((4, 51), (4, 205), MultiDiscrete([205 205 205 205]))
>>> observations, rewards, terminations, truncations, infos = envs.step(envs.action_masks().argmax(axis=1))
>>> rewards.tolist(), infos["masked"].tolist()
([-1.0, -1.0, -1.0, -1.0], [False, False, False, False])
>>> envs.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .extras import needs

with needs("ArenaVectorEnv (agents.vector_env)", "rl"):
    import numpy as np
    from gymnasium.vector import AutoresetMode, VectorEnv
    from gymnasium.vector.utils import batch_space

from protocol import Action, AgentRole, ArenaError, GameStatus, PassAction, ReplyBody

from .env_backends import answer_text, make_games
from .env_core import AgentSeat, as_role

__all__ = ["ArenaVectorEnv"]

_StepResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


class ArenaVectorEnv(VectorEnv):  # type: ignore[type-arg]
    """``num_envs`` games of ``task``, one learning agent of ``role`` each (see the module
    docstring). The task comes first, as in :class:`agents.gym_env.ArenaEnv`, whose other
    arguments these are: ``ArenaVectorEnv("two_networks_tiny", num_envs=4)``."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, task: Any = None, num_envs: int = 8, *, role: AgentRole | str = AgentRole.Attacker,
                 broker: str | None = None, seed: int = 42, timeout: float = 120.0, name: str = "ArenaVectorEnv",
                 max_episode_steps: int | None = None) -> None:
        if isinstance(task, int):   # the unreleased order (num_envs first): say so, never guess
            given = "task" if isinstance(num_envs, int) else repr(num_envs)
            raise TypeError(f"ArenaVectorEnv takes the task first: ArenaVectorEnv({given}, num_envs={task!r})")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        del max_episode_steps  # the game's own step limit truncates (gymnasium.make_vec passes it)
        self.num_envs = num_envs
        self.broker = broker
        self._games = make_games(broker, task, seed=seed, timeout=timeout, name=name)
        role = as_role(role)
        try:
            answers = self._games.join({env: (role, env if broker is None else None) for env in range(num_envs)})
        except BaseException:
            self._games.close()
            raise
        self._seats: list[AgentSeat] = []
        for env in range(num_envs):
            catalog = self._games.catalog(env, answers[env])
            seat = AgentSeat(f"env_{env}", role, catalog)
            seat.begin(answers[env], catalog)
            self._seats.append(seat)
        first = self._seats[0]
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._pending: dict[int, tuple[str, bool]] = {}   # env -> ("step" | "reset", masked)
        self._fresh = True
        self._closed = False

    # ------------------------------------------------------------------ properties
    @property
    def table(self) -> Any:
        """The fixed action table (shared by every env)."""
        return self._seats[0].table

    @property
    def observation_layout(self) -> Any:
        return self._seats[0].layout

    @property
    def action_labels(self) -> tuple[str, ...]:
        return self._seats[0].table.labels

    def seat(self, env: int) -> AgentSeat:
        """One env's agent: its catalog, state, steps."""
        return self._seats[env]

    def action_masks(self) -> np.ndarray:
        """The valid actions of every env now, ``(num_envs, n)`` bools."""
        return np.stack([seat.mask() for seat in self._seats])

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None,
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env (the first call without a seed starts from the episodes the joins began)."""
        if self._pending:
            self.recv()
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + env for env in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        randomize = bool((options or {}).get("randomize_topology", False))
        if not (self._fresh and seed is None and not randomize):
            self._games.send_resets({env: (seeds[env], randomize) for env in range(self.num_envs)})
            answers = self._games.collect(range(self.num_envs), self.num_envs)
            for env in range(self.num_envs):
                self._begin(env, answers.get(env))
        self._fresh = False
        self._autoreset[:] = False
        envs = list(range(self.num_envs))
        observations = np.stack([seat.observe() for seat in self._seats])
        return observations, self._infos(envs, [False] * self.num_envs, [True] * self.num_envs)

    def step(self, actions: Any) -> _StepResult:
        """One action per env (an ``(N,)`` array or sequence); NEXT_STEP autoreset."""
        actions = list(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got {len(actions)}")
        self.send(actions)
        observations, rewards, terminations, truncations, infos = self.recv()
        infos.pop("env_id", None)
        return observations, rewards, terminations, truncations, infos

    # ------------------------------------------------------------------ EnvPool-style API
    def send(self, actions: Iterable[Any], env_ids: Iterable[int] | None = None) -> None:
        """Send one action per env of ``env_ids`` (default: all), without waiting. An env
        whose episode ended is reset instead (NEXT_STEP). An env may have one send in flight."""
        actions = list(actions)
        envs = list(range(self.num_envs)) if env_ids is None else [int(env) for env in env_ids]
        if len(actions) != len(envs):
            raise ValueError(f"expected {len(envs)} actions, got {len(actions)}")
        busy = [env for env in envs if env in self._pending]
        if busy or len(set(envs)) != len(envs):
            raise ValueError(f"envs {busy or envs} already have a send in flight (or appear twice): recv() first")
        self._fresh = False
        resets: dict[int, tuple[int | None, bool]] = {}
        steps: dict[int, Action | PassAction] = {}
        for env, action in zip(envs, actions, strict=True):
            if self._autoreset[env]:
                resets[env] = (None, False)
                self._pending[env] = ("reset", False)
            else:
                steps[env], masked, _ = self._seats[env].resolve(action)
                self._pending[env] = ("step", masked)
        if resets:
            self._games.send_resets(resets)
        if steps:
            self._games.send_steps(steps)

    def recv(self, min_envs: int | None = None) -> _StepResult:
        """The results of envs whose sends were answered: at least ``min_envs`` of them
        (default: every env with a send in flight), in env order; ``info["env_id"]`` names
        them. Observations are ``(k, n)``, rewards and flags ``(k,)``."""
        pending = list(self._pending)
        need = len(pending) if min_envs is None else max(0, min(int(min_envs), len(pending)))
        answers = self._games.collect(pending, need)
        envs = sorted(env for env in answers if env in self._pending)
        rewards = np.zeros(len(envs), dtype=np.float64)
        terminations = np.zeros(len(envs), dtype=bool)
        truncations = np.zeros(len(envs), dtype=bool)
        masked, stepped = [], []
        observations = []
        for position, env in enumerate(envs):
            kind, was_masked = self._pending.pop(env)
            answer = answers[env]
            if kind == "reset":
                self._begin(env, answer)
                self._autoreset[env] = False
            else:
                if not isinstance(answer, ReplyBody) or answer.observation is None:
                    raise ArenaError(f"the step of env {env} failed: {answer_text(answer)}")
                reward, terminated, truncated = self._seats[env].advance(answer.observation)
                rewards[position], terminations[position], truncations[position] = reward, terminated, truncated
                self._autoreset[env] = terminated or truncated
            masked.append(was_masked)
            stepped.append(kind == "step")
            observations.append(self._seats[env].observe())
        infos = self._infos(envs, masked, [not s for s in stepped])
        infos["env_id"] = np.array(envs, dtype=np.int64)
        width = self.single_observation_space.shape[0]
        stacked = np.stack(observations) if observations else np.zeros((0, width), dtype=np.float32)
        return stacked, rewards, terminations, truncations, infos

    # ------------------------------------------------------------------ internals
    def _begin(self, env: int, answer: Any) -> None:
        if not isinstance(answer, ReplyBody) or answer.status is not GameStatus.RESET_DONE or \
                answer.observation is None:
            raise ArenaError(f"env {env} could not reset: {answer_text(answer)}")
        self._seats[env].begin(answer, self._games.catalog(env, answer))

    def _infos(self, envs: list[int], masked: list[bool], reset: list[bool]) -> dict[str, Any]:
        count = len(envs)
        seats = [self._seats[env] for env in envs]
        reasons = np.array([seat.end_reason for seat in seats], dtype=object)
        states = np.empty(count, dtype=object)
        states[:] = [seat.state for seat in seats]
        everyone = np.ones(count, dtype=bool)
        return {
            "action_mask": np.stack([seat.mask() for seat in seats]) if seats else
            np.zeros((0, self.single_action_space.n), dtype=bool), "_action_mask": everyone,
            "masked": np.array(masked, dtype=bool), "_masked": ~np.array(reset, dtype=bool),
            "reset": np.array(reset, dtype=bool), "_reset": everyone.copy(),
            "end_reason": reasons, "_end_reason": np.array([r is not None for r in reasons], dtype=bool),
            "steps": np.array([seat.steps for seat in seats], dtype=np.int64), "_steps": everyone.copy(),
            "state": states, "_state": everyone.copy(),
        }

    def close_extras(self, **kwargs: Any) -> None:
        """Leave every game (QUIT) and close the connection. Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._games.close()
