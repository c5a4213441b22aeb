"""ArenaEnv: one learning agent of a netsec-arena game as a Gymnasium environment.

The learning agent plays one role (Attacker by default); the task's other roles are
its scripted agents, running inside the world. ``broker`` chooses where the game runs:
None plays it in this process (fastest, for training), a frontend address plays it on a
running stack (``arena up``), the same env object either way.

* ``observation_space``: ``Box(0, 1, (n,), float32)``, the flat observation of
  :mod:`agents.flat_observation` (``observation_layout`` describes every index); with
  ``flatten_obs=False`` a ``Dict`` of its blocks. ``info["state"]`` holds the structured
  :class:`~protocol.GameState` (``state_in_info=False`` leaves it out, for frameworks that
  deep-copy every info, as SB3's DummyVecEnv does; ``env.state`` still has it).
* ``action_space``: ``Discrete(len(table))`` over the role's fixed action table
  (``table``, ``action_labels``); ``step`` also takes an :class:`~protocol.Action`.
* masks: ``info["action_mask"]`` and :meth:`ArenaEnv.action_masks` (what sb3-contrib's
  MaskablePPO calls). A masked action is a counted no-op, ``info["masked"] = True``.
* ``reset(seed=s)`` resets the game with seed ``s`` (same seed, same actions, same
  episode); ``options={"randomize_topology": True}`` (or ``randomize_topology=True`` at
  construction) asks for new addresses on tasks with ``use_dynamic_addresses: true``,
  seeded from the env's ``np_random`` when no seed is given.
* ``terminated`` when the game decides the episode (goal reached, detected), ``truncated``
  at the step limit; ``info["end_reason"]`` says which (``AgentStatus.Success`` ...).
  ``info`` also carries ``label`` and ``masked`` of the action taken, ``steps``, and the
  world's ``reward_breakdown`` and ``scripted`` when it sends them.

>>> env = ArenaEnv("two_networks_tiny")
>>> observation, info = env.reset(seed=1)
>>> observation.shape, env.action_space, int(info["action_mask"].sum())
((51,), Discrete(205), 12)
>>> index = env.table.index_of_label("ScanNetwork client_1 -> 192.168.1.0/24")
>>> observation, reward, terminated, truncated, info = env.step(index)
>>> reward, info["masked"], int(observation[env.observation_layout.index("hosts", "smb_server", "known")])
(-1.0, False, 1)
>>> env.close()

Registered ids (:data:`ENV_IDS`): ``gymnasium.make("NetSecArena/TwoNetworksTiny-v0")``
after ``import agents.gym_env``, or in one call
``gymnasium.make("agents.gym_env:NetSecArena/TwoNetworksTiny-v0", broker=...)``;
``gymnasium.make_vec`` of those ids builds :class:`agents.vector_env.ArenaVectorEnv`.
"""

from __future__ import annotations

from typing import Any

from .extras import needs

with needs("ArenaEnv (agents.gym_env)", "rl"):
    import gymnasium as gym
    import numpy as np

from protocol import AgentRole, ArenaError, GameState, ReplyBody
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

from .env_backends import answer_text, make_games
from .env_core import AgentSeat, as_role
from .flat_observation import ObservationLayout
from .utils import state_as_ordered_string

__all__ = ["ENV_IDS", "ArenaEnv", "register_envs"]

_AGENT = "agent"


class ArenaEnv(gym.Env):  # type: ignore[type-arg]
    """One learning agent in one game (see the module docstring).

    ``task``: a TaskConfig, a task file or URL, or a task's name (in process: a shipped
    task; through a broker: the name it serves; None: the default task). ``role``: the
    learning agent's role. ``broker``: None for in process, else a frontend address.
    ``game``: through a broker, a named game to join (None: the broker places the seat).
    ``seed``: the in-process game's creation seed (the server's ``--seed`` through a
    broker). ``timeout``: the longest wait for a reply through a broker, in seconds.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: Any = None, *, role: AgentRole | str = AgentRole.Attacker, broker: str | None = None,
                 game: str | None = None, seed: int = 42, flatten_obs: bool = True, randomize_topology: bool = False,
                 timeout: float = 120.0, name: str = "ArenaEnv", render_mode: str | None = None,
                 state_in_info: bool = True) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.randomize_topology = bool(randomize_topology)
        self.broker = broker
        self._games = make_games(broker, task, seed=seed, timeout=timeout, name=name)
        try:
            answer = self._games.join({_AGENT: (as_role(role), game)})[_AGENT]
            catalog = self._games.catalog(_AGENT, answer)
        except BaseException:
            self._games.close()
            raise
        self._seat = AgentSeat(_AGENT, role, catalog, flatten=flatten_obs, state_in_info=state_in_info)
        self._seat.begin(answer, catalog)
        self._fresh = True       # the episode the join started has not been handed out
        self._closed = False
        self._last_label: str | None = None
        self.observation_space = self._seat.observation_space
        self.action_space = self._seat.action_space

    # ------------------------------------------------------------------ properties
    @property
    def table(self) -> ActionTable:
        """The fixed action table: index ``i`` of the action space is ``table.entries[i]``."""
        return self._seat.table

    @property
    def action_labels(self) -> tuple[str, ...]:
        """A human-readable label per action index (``"FindData client_1 -> smb_server"``)."""
        return self._seat.table.labels

    @property
    def observation_layout(self) -> ObservationLayout:
        """What every index of the observation vector means (``.to_json()`` for tools)."""
        return self._seat.layout

    @property
    def catalog(self) -> Catalog:
        """The game's entities at the current episode's addresses."""
        return self._seat.catalog

    @property
    def state(self) -> GameState:
        return self._seat.state

    @property
    def role(self) -> AgentRole:
        return self._seat.role

    def action_masks(self) -> np.ndarray:
        """The valid actions now, as a bool array (sb3-contrib's MaskablePPO calls this)."""
        return self._seat.mask()

    # ------------------------------------------------------------------ the API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        randomize = bool(options.get("randomize_topology", self.randomize_topology))
        if randomize and seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        if not (self._fresh and seed is None):
            self._games.send_resets({_AGENT: (seed, randomize)})
            answer = self._games.collect([_AGENT], 1).get(_AGENT)
            if not isinstance(answer, ReplyBody) or answer.observation is None:
                raise ArenaError(f"the game could not reset: {answer_text(answer)}")
            self._seat.begin(answer, self._games.catalog(_AGENT, answer))
        self._fresh = False
        self._last_label = None
        return self._seat.observe(), self._seat.info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        seat = self._seat
        sent, masked, index = seat.resolve(action)
        self._fresh = False
        self._games.send_steps({_AGENT: sent})
        answer = self._games.collect([_AGENT], 1).get(_AGENT)
        if answer is None:
            raise ArenaError("the game holds this agent's step reply (its episode ended while other players "
                             "still play); in process nothing can release it")
        if not isinstance(answer, ReplyBody) or answer.observation is None:
            raise ArenaError(f"step failed: {answer_text(answer)}")
        reward, terminated, truncated = seat.advance(answer.observation)
        info = seat.info(answer.observation)
        self._last_label = info["label"] = seat.label(index)
        info["masked"] = masked
        return seat.observe(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        text = state_as_ordered_string(self._seat.state)
        return f"step {self._seat.steps}: {self._last_label or '(reset)'}\n{text}\n"

    def close(self) -> None:
        """Leave the game (QUIT) and close the connection. Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._games.close()


#: Registered Gymnasium ids -> the constructor arguments they stand for (shipped tasks'
#: names, found by :func:`world.load_task`'s lookup).
ENV_IDS: dict[str, dict[str, Any]] = {
    "NetSecArena/Arena-v0": {},
    "NetSecArena/TwoNetworksTiny-v0": {"task": "two_networks_tiny"},
    "NetSecArena/Scenario1Small-v0": {"task": "scenario1_small_attacker"},
    "NetSecArena/DefendedTiny-v0": {"task": "defended_tiny"},
}


def register_envs() -> list[str]:
    """Register :data:`ENV_IDS` with Gymnasium (idempotent); the ids registered."""
    registered = []
    for env_id, kwargs in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="agents.gym_env:ArenaEnv",
                         vector_entry_point="agents.vector_env:ArenaVectorEnv", kwargs=dict(kwargs))
        registered.append(env_id)
    return registered


register_envs()
