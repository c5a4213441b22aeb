"""Client-side helpers: valid-action generation, canonical state text, observation
(de)serialisation, log parsing, hashing and crash-safe JSON-lines files.

They follow NetSecGame's ``netsecgame.utils.utils`` (reference netsecgame.md §10.3) so
agents written for NetSecGame keep working; the JSON-lines helpers deliberately differ
(no file-name mangling; :mod:`protocol.jsonl`'s whole-line appends, which the world's
trajectories use too, and a reader that skips and reports lines a crash cut short).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from protocol import IP, Action, ActionType, GameState, Observation
from protocol.jsonl import JsonlReport, append_jsonl_line, read_jsonl, read_jsonl_report

__all__ = [
    "JsonlReport",
    "append_jsonl_line",
    "generate_valid_actions",
    "get_file_hash",
    "get_logging_level",
    "get_str_hash",
    "observation_as_dict",
    "observation_from_dict",
    "observation_from_str",
    "observation_to_str",
    "parse_log_content",
    "read_jsonl",
    "read_jsonl_report",
    "read_trajectories_from_jsonl",
    "sorted_valid_actions",
    "state_as_ordered_string",
    "store_trajectories_to_jsonl",
]

logger = logging.getLogger(__name__)

_EMPTY: frozenset[Any] = frozenset()
_SCAN = ActionType.ScanNetwork
_FIND_SERVICES = ActionType.FindServices
_FIND_DATA = ActionType.FindData
_EXPLOIT = ActionType.ExploitService
_EXFILTRATE = ActionType.ExfiltrateData
_BLOCK = ActionType.BlockIP


# --------------------------------------------------------------------------- actions


#: Actions made by the generator, by (type, parameters...): reused while they are here.
_MADE: dict[tuple[Any, ...], Action] = {}
_MADE_LIMIT = 100_000


def generate_valid_actions(state: GameState, include_blocks: bool = False) -> set[Action]:
    """Every "sensible" action in ``state`` (see :func:`_valid_actions`), as a new set; the
    actions are computed once per state object (``GameState.cached``)."""
    return set(state.cached("valid+blocks" if include_blocks else "valid",
                            lambda s: frozenset(_valid_actions(s, include_blocks))))


def sorted_valid_actions(state: GameState, include_blocks: bool = False) -> tuple[Action, ...]:
    """The valid actions in an order that does not depend on hash seeds (for seeded random
    choices that reproduce across processes), computed once per state object."""
    from .policies import action_sort_key  # local: policies imports this module

    # The generator makes each action once (no duplicates), so no set is needed to sort.
    return state.cached("sorted+blocks" if include_blocks else "sorted", lambda s: tuple(
        sorted(_valid_actions(s, include_blocks), key=action_sort_key)))


def _valid_actions(state: GameState, include_blocks: bool = False) -> list[Action]:
    """Every "sensible" action in ``state``, as NetSecGame's generator (reference §10.3).

    For each controlled host ``c`` (``B[x]`` = ``state.known_blocks.get(x)``):
    ScanNetwork(c, n) per known network; FindServices(c, h) per known host h not in
    B[c]; ExploitService(c, h, s) per known service s of h, h not in B[c]; FindData(h, h)
    per controlled h not in B[c] (source == target, as upstream). ExfiltrateData(src, t, d)
    per known datum d at src and controlled t != src not in B[src]. With ``include_blocks``,
    BlockIP(s, t, b) for controlled s, t (t not in B[s]) and every known host b, using
    the key ``blocked_host``. Nothing is generated when no host is controlled.

    This runs on every step of every client: actions are built once and reused (``_MADE``).
    """
    controlled = state.controlled_hosts
    if not controlled:
        return []
    if len(_MADE) > _MADE_LIMIT:
        _MADE.clear()
    made = _MADE
    blocks = state.known_blocks
    networks = state.known_networks
    known_hosts = state.known_hosts
    services = [(host, tuple(found)) for host, found in state.known_services.items() if found]
    new = Action
    actions: list[Action] = []
    append = actions.append
    find_data_hosts: set[IP] = set()

    # Each action is looked up before it is built: states repeat their actions from step
    # to step, and a reused object keeps its hash, wire form and sort key (a new one would
    # compute all three again).
    for source in controlled:
        blocked = blocks.get(source) or _EMPTY
        for network in networks:
            key = (_SCAN, source, network)
            action = made.get(key)
            if action is None:
                action = made[key] = new(_SCAN, {"source_host": source, "target_network": network})
            append(action)
        for host in known_hosts:
            if host not in blocked:
                key = (_FIND_SERVICES, source, host)
                action = made.get(key)
                if action is None:
                    action = made[key] = new(_FIND_SERVICES, {"source_host": source, "target_host": host})
                append(action)
        for host, found in services:
            if host not in blocked:
                for service in found:
                    key = (_EXPLOIT, source, host, service)
                    action = made.get(key)
                    if action is None:
                        action = made[key] = new(_EXPLOIT, {"source_host": source, "target_host": host,
                                                            "target_service": service})
                    append(action)
        if len(find_data_hosts) < len(controlled):
            find_data_hosts.update(controlled - blocked if blocked else controlled)

    for host in find_data_hosts:
        key = (_FIND_DATA, host)
        action = made.get(key)
        if action is None:
            action = made[key] = new(_FIND_DATA, {"source_host": host, "target_host": host})
        append(action)

    for source, data in state.known_data.items():
        if not data:
            continue
        blocked = blocks.get(source) or _EMPTY
        targets = [t for t in controlled if t != source and t not in blocked]
        for datum in data:
            for target in targets:
                # Data compare by owner, id and type: the key adds size and content, so the
                # action carries the datum as this state holds it (a log's current text).
                key = (_EXFILTRATE, source, target, datum, datum.size, datum.content)
                action = made.get(key)
                if action is None:
                    action = made[key] = new(_EXFILTRATE, {"source_host": source, "target_host": target,
                                                           "data": datum})
                append(action)

    if include_blocks and known_hosts:
        for source in controlled:
            blocked = blocks.get(source) or _EMPTY
            for target in controlled:
                if target not in blocked:
                    for host in known_hosts:
                        key = (_BLOCK, source, target, host)
                        action = made.get(key)
                        if action is None:
                            action = made[key] = new(_BLOCK, {"source_host": source, "target_host": target,
                                                              "blocked_host": host})
                        append(action)
    return actions


# --------------------------------------------------------------------------- state text


def _sorted_items(items: Any) -> str:
    return ",".join(str(item) for item in sorted(items))


def _sorted_map(mapping: Mapping[IP, Any]) -> str:
    return "".join(f"{host}:[{_sorted_items(mapping[host])}]" for host in sorted(mapping))


def state_as_ordered_string(state: GameState) -> str:
    """A canonical text form of a state, independent of set order (reference §10.3).

    Used as a table key by tabular agents, so it must match upstream byte for byte,
    including the space before ``blocks`` and the missing separator between hosts
    inside the maps.
    """
    return (
        f"nets:[{_sorted_items(state.known_networks)}],"
        f"hosts:[{_sorted_items(state.known_hosts)}],"
        f"controlled:[{_sorted_items(state.controlled_hosts)}],"
        f"services:{{{_sorted_map(state.known_services)}}},"
        f"data:{{{_sorted_map(state.known_data)}}}, "
        f"blocks:{{{_sorted_map(state.known_blocks)}}}"
    )


# --------------------------------------------------------------------------- observations


def observation_as_dict(observation: Observation) -> dict[str, Any]:
    """The wire/dict form ``{state, reward, end, info}`` (reference §1.10)."""
    return {
        "state": observation.state.as_dict,
        "reward": observation.reward,
        "end": observation.end,
        "info": dict(observation.info),
    }


def observation_to_str(observation: Observation) -> str:
    """The JSON text of :func:`observation_as_dict`."""
    return json.dumps(observation_as_dict(observation))


def observation_from_dict(data: Mapping[str, Any]) -> Observation:
    """Rebuild an Observation; ``state`` must be a dict, else ValueError.

    ``reward`` is coerced to float and ``end`` to bool, with defaults 0.0, False and
    ``{}`` for a missing reward, end or info (reference §10.3).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"Expected a dict for the observation, got {type(data).__name__}")
    state_data = data.get("state")
    if not isinstance(state_data, dict):
        raise ValueError(f"Expected a dict for 'state', got {type(state_data).__name__}")
    state = GameState.from_dict(state_data)  # ProtocolError is a ValueError
    try:
        reward = float(data.get("reward", 0.0))
    except (TypeError, ValueError):
        raise ValueError(f"Expected a number for 'reward', got {data.get('reward')!r}") from None
    info = data.get("info", {})
    if info is None:
        info = {}
    elif not isinstance(info, Mapping):
        raise ValueError(f"Expected a dict for 'info', got {type(info).__name__}")
    return Observation(
        state=state, reward=reward, end=bool(data.get("end", False)), info=dict(info)
    )


def observation_from_str(text: str | bytes) -> Observation:
    """Rebuild an Observation from its JSON text; ValueError on any malformed input."""
    try:
        data = json.loads(text)
    except TypeError:
        raise ValueError(f"Expected JSON text, got {type(text).__name__}") from None
    except RecursionError:
        raise ValueError("Observation JSON is nested too deeply") from None
    return observation_from_dict(data)


# --------------------------------------------------------------------------- logs, hashes


def parse_log_content(log_content: str | bytes) -> list[dict[str, Any]] | None:
    """Parse a host log (a Data content string) into ``{source_host, action_type}`` dicts.

    The log format is ``[{"source_host": "a.b.c.d", "action_type": "ActionType.X"}, ...]``
    (reference §9). Returns None, and logs why, when the text is not such a JSON list.
    """
    try:
        entries = json.loads(log_content)
        if not isinstance(entries, list):
            raise TypeError(f"a log is a JSON list, got {type(entries).__name__}")
        return [
            {
                "source_host": IP(entry["source_host"]),
                "action_type": ActionType.from_string(entry["action_type"]),
            }
            for entry in entries
        ]
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        logger.error("Cannot parse log content: %s", error)
        return None


def get_file_hash(
    filepath: str | os.PathLike[str], hash_func: str = "sha256", chunk_size: int = 4096
) -> str:
    """Hex digest of a file, read in chunks so large files need little memory."""
    digest = hashlib.new(hash_func)
    with open(filepath, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def get_str_hash(text: str, hash_func: str = "sha256") -> str:
    """Hex digest of a string's UTF-8 bytes."""
    return hashlib.new(hash_func, text.encode("utf-8")).hexdigest()


_LOG_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def get_logging_level(name: str) -> int:
    """Map a level name (any case) to its logging level; unknown names give ERROR."""
    return _LOG_LEVELS.get(str(name).upper(), logging.ERROR)


# --------------------------------------------------------------------------- JSON lines


def store_trajectories_to_jsonl(
    trajectories: Any, dir: str | os.PathLike[str], filename: str
) -> Path:
    """Append one trajectory object to ``dir/filename`` (``.jsonl`` added if missing).

    Upstream's name for this helper; unlike upstream the file name is not stripped
    of trailing ``j s o n l`` characters.
    """
    name = filename if filename.endswith(".jsonl") else f"{filename}.jsonl"
    path = Path(dir) / name
    append_jsonl_line(path, trajectories)
    return path


def read_trajectories_from_jsonl(filepath: str | os.PathLike[str]) -> list[Any]:
    """All trajectory objects of a JSON-lines file (upstream only has a stub); lines a
    crash cut short are skipped with a warning (see :func:`read_jsonl_report`)."""
    return list(read_jsonl(filepath))
