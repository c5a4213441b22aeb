"""Reward functions: a weighted sum of named components (PrimAITE's ``reward_components``).

A task's ``agents:`` entry may carry ``reward_function: {reward_components: [{type, weight,
options}]}`` (parsed by :mod:`world.agents_config`). The seat that plays the entry (a
scripted agent, or the external seat a ``proxy`` entry stands for) then earns, each step,
``sum of weight * component``, and its step replies say how that sum came about in
``info["reward_breakdown"]``: ``{key: weight * component}``, whose values add up to the
reward (the reward *is* ``math.fsum`` of them). A key is the component's type; a type
listed again gets ``#2``, ``#3``, ... Seats without a reward function keep NetSecGame's
arithmetic exactly (reference netsecgame.md §3.4) and no breakdown.

Components (per step unless marked *final*; final ones count once, in the end-of-episode
reply, the same moment NetSecGame adds its success/fail reward):

=====================  =====================================================================
``netsecgame``         NetSecGame's own reward: ``env.rewards.step`` each step; *final*: the
                       success or fail reward (attackers, defenders) plus a defender's false
                       positives * ``false_positive`` (the default function is this, weight 1)
``step``               ``env.rewards.step`` each step (a PASS too)
``success``            *final*: ``env.rewards.success`` if the agent succeeded (an attacker
                       reached its goal; a defender: no attacker did)
``fail``               *final*: ``env.rewards.fail`` if the agent failed (an attacker timed out
                       or was detected; a defender: some attacker reached its goal)
``false-positive``     *final*: a defender's false positives * ``env.rewards.false_positive``
``new-controlled-host`` +1 per host the step newly put in the agent's controlled hosts
``new-data``           +1 per datum the step newly put in the agent's known data (per host)
``data-exfiltrated``   +1 per datum (log files aside: every host has its own) the step newly put
                       in the agent's known data at a public host
``detected``           1 when this step ended the agent's episode by detection (status Fail)
``attacker-blocked``   +1 when the step is a BlockIP that took effect (the agent's known blocks
                       changed) and blocks a host some attacker of the game controls
``shared-reward``      ``options: {agent: ref}``: that agent's most recent step reward (0 until
                       it has one; a proxy ref whose seat is absent gives 0). Cycles are refused
                       at load: two agents sharing each other's reward would feed it back forever
=====================  =====================================================================

Benign agents get no final part (as upstream). Weights default to 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from protocol import Action, ActionType, AgentRole, AgentStatus, GameState

if TYPE_CHECKING:
    from .seats import _Seat
    from .task import RewardConfig

__all__ = [
    "COMPONENT_TYPES",
    "FINAL_COMPONENTS",
    "RewardComponent",
    "RewardFunction",
    "assign_final_rewards",
    "zero_breakdown",
]

COMPONENT_TYPES: tuple[str, ...] = (
    "netsecgame", "step", "success", "fail", "false-positive", "new-controlled-host", "new-data",
    "data-exfiltrated", "detected", "attacker-blocked", "shared-reward",
)
#: Components with an end-of-episode part.
FINAL_COMPONENTS = frozenset({"netsecgame", "success", "fail", "false-positive"})
_SHAPING = frozenset({"new-controlled-host", "new-data", "data-exfiltrated"})
_PLAYING = (AgentStatus.Playing, AgentStatus.PlayingWithTimeout)


@attrs.frozen
class RewardComponent:
    """One weighted term; ``key`` names it in the breakdown, ``agent`` is shared-reward's ref."""

    type: str
    weight: float = 1.0
    agent: str | None = None
    key: str = ""


@attrs.frozen
class RewardFunction:
    """``sum of weight * component`` over ``components`` (see the module docstring)."""

    components: tuple[RewardComponent, ...]

    @property
    def shared(self) -> tuple[str, ...]:
        """The refs whose rewards this function shares."""
        return tuple(c.agent for c in self.components if c.type == "shared-reward" and c.agent)

    def step_breakdown(self, rewards: RewardConfig, old: GameState, new: GameState, action: Any,
                       detected: bool, attacker_hosts: Callable[[], frozenset[Any]],
                       reward_of: Callable[[str], float]) -> dict[str, float]:
        """The breakdown of one step (``action`` an Action or PASS): ``{key: weight * value}``."""
        changed = new is not old
        result: dict[str, float] = {}
        for component in self.components:
            kind = component.type
            value: float = 0
            if kind in ("netsecgame", "step"):
                value = rewards.step
            elif kind in _SHAPING:
                value = _shaping(kind, old, new) if changed else 0
            elif kind == "detected":
                value = 1 if detected else 0
            elif kind == "attacker-blocked":
                value = 1 if changed and _blocks_attacker(action, attacker_hosts) else 0
            elif kind == "shared-reward":
                value = reward_of(component.agent or "")
            result[component.key] = component.weight * value
        return result

    def add_final(self, breakdown: dict[str, float], success: float, fail: float, false_positive: float) -> None:
        """Add the end-of-episode parts to ``breakdown`` (in place)."""
        for component in self.components:
            kind = component.type
            if kind not in FINAL_COMPONENTS:
                continue
            value = {"netsecgame": success + fail + false_positive, "success": success, "fail": fail,
                     "false-positive": false_positive}[kind]
            breakdown[component.key] = breakdown.get(component.key, 0.0) + component.weight * value


def zero_breakdown(function: RewardFunction) -> dict[str, float]:
    """A breakdown of nothing (a bystander whose episode ended without a step of its own)."""
    return {component.key: 0.0 for component in function.components}


def _shaping(kind: str, old: GameState, new: GameState) -> int:
    if kind == "new-controlled-host":
        return len(new.controlled_hosts - old.controlled_hosts)
    count = 0
    public_only = kind == "data-exfiltrated"
    for host, data in new.known_data.items():
        if public_only and host.is_private():
            continue
        before = old.known_data.get(host)
        fresh = data if before is None else data - before
        count += sum(1 for datum in fresh if datum.type != "log") if public_only else len(fresh)
    return count


def _blocks_attacker(action: Any, attacker_hosts: Callable[[], frozenset[Any]]) -> bool:
    if not isinstance(action, Action) or action.action_type is not ActionType.BlockIP:
        return False
    blocked = action.parameters.get("blocked_host") or action.parameters.get("blocked_ip")
    return blocked in attacker_hosts()


def assign_final_rewards(players: Iterable[_Seat], rewards: RewardConfig,
                         false_positives: Mapping[Any, int]) -> None:
    """Reference §3.4, once every episode ended: attackers get success or fail; defenders
    success if no attacker succeeded (else fail), status set to match, plus their false
    positives; benign agents nothing. Seats with a reward function get the parts through
    it (their reward becomes the breakdown's sum); the others NetSecGame's arithmetic, in
    its order. ``final_part`` keeps what was added."""
    players = list(players)
    attack_won = any(s.role is AgentRole.Attacker and s.status is AgentStatus.Success for s in players)
    for s in players:
        before = s.reward
        success = fail = false_positive = 0
        if s.role is AgentRole.Attacker:
            if s.status is AgentStatus.Success:
                success = rewards.success
            else:
                fail = rewards.fail
        elif s.role is AgentRole.Defender:
            s.status = AgentStatus.Fail if attack_won else AgentStatus.Success
            if attack_won:
                fail = rewards.fail
            else:
                success = rewards.success
            false_positive = false_positives[s.seat] * rewards.false_positive
            s.trajectory.end_reason = s.status
        if s.reward_fn is None:
            if s.role is AgentRole.Attacker:
                s.reward += success if s.status is AgentStatus.Success else fail
            elif s.role is AgentRole.Defender:
                s.reward += fail if attack_won else success
                s.reward += false_positive
        else:
            breakdown = s.breakdown if s.breakdown is not None else zero_breakdown(s.reward_fn)
            s.reward_fn.add_final(breakdown, success, fail, false_positive)
            s.breakdown = breakdown
            s.reward = math.fsum(breakdown.values())
        s.final_part = s.reward - before
