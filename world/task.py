"""Task configuration: NetSecGame task YAML files, loaded unchanged, plus our extensions.

A task file has NetSecGame's two sections (reference netsecgame.md §4):
``coordinator.agents.<Role>`` (max_steps, start_position, goal) and ``env`` (scenario,
rewards, switches). netsec-arena adds:

* ``env.scenario_file``: a topology YAML of our own (relative to the task file),
  instead of a registered ``env.scenario``;
* an ``arena`` section (strict: unknown keys are rejected)::

      arena:
        name: my-task            # how agents and the broker name the task (default: file stem)
        seats: {Attacker: 1, Defender: 1}   # seats per role in one game
                                 # (default: env.required_players attackers)
        start: {Attacker: 1}     # players per role a game needs to start (default: every
                                 # seat); later players join the running episode
        allowed_roles: [Attacker, Defender] # default: the roles that have seats
        hold_timeout: 60         # seconds a held reply may wait (default 60)
        seat_lease: 600          # seconds a silent seat is kept (default 600)
        trajectory_dir: logs/trajectories   # where env.save_trajectories writes
        all_actions: false       # join replies carry upstream's WhiteBox ``all_actions``
                                 # (every concrete action, a JSON string; reference §7.1)

* an ``agents`` section (strict): agents the world plays inside each game and reward
  functions, PrimAITE-style (:mod:`world.agents_config`, :mod:`world.scripted`,
  :mod:`world.rewards`).

What NetSecGame silently mangles or skips we reject at load, naming the file, the line,
the key and the reason (DESIGN §3): an unknown key in any section, with the closest known
one (``max_stpes`` would otherwise leave the attacker without a step limit; the keys
NetSecGame reads but never uses are accepted, :data:`world.task_keys.NETSECGAME_IGNORED_KEYS`),
an invalid IP key, ``all`` in known_data, a non-numeric max_steps, an unknown token in a
host list, a missing view key. The keyword ``all_local`` where NetSecGame ignores it
(known_networks, as a services/data key) is accepted and ignored, with a warning, so
upstream's own files load.

:func:`load_task` takes a file path, an ``http(s)://`` URL or a shipped task's name
(:mod:`world.task_lookup`). The validation itself (one key at a time, each problem a
:class:`TaskConfigError`) is :mod:`world.task_reader` and :mod:`world.task_keys`; this
module holds the task's data model and assembles it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from protocol import IP, AgentRole, Data, Network

from .agents_config import AgentSpec, read_agents
from .scenario import Scenario
from .task_keys import ARENA_KEYS, GOAL_KEYS, START_KEYS, check_keys, load_document
from .task_lookup import TASKS_DIR, locate_task, shipped_tasks
from .task_reader import (
    DataEntry,
    HostEntry,
    ServiceEntry,
    TaskConfigError,
    TaskReader,
    read_scenario,
    read_seats,
    read_start,
)

__all__ = [
    "BENIGN_VIEWS",
    "DEFAULT_TASK",
    "TASKS_DIR",
    "AgentSpec",
    "RewardConfig",
    "RoleConfig",
    "TaskConfig",
    "TaskConfigError",
    "View",
    "load_task",
    "parse_task",
    "shipped_tasks",
]

log = logging.getLogger(__name__)

#: The built-in default task (scenario1_small, an attacker against a defender).
DEFAULT_TASK = TASKS_DIR / "default.yaml"

_ROLE_KEYS = ("Attacker", "Defender", "Benign")


@attrs.frozen
class View:
    """A start position or goal as written in the task: entries may be keywords that
    the world resolves when it builds a state (reference §6.2)."""

    known_networks: tuple[Network, ...] = ()
    known_hosts: tuple[HostEntry, ...] = ()
    controlled_hosts: tuple[HostEntry, ...] = ()
    known_services: Mapping[IP, tuple[ServiceEntry, ...]] = attrs.field(factory=dict)
    known_data: Mapping[IP, tuple[DataEntry, ...]] = attrs.field(factory=dict)
    #: Goal only; parsed and remapped but, as in NetSecGame, not part of the goal check.
    known_blocks: Mapping[IP, tuple[IP, ...]] | str = attrs.field(factory=dict)


@attrs.frozen
class RoleConfig:
    role: AgentRole
    max_steps: int | None
    goal_description: str
    start: View
    goal: View


@attrs.frozen
class RewardConfig:
    """Rewards; every key absent from ``env.rewards`` is 0, as NetSecGame's code does."""

    step: float = 0
    success: float = 0
    fail: float = 0
    false_positive: float = 0


#: Benign agents' views are fixed by NetSecGame, not read from the file (reference §4.1).
BENIGN_VIEWS = (
    View(controlled_hosts=("random", "random", "random")),
    View(known_data={IP("1.1.1.1"): (Data("User1", "DataFromInternet"),)}),
)


@attrs.frozen
class TaskConfig:
    """A loaded, validated task: the scenario tables, the role configurations and the
    game switches. Immutable and shared by every game of the task."""

    name: str
    source: str
    scenario: Scenario
    roles: Mapping[AgentRole, RoleConfig]
    rewards: RewardConfig
    use_global_defender: bool = False
    use_dynamic_addresses: bool = False
    use_firewall: bool = True
    save_trajectories: bool = False
    required_players: int = 1
    seats: Mapping[AgentRole, int] = attrs.field(factory=lambda: {AgentRole.Attacker: 1})
    #: players per role needed to start a game (default: every seat)
    start: Mapping[AgentRole, int] = attrs.field(factory=lambda: {AgentRole.Attacker: 1})
    allowed_roles: frozenset[AgentRole] = frozenset({AgentRole.Attacker})
    hold_timeout: float = 60.0
    seat_lease: float = 600.0
    trajectory_dir: str = "logs/trajectories"
    #: join replies carry upstream's ``all_actions`` (WhiteBoxNetSecGame, reference §7.1)
    all_actions: bool = False
    #: SHA-256 of the task's and scenario's content: the same on every world.
    configuration_hash: str = ""
    #: the ``agents:`` entries: scripted agents and proxies (learner seats' reward functions)
    agents: tuple[AgentSpec, ...] = ()

    @property
    def scripted_agents(self) -> tuple[AgentSpec, ...]:
        """The entries the world plays itself, in ``agents:`` order."""
        return tuple(spec for spec in self.agents if spec.scripted)

    def proxies(self, role: AgentRole) -> tuple[AgentSpec, ...]:
        """The proxy entries of a role (their reward functions go to its external seats)."""
        return tuple(spec for spec in self.agents if not spec.scripted and spec.role is role)

    @property
    def seats_per_game(self) -> int:
        return sum(self.seats.values())


def _view(reader: TaskReader, value: Any, key: str, *, goal: bool) -> View:
    """A start_position or goal section: every view key required, each validated by the reader."""
    section = reader.mapping(value, key)
    for required in GOAL_KEYS if goal else START_KEYS:
        if required not in section:
            raise reader.fail(f"{key}.{required}", "required key missing")
    return View(
        known_networks=reader.networks(section["known_networks"], f"{key}.known_networks"),
        known_hosts=reader.hosts(section["known_hosts"], f"{key}.known_hosts"),
        controlled_hosts=reader.hosts(section["controlled_hosts"], f"{key}.controlled_hosts"),
        known_services=reader.services(section["known_services"], f"{key}.known_services"),
        known_data=reader.data(section["known_data"], f"{key}.known_data"),
        known_blocks=reader.blocks(section.get("known_blocks"), f"{key}.known_blocks")
        if goal else {},
    )


def parse_task(document: Any, source: str = "<task>", base_dir: Path | None = None, *,
               lines: Mapping[str, int] | None = None) -> TaskConfig:
    """Validate a parsed task document and build the TaskConfig. ``lines`` (key path ->
    line, from :func:`world.task_keys.load_document`) puts the line into errors."""
    reader = TaskReader(source, lines)
    check_keys(reader, document)   # every unknown key refused before any value is read
    root = reader.mapping(document, "(top level)")
    coordinator = reader.mapping(root.get("coordinator"), "coordinator")
    agents = reader.mapping(coordinator.get("agents"), "coordinator.agents")
    env = reader.mapping(root.get("env"), "env")
    arena = reader.strict_mapping(root.get("arena"), "arena", ARENA_KEYS)

    scenario = read_scenario(reader, env, base_dir)

    roles: dict[AgentRole, RoleConfig] = {}
    for name in _ROLE_KEYS:
        role = AgentRole(name)
        section = agents.get(name)
        key = f"coordinator.agents.{name}"
        if role is AgentRole.Benign:
            benign = reader.mapping(section, key)
            roles[role] = RoleConfig(role, reader.max_steps(benign.get("max_steps"), f"{key}.max_steps"),
                                     "", *BENIGN_VIEWS)
            continue
        if section is None:
            continue
        section = reader.mapping(section, key)
        goal_section = reader.mapping(section.get("goal"), f"{key}.goal")
        description = goal_section.get("description", "")
        if not isinstance(description, str):
            raise reader.fail(f"{key}.goal.description", f"expected text, got {description!r}")
        roles[role] = RoleConfig(
            role=role,
            max_steps=reader.max_steps(section.get("max_steps"), f"{key}.max_steps"),
            goal_description=description,
            start=_view(reader, section.get("start_position"), f"{key}.start_position", goal=False),
            goal=_view(reader, goal_section, f"{key}.goal", goal=True),
        )
        _check_view_hosts(reader, roles[role], scenario, key)

    rewards_section = reader.mapping(env.get("rewards"), "env.rewards")   # keys checked by check_keys
    rewards = RewardConfig(**{k: reader.number(v, f"env.rewards.{k}") for k, v in rewards_section.items()})
    if rewards.fail > 0 or rewards.false_positive > 0 or rewards.success < 0:
        log.warning("%s: unusual reward signs (fail %s, false_positive %s, success %s)",
                    source, rewards.fail, rewards.false_positive, rewards.success)

    required = env.get("required_players", 1)
    if isinstance(required, bool) or not isinstance(required, int) or required < 1:
        raise reader.fail("env.required_players", f"expected a whole number >= 1, got {required!r}")

    specs = read_agents(reader, root.get("agents"), scenario)
    scripted_attacker = any(spec.scripted and spec.role is AgentRole.Attacker for spec in specs)
    seats, allowed = read_seats(reader, arena, required, scripted_attacker=scripted_attacker)
    start = read_start(reader, arena, seats, scripted_attacker=scripted_attacker)
    for role in allowed:
        if role not in roles:
            raise reader.fail(f"coordinator.agents.{role.value}",
                              f"missing, but the task admits {role.value} agents")
    _check_agent_roles(reader, specs, roles, seats)
    hold_timeout = reader.number(arena.get("hold_timeout", 60.0), "arena.hold_timeout")
    seat_lease = reader.number(arena.get("seat_lease", 600.0), "arena.seat_lease")
    if hold_timeout <= 0 or seat_lease <= 0:
        raise reader.fail("arena", "hold_timeout and seat_lease must be positive")
    name = arena.get("name") or Path(source).stem
    if not isinstance(name, str) or not name:
        raise reader.fail("arena.name", f"expected a non-empty name, got {name!r}")
    trajectory_dir = arena.get("trajectory_dir", "logs/trajectories")
    if not isinstance(trajectory_dir, str):
        raise reader.fail("arena.trajectory_dir", f"expected a path, got {trajectory_dir!r}")

    canonical = json.dumps([document, scenario.name, _scenario_digest(scenario)], sort_keys=True,
                           default=str)
    return TaskConfig(
        name=name,
        source=source,
        scenario=scenario,
        roles=roles,
        rewards=rewards,
        use_global_defender=reader.flag(env.get("use_global_defender"), "env.use_global_defender", False),
        use_dynamic_addresses=reader.flag(env.get("use_dynamic_addresses"), "env.use_dynamic_addresses",
                                          False),
        use_firewall=reader.flag(env.get("use_firewall"), "env.use_firewall", True),
        save_trajectories=reader.flag(env.get("save_trajectories"), "env.save_trajectories", False),
        required_players=required,
        seats=seats,
        start=start,
        allowed_roles=allowed,
        hold_timeout=float(hold_timeout),
        seat_lease=float(seat_lease),
        trajectory_dir=trajectory_dir,
        all_actions=reader.flag(arena.get("all_actions"), "arena.all_actions", False),
        configuration_hash=hashlib.sha256(canonical.encode()).hexdigest(),
        agents=specs,
    )


def _check_agent_roles(reader: TaskReader, specs: tuple[AgentSpec, ...], roles: Mapping[AgentRole, RoleConfig],
                       seats: Mapping[AgentRole, int]) -> None:
    """A scripted agent needs its role's configuration; proxies need seats of their role."""
    proxies: dict[AgentRole, int] = {}
    for position, spec in enumerate(specs):
        if spec.scripted and spec.role not in roles:
            raise reader.fail(f"agents[{position}].team", f"a {spec.team} agent needs "
                              f"coordinator.agents.{spec.role.value} (its start position and goal)")
        if not spec.scripted:
            proxies[spec.role] = proxies.get(spec.role, 0) + 1
            if proxies[spec.role] > seats.get(spec.role, 0):
                raise reader.fail(f"agents[{position}]", f"a proxy {spec.team} agent needs its own "
                                  f"arena.seats {spec.role.value} seat ({seats.get(spec.role, 0)} there)")


def _scenario_digest(scenario: Scenario) -> str:
    parts = [sorted(map(str, scenario.ip_to_node)), sorted(map(str, scenario.networks)),
             sorted((node, sorted(map(repr, services))) for node, services in scenario.node_services.items()),
             sorted((node, sorted(map(repr, data))) for node, data in scenario.node_data.items()),
             [(str(a), str(b)) for a, b in scenario.allow_rules], list(map(str, scenario.start_candidates))]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _check_view_hosts(reader: TaskReader, config: RoleConfig, scenario: Scenario, key: str) -> None:
    """``random`` services or data need a world host to draw from."""
    for part, view in (("start_position", config.start), ("goal", config.goal)):
        for host, entries in view.known_services.items():
            if "random" in entries and host not in scenario.ip_to_node:
                raise reader.fail(f"{key}.{part}.known_services.{host}",
                                  "'random' needs a host of the scenario")
        if part == "start_position":
            for host, entries in view.known_data.items():
                if "random" in entries and host not in scenario.ip_to_node:
                    raise reader.fail(f"{key}.{part}.known_data.{host}",
                                      "'random' needs a host of the scenario")


def load_task(location: str | os.PathLike[str] | None = None) -> TaskConfig:
    """Load a task from a file path, an ``http(s)://`` URL or a shipped task's name such
    as ``two_networks_tiny`` (:mod:`world.task_lookup`; default: the built-in task).
    Every problem is one :class:`TaskConfigError` naming the file, line and key.

    >>> load_task().scenario.name, load_task("two_networks_tiny").scenario.name
    ('scenario1_small', 'two_networks_tiny')
    """
    found = locate_task(DEFAULT_TASK if location is None else location)
    if isinstance(found, str):   # a URL
        try:
            with urllib.request.urlopen(found, timeout=10) as response:
                text = response.read(1 << 20).decode()
        except (OSError, UnicodeDecodeError) as error:
            raise TaskConfigError(found, "(url)", f"cannot fetch: {error}") from None
        base_dir = None
        name_hint = Path(urllib.parse.urlparse(found).path).stem or "task"
        source = found
    else:
        source = str(found)
        try:
            text = found.read_text()
        except OSError as error:
            raise TaskConfigError(source, "(file)", f"cannot read: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise TaskConfigError(source, "(file)", "cannot read: not UTF-8 text") from None
        base_dir = found.parent
        name_hint = found.stem
    document, lines = load_document(text, source)
    task = parse_task(document, source, base_dir, lines=lines)
    if not isinstance(document, dict) or not (document.get("arena") or {}).get("name"):
        task = attrs.evolve(task, name=name_hint)
    return task
