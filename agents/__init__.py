"""Agent side of netsec-arena: the clients (``BaseAgent``, ``ParallelBaseAgent``),
NetSecGame's client helpers, scripted policies, trace monitoring and in-process play.

The RL environments (the ``rl`` extra: gymnasium, pettingzoo, numpy) load on first use,
so ``import agents`` works without them: ``agents.ArenaEnv`` (Gymnasium),
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

from .client import BaseAgent, RequestFailure
from .parallel import ParallelBaseAgent
from .policies import (
    POLICIES,
    Policy,
    action_sort_key,
    benign_agent,
    blocking_defender,
    kill_chain_attacker,
    random_attacker,
)
from .trajectory_recorder import TrajectoryRecorder
from .utils import (
    JsonlReport,
    append_jsonl_line,
    generate_valid_actions,
    get_file_hash,
    get_logging_level,
    get_str_hash,
    observation_as_dict,
    observation_from_dict,
    observation_from_str,
    observation_to_str,
    parse_log_content,
    read_jsonl,
    read_jsonl_report,
    read_trajectories_from_jsonl,
    state_as_ordered_string,
    store_trajectories_to_jsonl,
)

__all__ = [
    "POLICIES",
    "BaseAgent",
    "JsonlReport",
    "ParallelBaseAgent",
    "Policy",
    "RequestFailure",
    "TrajectoryRecorder",
    "action_sort_key",
    "append_jsonl_line",
    "benign_agent",
    "blocking_defender",
    "generate_valid_actions",
    "get_file_hash",
    "get_logging_level",
    "get_str_hash",
    "kill_chain_attacker",
    "observation_as_dict",
    "observation_from_dict",
    "observation_from_str",
    "observation_to_str",
    "parse_log_content",
    "random_attacker",
    "read_jsonl",
    "read_jsonl_report",
    "read_trajectories_from_jsonl",
    "state_as_ordered_string",
    "store_trajectories_to_jsonl",
]

#: Names loaded on first use (they need the ``rl`` extra), and their modules.
_LAZY = {
    "ArenaEnv": "agents.gym_env",
    "ArenaParallelEnv": "agents.pettingzoo_env",
    "ArenaVectorEnv": "agents.vector_env",
    "ActionMasks": "agents.action_masks",
    "FlatObservation": "agents.flat_observation",
    "ObservationLayout": "agents.flat_observation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
