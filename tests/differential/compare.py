"""The differential harness's task file and reply comparison.

``task_document``/``write_task`` build the NetSecGame task YAML (reference §4) both servers
play; ``normalize_reply`` drops what differs by design and turns states into sets
(reference §9); ``first_difference`` finds the first place two normalized replies differ.
Pure helpers: importing this module has no side effects.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from world import load_scenario

__all__ = [
    "C_AND_C",
    "first_difference",
    "goal_datum",
    "normalize_reply",
    "normalize_state",
    "task_document",
    "write_task",
]

#: The C&C host every scenario has (reference §5.3): a start host and the exfiltration target.
C_AND_C = "213.47.23.195"
_MISSING = "<absent>"


# --------------------------------------------------------------------------- the task file
def goal_datum(scenario: str) -> tuple[str, str]:
    """The datum to exfiltrate: User1/DataFromServer1 where it exists, else the first
    non-log datum (sorted), so the goal is reachable in every scenario."""
    data = sorted({(d.owner, d.id) for found in load_scenario(scenario).node_data.values()
                   for d in found if d.type != "log"})
    if not data:
        raise ValueError(f"scenario {scenario} holds no data to exfiltrate")
    return ("User1", "DataFromServer1") if ("User1", "DataFromServer1") in data else data[0]


def task_document(scenario: str, global_defender: bool, max_steps: int) -> dict[str, Any]:
    """A NetSecGame task (reference §4) for one attacker: start on the scenario's first
    start candidate and the C&C, goal: exfiltrate one datum to the C&C.

    >>> doc = task_document("two_networks_tiny", True, 40)
    >>> doc["coordinator"]["agents"]["Attacker"]["start_position"]["controlled_hosts"]
    ['192.168.2.2', '213.47.23.195']
    >>> doc["coordinator"]["agents"]["Attacker"]["goal"]["known_data"]
    {'213.47.23.195': [['User1', 'DataFromServer1']]}
    >>> doc["env"]["use_global_defender"], doc["env"]["rewards"]["false_positive"]
    (True, -5)
    """
    start = str(load_scenario(scenario).start_candidates[0])
    owner, datum = goal_datum(scenario)
    return {
        "coordinator": {"agents": {"Attacker": {
            "max_steps": max_steps,
            "goal": {
                "description": f"Exfiltrate {datum} to the C&C server ({C_AND_C}).",
                "is_any_part_of_goal_random": False,
                "known_networks": [], "known_hosts": [], "controlled_hosts": [],
                "known_services": {}, "known_data": {C_AND_C: [[owner, datum]]}, "known_blocks": {},
            },
            "start_position": {
                "known_networks": [], "known_hosts": [], "controlled_hosts": [start, C_AND_C],
                "known_services": {}, "known_data": {},
            },
        }}},
        "env": {
            "scenario": scenario,
            "use_global_defender": global_defender,
            "use_dynamic_addresses": False,
            "use_firewall": True,
            "save_trajectories": False,
            "required_players": 1,
            "rewards": {"step": -1, "success": 100, "fail": -10, "false_positive": -5},
        },
    }


def write_task(directory: Path, scenario: str, global_defender: bool, max_steps: int) -> Path:
    """Write the task YAML; its stem is the task's name on our broker."""
    path = directory / f"differential_{scenario}_gd{int(global_defender)}.yaml"
    path.write_text(yaml.safe_dump(task_document(scenario, global_defender, max_steps), sort_keys=False))
    return path


# --------------------------------------------------------------------------- comparing
def _as_set(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def normalize_state(state: Any) -> Any:
    """A GameState dict with every list (top level, or per host) as a sorted set."""
    if not isinstance(state, dict):
        return state
    result: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list):
            result[key] = _as_set(value)
        elif isinstance(value, dict):
            result[key] = {host: _as_set(items) if isinstance(items, list) else items
                           for host, items in value.items()}
        else:
            result[key] = value
    return result


def normalize_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs by design (reference §9): ``to_agent`` (the peer address) and
    ``configuration_hash`` (random per upstream start); states become sets.

    >>> reply = normalize_reply({"to_agent": ["127.0.0.1", 1], "status": "GameStatus.OK",
    ...                          "message": {"configuration_hash": "ab", "max_steps": 3},
    ...                          "observation": {"state": {"known_hosts": [{"ip": "b"}, {"ip": "a"}]}}})
    >>> sorted(reply), reply["message"]
    (['message', 'observation', 'status'], {'max_steps': 3})
    >>> reply["observation"]["state"]["known_hosts"]
    ['{"ip": "a"}', '{"ip": "b"}']
    """
    reply = json.loads(json.dumps(reply))
    reply.pop("to_agent", None)
    observation = reply.get("observation")
    if isinstance(observation, dict) and "state" in observation:
        observation["state"] = normalize_state(observation["state"])
    message = reply.get("message")
    if isinstance(message, dict):
        message.pop("configuration_hash", None)
        trajectory = message.get("last_trajectory")
        if isinstance(trajectory, dict) and isinstance(trajectory.get("trajectory"), dict):
            inner = trajectory["trajectory"]
            inner["states"] = [normalize_state(s) for s in inner.get("states", [])]
    return reply


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python; not on the wire
        return type(a) is type(b) and a == b
    return bool(a == b)


def first_difference(upstream: Any, ours: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first place two normalized replies differ: ``(path, upstream value, our value)``.

    Lists of strings (normalized sets) are reported as their set differences.

    >>> first_difference({"end": True, "reward": 99}, {"end": 1, "reward": 99.0})
    ('end', True, 1)
    >>> first_difference({"s": ['"a"', '"b"']}, {"s": ['"a"', '"c"']})
    ('s', {'only_upstream': ['"b"']}, {'only_ours': ['"c"']})
    >>> first_difference({"m": {"x": 1}}, {"m": {}})
    ('m.x', 1, '<absent>')
    """
    if isinstance(upstream, dict) and isinstance(ours, dict):
        for key in sorted(set(upstream) | set(ours), key=str):
            found = first_difference(upstream.get(key, _MISSING), ours.get(key, _MISSING),
                                     f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(upstream, list) and isinstance(ours, list):
        if all(isinstance(item, str) for item in upstream + ours):
            only_upstream = sorted((Counter(upstream) - Counter(ours)).elements())
            only_ours = sorted((Counter(ours) - Counter(upstream)).elements())
            if only_upstream or only_ours:
                return path, {"only_upstream": only_upstream}, {"only_ours": only_ours}
            return None
        if len(upstream) != len(ours):
            return f"{path}.length", len(upstream), len(ours)
        for index, (a, b) in enumerate(zip(upstream, ours, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(upstream, dict | list) or isinstance(ours, dict | list):
        return (path, upstream, ours) if upstream != ours else None
    return None if _same_scalar(upstream, ours) else (path, upstream, ours)

