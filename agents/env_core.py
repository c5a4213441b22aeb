"""What every environment does for one learning agent: its fixed action table, masks,
observation encoder and spaces, and its episode bookkeeping.

The Gymnasium, PettingZoo and vector environments differ in how many agents they step
and how they batch; what an agent *is* to them is this :class:`AgentSeat`:

* the action table of its role (:meth:`protocol.action_table.ActionTable.for_role`), so
  ``Discrete(len(table))`` indices mean the same action in every episode;
* **masks** (:class:`~agents.action_masks.ActionMasks`): exactly NetSecGame's valid
  actions; a masked index is played as a **counted no-op** (``protocol.PASS``, a step that
  changes nothing), flagged ``info["masked"] = True``: never a crash;
* the flat observation (:mod:`agents.flat_observation`), as a ``Box(0, 1, (n,), float32)``,
  or with ``flatten=False`` as a ``Dict`` of the same blocks (``{"hosts": ..., ...}``);
* ``terminated`` for an end by the game's outcome (Success, Fail: goal reached,
  detected, the defender's result), ``truncated`` for the step limit (TimeoutReached).

Tables, masks and encoders are shared by every seat of one layout and role, so the masks
and vectors cached on a shared state serve them all.
"""

from __future__ import annotations

from typing import Any

from .extras import needs

with needs("the RL environments (agents.env_core)", "rl"):
    import numpy as np
    from gymnasium import spaces

from protocol import PASS, Action, AgentRole, AgentStatus, GameState, Observation, PassAction, ReplyBody
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

from .action_masks import ActionMasks
from .flat_observation import FlatObservation, ObservationLayout

__all__ = ["NO_OP", "AgentSeat", "as_role", "end_flags"]

#: The counted no-op a masked (or missing) action is played as: a game step of the seat
#: that changes nothing, counts towards max_steps and earns the step reward.
NO_OP = PASS

#: Reply info keys an environment passes on to its users' ``info`` when the world sends them.
PASSED_ON = ("reward_breakdown", "scripted")

_VIEWS: dict[tuple[Any, AgentRole, bool], tuple[ActionTable, ActionMasks, FlatObservation, Any, Any]] = {}


def as_role(role: AgentRole | str) -> AgentRole:
    return role if isinstance(role, AgentRole) else AgentRole.from_string(role)


def end_flags(observation: Observation) -> tuple[bool, bool, str | None]:
    """``(terminated, truncated, end_reason)`` of an observation.

    >>> end_flags(Observation(GameState(), -11, True, {"end_reason": "AgentStatus.TimeoutReached"}))
    (False, True, 'AgentStatus.TimeoutReached')
    >>> end_flags(Observation(GameState(), 99, True, {"end_reason": "AgentStatus.Success"}))[:2]
    (True, False)
    """
    if not observation.end:
        return False, False, None
    reason = observation.info.get("end_reason")
    try:
        status = AgentStatus.from_string(str(reason)) if reason is not None else None
    except ValueError:
        status = None
    truncated = status is AgentStatus.TimeoutReached
    return not truncated, truncated, None if reason is None else str(reason)


def _views(catalog: Catalog, role: AgentRole, flatten: bool) -> tuple[ActionTable, ActionMasks, FlatObservation,
                                                                     Any, Any]:
    key = (catalog.layout, role, flatten)
    views = _VIEWS.get(key)
    if views is None:
        table = ActionTable.for_role(catalog, role)
        encoder = FlatObservation(ObservationLayout.of(catalog))
        if flatten:
            observation_space: Any = spaces.Box(0.0, 1.0, (encoder.size,), np.float32)
        else:
            observation_space = spaces.Dict({block: spaces.Box(0.0, 1.0, (stop - start,), np.float32)
                                             for block, (start, stop) in encoder.layout.blocks.items()
                                             if stop > start})
        if len(_VIEWS) > 64:
            _VIEWS.clear()
        views = _VIEWS[key] = (table, ActionMasks(table, role), encoder, observation_space,
                               spaces.Discrete(len(table)))
    return views


class AgentSeat:
    """One learning agent of an environment (see the module docstring). Spaces are made
    once per (layout, role, flatten) and shared: ``observation_space`` and
    ``action_space`` are the same objects on every call, as PettingZoo's API test wants."""

    def __init__(self, name: str, role: AgentRole | str, catalog: Catalog, *, flatten: bool = True,
                 state_in_info: bool = True) -> None:
        self.name = name
        self.role = as_role(role)
        self.flatten = flatten
        #: ``info["state"]``: the structured GameState (off for users whose framework
        #: deep-copies every info, e.g. SB3's DummyVecEnv: a state's cached valid actions
        #: are copied with it).
        self.state_in_info = state_in_info
        self.table, self.masks, self.encoder, self.observation_space, self.action_space = _views(
            catalog, self.role, flatten)
        self.layout = self.encoder.layout
        self.catalog = catalog
        self.state: GameState = GameState()
        self.steps = 0
        self.max_steps: int | None = None
        self.ended = False
        self.end_reason: str | None = None

    # ------------------------------------------------------------------ episodes
    def begin(self, answer: ReplyBody, catalog: Catalog) -> None:
        """A join or reset reply: a new episode at the catalog's addresses."""
        if catalog.layout != self.table.layout:
            raise ValueError(f"{self.name}: the game's scenario changed under the environment")
        assert answer.observation is not None
        self.catalog = catalog
        self.state = answer.observation.state
        self.steps = 0
        self.ended = False
        self.end_reason = None
        message = answer.message if isinstance(answer.message, dict) else {}
        max_steps = message.get("max_steps")
        self.max_steps = max_steps if isinstance(max_steps, int) and max_steps > 0 else None

    def resolve(self, action: Any) -> tuple[Action | PassAction, bool, int | None]:
        """What to send for ``action`` (a table index or an :class:`~protocol.Action`):
        ``(action to send, masked, table index or None)``. A masked or unknown action is
        the counted no-op. Out-of-range indices are a ValueError, as for any Discrete."""
        if action is NO_OP:
            return NO_OP, False, None
        if isinstance(action, Action):
            index = self.table.index_of(action, self.catalog)
        else:
            index = int(action)
            if not 0 <= index < len(self.table):
                raise ValueError(f"action {action!r} is outside Discrete({len(self.table)})")
        if index is None or not self.masks.mask(self.state, self.catalog)[index]:
            return NO_OP, True, index
        return self.table.action(index, self.catalog), False, index

    def advance(self, observation: Observation) -> tuple[float, bool, bool]:
        """Take a step's observation: ``(reward, terminated, truncated)``."""
        self.steps += 1
        self.state = observation.state
        terminated, truncated, reason = end_flags(observation)
        if terminated or truncated:
            self.ended = True
            self.end_reason = reason
        return float(observation.reward), terminated, truncated

    # ------------------------------------------------------------------ what users see
    def observe(self) -> Any:
        vector = self.encoder.encode(self.state, self.catalog, steps=self.steps, max_steps=self.max_steps)
        if self.flatten:
            return vector
        return {block: vector[start:stop].copy() for block, (start, stop) in self.layout.blocks.items()
                if stop > start}

    def mask(self) -> np.ndarray:
        """The current action mask (a copy the caller may keep)."""
        return self.masks.mask(self.state, self.catalog).copy()

    def info(self, observation: Observation | None = None) -> dict[str, Any]:
        """The info of the current state; with a step's observation, what its reply said too."""
        info: dict[str, Any] = {"action_mask": self.mask(), "steps": self.steps}
        if self.state_in_info:
            info["state"] = self.state
        if self.end_reason is not None:
            info["end_reason"] = self.end_reason
        if observation is not None:
            for key in PASSED_ON:
                value = observation.info.get(key)
                if value is not None:
                    info[key] = dict(value) if isinstance(value, dict) else list(value) \
                        if isinstance(value, (list, tuple)) else value
        return info

    def label(self, index: int | None) -> str | None:
        return None if index is None else self.table.labels[index]
