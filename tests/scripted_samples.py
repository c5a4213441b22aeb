"""Tasks with ``agents:`` sections for the scripted-agent and reward tests, built from the
shipped task files, and a small driver that plays a policy through a GameSession."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import yaml

from agents.policies import Policy
from protocol import AgentRole, Observation
from world import GameSession, TaskConfig, parse_task

from .conftest import TASKS

DEFAULT = yaml.safe_load((TASKS / "default.yaml").read_text())
TINY = yaml.safe_load((TASKS / "two_networks_tiny_attacker.yaml").read_text())
DEFENDED = yaml.safe_load((TASKS / "defended_tiny.yaml").read_text())
DEFENDER_SECTION = DEFENDED["coordinator"]["agents"]["Defender"]


def task_of(base: dict[str, Any], agents: list[dict[str, Any]] | None = None, **changes: Any) -> TaskConfig:
    """``base`` with an agents: list and dotted-path changes (``arena.seats``, ...)."""
    document = copy.deepcopy(base)
    if agents is not None:
        document["agents"] = agents
    for path, value in changes.items():
        node = document
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_task(document, "scripted-test.yaml", TASKS)


def tiny_with(agents: list[dict[str, Any]], **changes: Any) -> TaskConfig:
    """two_networks_tiny with one attacker seat, a Defender configuration and ``agents``."""
    return task_of(TINY, agents, **{"coordinator.agents.Defender": DEFENDER_SECTION,
                                    "coordinator.agents.Benign": {"max_steps": 30}, **changes})


def periodic(ref: str = "green", **settings: Any) -> dict[str, Any]:
    """A GREEN periodic agent: do-nothing, then FindData on client_1, in turn."""
    return {"ref": ref, "team": "GREEN", "type": "periodic", "agent_settings": settings,
            "action_space": {"action_map": {
                0: {"action": "do-nothing"},
                1: {"action": "FindData", "options": {"source_host": "client_1", "target_host": "client_1"}}}}}


def breakdown_adds_up(observation: Observation) -> bool:
    parts = observation.info["reward_breakdown"]
    return math.fsum(parts.values()) == observation.reward


def play_attacker(session: GameSession, policy: Policy, rng: random.Random, *, seat: str = "red",
                  episodes: int = 1, max_steps: int = 200) -> list[list[Observation]]:
    """Join ``seat`` as the only external attacker and play ``episodes`` episodes with
    ``policy`` (resetting between them); every step's observation, per episode."""
    request = iter(range(1, 1_000_000))
    [joined] = session.join(seat, seat, AgentRole.Attacker, 0.0, next(request))
    observation = joined.observation
    played: list[list[Observation]] = []
    for episode in range(episodes):
        if episode:
            [reply] = session.reset(seat, 0.0, next(request))
            observation = reply.observation
        steps: list[Observation] = []
        for _ in range(max_steps):
            action = policy(observation, rng)
            [reply] = session.step(seat, action, 0.0, next(request))
            observation = reply.observation
            steps.append(observation)
            if observation.end:
                break
        else:
            raise AssertionError("the episode did not end")
        played.append(steps)
    return played
