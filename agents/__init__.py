"""Agent side of netsec-arena: the clients (``BaseAgent``, ``ParallelBaseAgent``),
NetSecGame's client helpers, scripted policies, trace monitoring and in-process play.

Every name loads its module on first use: ``import agents.policies`` (the scripted
agents a world runs) loads neither ZeroMQ nor the clients, and the RL environments (the
``rl`` extra: gymnasium, pettingzoo, numpy) are only needed when used: ``agents.ArenaEnv`` (Gymnasium),
``agents.ArenaParallelEnv`` (PettingZoo), ``agents.ArenaVectorEnv`` (VectorEnv and
EnvPool-style), ``agents.ActionMasks``, ``agents.FlatObservation``,
``agents.ObservationLayout``.

>>> from agents import generate_valid_actions
>>> from protocol import IP, GameState, Network
>>> state = GameState(controlled_hosts={IP("10.0.0.2")}, known_hosts={IP("10.0.0.2")},
...                   known_networks={Network("10.0.0.0", 24)})
>>> sorted(a.action_type.value for a in generate_valid_actions(state))
['FindData', 'FindServices', 'ScanNetwork']
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name and the module it lives in; loaded on first use (PEP 562).
_NAMES = {
    "BaseAgent": "agents.client",
    "RequestFailure": "agents.client",
    "ParallelBaseAgent": "agents.parallel",
    "POLICIES": "agents.policies",
    "Policy": "agents.policies",
    "action_sort_key": "agents.policies",
    "benign_agent": "agents.policies",
    "blocking_defender": "agents.policies",
    "kill_chain_attacker": "agents.policies",
    "random_attacker": "agents.policies",
    "TrajectoryRecorder": "agents.trajectory_recorder",
    "JsonlReport": "agents.utils",
    "append_jsonl_line": "agents.utils",
    "generate_valid_actions": "agents.utils",
    "get_file_hash": "agents.utils",
    "get_logging_level": "agents.utils",
    "get_str_hash": "agents.utils",
    "observation_as_dict": "agents.utils",
    "observation_from_dict": "agents.utils",
    "observation_from_str": "agents.utils",
    "observation_to_str": "agents.utils",
    "parse_log_content": "agents.utils",
    "read_jsonl": "agents.utils",
    "read_jsonl_report": "agents.utils",
    "read_trajectories_from_jsonl": "agents.utils",
    "state_as_ordered_string": "agents.utils",
    "store_trajectories_to_jsonl": "agents.utils",
}
#: The RL environments and their parts (the ``rl`` extra), likewise.
_RL_NAMES = {
    "ArenaEnv": "agents.gym_env",
    "ArenaParallelEnv": "agents.pettingzoo_env",
    "ArenaVectorEnv": "agents.vector_env",
    "ActionMasks": "agents.action_masks",
    "FlatObservation": "agents.flat_observation",
    "ObservationLayout": "agents.flat_observation",
}

_LAZY = {**_NAMES, **_RL_NAMES}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
