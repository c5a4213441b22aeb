"""The keys a task file may have, section by section, and the line each one is on.

Every section is strict: a key that is not listed here is a :class:`TaskConfigError`
naming the file, the line, the key path and the closest known key
(``task.yaml:7: coordinator.agents.Attacker.max_stpes: unknown key (did you mean
max_steps?)``), because NetSecGame's habit of skipping what it does not know turns a typo
into a different game: ``max_stpes: 50`` leaves the attacker without a step limit.

Keys NetSecGame 0.2.0 reads but never uses (:data:`NETSECGAME_IGNORED_KEYS`) are accepted
on purpose, so its task files load unchanged, and ignored as it ignores them. The
``arena`` and ``agents`` sections are checked by their own readers
(:func:`world.task_reader.read_seats`, :mod:`world.agents_config`) with the same
messages.

:func:`load_document` parses the YAML text once and maps every key path to its line, in
the path form :class:`~world.task_reader.TaskReader` uses in its errors
(``env.rewards.step``, ``agents[0].type``, ``...known_data.213.47.23.195[0]``).

>>> document, lines = load_document("env:\\n  rewards: {step: -1}\\n", "t.yaml")
>>> document, lines["env.rewards.step"]
({'env': {'rewards': {'step': -1}}}, 2)
>>> check_keys(TaskReader("t.yaml", lines), {"env": {"scenario": "x", "use_firewal": True}})
Traceback (most recent call last):
...
world.task_reader.TaskConfigError: t.yaml:1: env.use_firewal: unknown key (did you mean use_firewall?)
"""

from __future__ import annotations

import logging
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .task_reader import TaskConfigError, TaskReader, unknown_key

__all__ = [
    "ARENA_KEYS",
    "ENV_KEYS",
    "GOAL_KEYS",
    "NETSECGAME_IGNORED_KEYS",
    "REWARD_KEYS",
    "ROLE_KEYS",
    "START_KEYS",
    "TOP_KEYS",
    "check_keys",
    "load_document",
]

log = logging.getLogger(__name__)

TOP_KEYS = ("coordinator", "env", "arena", "agents")
#: Role sections, looked up by exact key as NetSecGame does (case matters).
ROLE_KEYS = ("Attacker", "Defender", "Benign")
_PLAYER_KEYS = ("max_steps", "goal", "start_position")
START_KEYS = ("known_networks", "known_hosts", "controlled_hosts", "known_services", "known_data")
GOAL_KEYS = (*START_KEYS, "known_blocks")
ENV_KEYS = ("scenario", "scenario_file", "use_global_defender", "use_dynamic_addresses", "use_firewall",
            "save_trajectories", "required_players", "rewards")
REWARD_KEYS = ("step", "success", "fail", "false_positive")
ARENA_KEYS = ("name", "seats", "start", "allowed_roles", "hold_timeout", "seat_lease", "trajectory_dir",
              "all_actions")

#: Keys NetSecGame 0.2.0 reads (or whose readers exist) but never uses, per section:
#: accepted so that its task files load unchanged, and ignored as it ignores them
#: (reference netsecgame.md §4.1 and §4.2; netsecgame/game/config_parser.py). Their
#: content is not checked: ``env.actions`` may hold any action names and fields.
NETSECGAME_IGNORED_KEYS: dict[str, tuple[str, ...]] = {
    # §4.1: deprecated, never read by the coordinator
    "goal": ("is_any_part_of_goal_random",),
    # §4.1: known_blocks is not read for the start state; blocked_ips is legacy
    "start_position": ("known_blocks", "blocked_ips"),
    # §4.2: random_seed (the seed is the server's --seed), actions.<name>.prob_success
    # (actions are deterministic), and the legacy keys of older task files
    "env": ("random_seed", "actions", "store_replay_buffer", "goal_reward", "detection_reward", "step_reward"),
}
#: Legacy keys that look as if they set a reward: a warning says where rewards are set.
_LEGACY_REWARDS = ("goal_reward", "detection_reward", "step_reward")

#: Where each key belongs, for a key written in the wrong section (``env.max_steps``).
_HOMES: dict[str, tuple[str, ...]] = {}
for _section, _keys in (("the top level", TOP_KEYS), ("coordinator", ("agents",)),
                        ("coordinator.agents", ROLE_KEYS), ("coordinator.agents.<Role>", _PLAYER_KEYS),
                        ("coordinator.agents.<Role>.goal", ("description", *GOAL_KEYS)),
                        ("coordinator.agents.<Role>.start_position", START_KEYS), ("env", ENV_KEYS),
                        ("env.rewards", REWARD_KEYS), ("arena", ARENA_KEYS)):
    for _key in _keys:
        _HOMES[_key] = (*_HOMES.get(_key, ()), _section)

_BENIGN_HINT = ("NetSecGame fixes the Benign role's start and goal (reference netsecgame.md §4.1): "
                "only max_steps is read")


def _home_hint(name: Any, section: str) -> str | None:
    homes = [home for home in _HOMES.get(str(name), ()) if home != section]
    return f"{name} belongs in {' or '.join(homes)}" if homes else None


def _strict(reader: TaskReader, value: Any, path: str, known: tuple[str, ...], *, section: str,
            ignored: tuple[str, ...] = (), hint: str | None = None) -> dict[Any, Any]:
    """``value`` as a mapping whose keys are all ``known`` or ``ignored``; the first other
    key fails with the closest known key (ignored keys are accepted, never suggested)."""
    mapping = reader.mapping(value, path or "(top level)")
    for name in mapping:
        if name in known or name in ignored:
            continue
        child = f"{path}.{name}" if path else str(name)
        raise reader.fail(child, unknown_key(name, known, hint or _home_hint(name, section)))
    return mapping


def check_keys(reader: TaskReader, document: Any) -> None:
    """Refuse any unknown key of the top level, ``coordinator`` (its role sections, their
    ``goal`` and ``start_position``), ``env`` and ``env.rewards``."""
    root = _strict(reader, document, "", TOP_KEYS, section="the top level")
    coordinator = _strict(reader, root.get("coordinator"), "coordinator", ("agents",), section="coordinator")
    roles = _strict(reader, coordinator.get("agents"), "coordinator.agents", ROLE_KEYS,
                    section="coordinator.agents")
    for role, value in roles.items():
        path = f"coordinator.agents.{role}"
        if role == "Benign":
            _strict(reader, value, path, ("max_steps",), section=path, hint=_BENIGN_HINT)
            continue
        player = _strict(reader, value, path, _PLAYER_KEYS, section="coordinator.agents.<Role>")
        _strict(reader, player.get("goal"), f"{path}.goal", ("description", *GOAL_KEYS),
                section="coordinator.agents.<Role>.goal", ignored=NETSECGAME_IGNORED_KEYS["goal"])
        _strict(reader, player.get("start_position"), f"{path}.start_position", START_KEYS,
                section="coordinator.agents.<Role>.start_position",
                ignored=NETSECGAME_IGNORED_KEYS["start_position"])
    env = _strict(reader, root.get("env"), "env", ENV_KEYS, section="env", ignored=NETSECGAME_IGNORED_KEYS["env"])
    _strict(reader, env.get("rewards"), "env.rewards", REWARD_KEYS, section="env.rewards")
    legacy = [key for key in _LEGACY_REWARDS if key in env]
    if legacy:
        log.warning("%s: env.%s: legacy keys NetSecGame ignores, as we do; rewards are set in env.rewards "
                    "(absent ones are 0)", reader.source, ", env.".join(legacy))


def load_document(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """The YAML document (as ``yaml.safe_load`` gives it) and the line of every key path.
    A YAML syntax error is a one-line TaskConfigError with its line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
        lines = _key_lines(loader, node) if node is not None else {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise TaskConfigError(source, "(yaml)", f"not valid YAML: {problem}",
                              mark.line + 1 if mark is not None else None) from None
    finally:
        loader.dispose()
    return document, lines


def _key_lines(loader: yaml.SafeLoader, root: Node) -> dict[str, int]:
    """Key path -> line (1-based) of every mapping key and sequence item. Walked after
    construction, so merged keys (``<<``) are in place; a node shared through aliases is
    walked once (its other paths fall back to their enclosing key's line)."""
    lines: dict[str, int] = {}
    seen: set[int] = set()
    stack: list[tuple[str, Node]] = [("", root)]
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    continue
                name = key_node.value if key_node.tag == "tag:yaml.org,2002:str" else \
                    str(loader.construct_object(key_node))
                child = f"{path}.{name}" if path else name
                lines[child] = key_node.start_mark.line + 1
                stack.append((child, value_node))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{path}[{index}]"
                lines[child] = item.start_mark.line + 1
                stack.append((child, item))
    return lines
