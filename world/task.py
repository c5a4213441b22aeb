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

What NetSecGame silently mangles we reject at load, naming the key and the reason
(DESIGN §3): an invalid IP key, ``all`` in known_data, a non-numeric max_steps, an
unknown token in a host list, a missing view key. The keyword ``all_local`` where
NetSecGame ignores it (known_networks, as a services/data key) is accepted and ignored,
with a warning, so upstream's own files load.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from protocol import IP, AgentRole, ArenaError, Data, Network, Service

from .scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "BENIGN_VIEWS",
    "DEFAULT_TASK",
    "RewardConfig",
    "RoleConfig",
    "TaskConfig",
    "TaskConfigError",
    "View",
    "load_task",
    "parse_task",
]

log = logging.getLogger(__name__)

#: The built-in default task (scenario1_small, an attacker against a defender).
DEFAULT_TASK = Path(__file__).with_name("tasks") / "default.yaml"

HostEntry = IP | str          # an IP, or the token "random" / "all_local"
ServiceEntry = Service | str  # a Service, or "random"
DataEntry = Data | str        # a Data, or "random"

_HOST_TOKENS = ("random", "all_local")
_ROLE_KEYS = ("Attacker", "Defender", "Benign")
_START_KEYS = ("known_networks", "known_hosts", "controlled_hosts", "known_services", "known_data")
_GOAL_KEYS = (*_START_KEYS, "known_blocks")
_ARENA_KEYS = ("name", "seats", "start", "allowed_roles", "hold_timeout", "seat_lease", "trajectory_dir")
_ENV_KEYS = ("scenario", "scenario_file", "use_global_defender", "use_dynamic_addresses",
             "use_firewall", "save_trajectories", "required_players", "rewards", "random_seed",
             "actions", "store_replay_buffer", "goal_reward", "detection_reward", "step_reward")


class TaskConfigError(ArenaError, ValueError):
    """A task file is broken: names the file, the key path and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        super().__init__(f"{source}: {key}: {reason}")


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
    #: SHA-256 of the task's and scenario's content: the same on every world.
    configuration_hash: str = ""

    @property
    def seats_per_game(self) -> int:
        return sum(self.seats.values())


class _Reader:
    """Walks the YAML document, turning every problem into a TaskConfigError."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, reason: str) -> TaskConfigError:
        return TaskConfigError(self.source, key, reason)

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__} {value!r}")
        return value

    def flag(self, value: Any, key: str, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(key, f"expected true or false, got {value!r}")

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        return value

    def ip(self, value: Any, key: str) -> IP:
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise self.fail(key, f"{value!r} is not an IP address") from None
        return IP(str(value))

    def max_steps(self, value: Any, key: str) -> int | None:
        """int() as NetSecGame does (floats truncate); null or 0 mean no limit."""
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.fail(key, f"expected a whole number of steps, got {value!r}")
        try:
            steps = int(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"expected a whole number of steps, got {value!r}") from None
        if steps < 0:
            raise self.fail(key, f"must not be negative, got {steps}")
        return steps or None

    def hosts(self, value: Any, key: str) -> tuple[HostEntry, ...]:
        items = self.sequence(value, key)
        result: list[HostEntry] = []
        for index, item in enumerate(items):
            entry: HostEntry = item if item in _HOST_TOKENS else self.ip_or_fail(
                item, f"{key}[{index}]", "an IP address, 'random' or 'all_local'")
            if entry not in result:  # NetSecGame keeps a set: [random, random] is one draw
                result.append(entry)
        return tuple(result)

    def ip_or_fail(self, value: Any, key: str, expected: str) -> IP:
        try:
            ipaddress.ip_address(str(value))
        except ValueError:
            raise self.fail(key, f"expected {expected}, got {value!r}") from None
        return IP(str(value))

    def sequence(self, value: Any, key: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type(value).__name__} {value!r}")
        return value

    def networks(self, value: Any, key: str) -> tuple[Network, ...]:
        result: list[Network] = []
        for index, item in enumerate(self.sequence(value, key)):
            if item in ("random", "all_local"):
                log.warning("%s: %s[%d]: %r is ignored in known_networks, as NetSecGame does",
                            self.source, key, index, item)
                continue
            text = str(item)
            try:
                address, mask = text.split("/")
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise self.fail(f"{key}[{index}]", f"expected a network a.b.c.d/m, got {item!r}") from None
            network = Network(address, int(mask))
            if network not in result:
                result.append(network)
        return tuple(result)

    def keyed(self, value: Any, key: str) -> dict[IP, list[Any]]:
        """A services/data map; ``all_local`` as a key is ignored as upstream ignores it."""
        result: dict[IP, list[Any]] = {}
        for host, items in self.mapping(value, key).items():
            if host == "all_local":
                log.warning("%s: %s: the key all_local is ignored, as NetSecGame does",
                            self.source, key)
                continue
            ip = self.ip_or_fail(host, f"{key}.{host}", "IP address keys")
            result[ip] = self.sequence(items, f"{key}.{host}")
        return result

    def services(self, value: Any, key: str) -> dict[IP, tuple[ServiceEntry, ...]]:
        result: dict[IP, tuple[ServiceEntry, ...]] = {}
        for host, items in self.keyed(value, key).items():
            entries: list[ServiceEntry] = []
            for index, item in enumerate(items):
                where = f"{key}.{host}[{index}]"
                if item == "random":
                    entries.append("random")
                elif isinstance(item, list) and len(item) == 4 and isinstance(item[3], bool):
                    entries.append(Service(str(item[0]), str(item[1]), str(item[2]), item[3]))
                else:
                    raise self.fail(where, "expected [name, type, version, is_local] or 'random', "
                                    f"got {item!r}")
            result[host] = tuple(entries)
        return result

    def data(self, value: Any, key: str) -> dict[IP, tuple[DataEntry, ...]]:
        result: dict[IP, tuple[DataEntry, ...]] = {}
        for host, items in self.keyed(value, key).items():
            entries: list[DataEntry] = []
            for index, item in enumerate(items):
                where = f"{key}.{host}[{index}]"
                if isinstance(item, str) and item.lower() == "random":
                    entries.append("random")
                elif isinstance(item, list) and len(item) == 2:
                    entries.append(Data(str(item[0]), str(item[1])))
                else:
                    raise self.fail(where, f"expected [owner, id] or 'random', got {item!r}"
                                    + (" ('all' is not supported in known_data)"
                                       if item == "all" else ""))
            result[host] = tuple(entries)
        return result

    def blocks(self, value: Any, key: str) -> dict[IP, tuple[IP, ...]] | str:
        if value == "all_attackers":
            return "all_attackers"
        result: dict[IP, tuple[IP, ...]] = {}
        for host, items in self.mapping(value, key).items():
            ip = self.ip_or_fail(host, f"{key}.{host}", "IP address keys")
            if items == "all_attackers":
                result[ip] = ()
                continue
            if not isinstance(items, list):
                raise self.fail(f"{key}.{host}", f"expected a list of IPs or 'all_attackers', got {items!r}")
            result[ip] = tuple(self.ip_or_fail(b, f"{key}.{host}[{i}]", "an IP address")
                               for i, b in enumerate(items))
        return result

    def view(self, value: Any, key: str, *, goal: bool) -> View:
        section = self.mapping(value, key)
        for required in _GOAL_KEYS if goal else _START_KEYS:
            if required not in section:
                raise self.fail(f"{key}.{required}", "required key missing")
        return View(
            known_networks=self.networks(section["known_networks"], f"{key}.known_networks"),
            known_hosts=self.hosts(section["known_hosts"], f"{key}.known_hosts"),
            controlled_hosts=self.hosts(section["controlled_hosts"], f"{key}.controlled_hosts"),
            known_services=self.services(section["known_services"], f"{key}.known_services"),
            known_data=self.data(section["known_data"], f"{key}.known_data"),
            known_blocks=self.blocks(section.get("known_blocks"), f"{key}.known_blocks")
            if goal else {},
        )


def _role_name(value: Any) -> AgentRole:
    return AgentRole.from_string(str(value))


def parse_task(document: Any, source: str = "<task>", base_dir: Path | None = None) -> TaskConfig:
    """Validate a parsed task document and build the TaskConfig."""
    reader = _Reader(source)
    root = reader.mapping(document, "(top level)")
    coordinator = reader.mapping(root.get("coordinator"), "coordinator")
    agents = reader.mapping(coordinator.get("agents"), "coordinator.agents")
    env = reader.mapping(root.get("env"), "env")
    arena = reader.mapping(root.get("arena"), "arena")
    for key in root:
        if key not in ("coordinator", "env", "arena"):
            log.warning("%s: unknown top-level key %r ignored", source, key)
    for key in env:
        if key not in _ENV_KEYS:
            log.warning("%s: unknown key env.%s ignored", source, key)
    for key in arena:
        if key not in _ARENA_KEYS:
            raise reader.fail(f"arena.{key}", f"unknown key (known: {', '.join(_ARENA_KEYS)})")

    scenario = _scenario(reader, env, base_dir)

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
            start=reader.view(section.get("start_position"), f"{key}.start_position", goal=False),
            goal=reader.view(goal_section, f"{key}.goal", goal=True),
        )
        _check_view_hosts(reader, roles[role], scenario, key)

    rewards_section = reader.mapping(env.get("rewards"), "env.rewards")
    for key in rewards_section:
        if key not in ("step", "success", "fail", "false_positive"):
            raise reader.fail(f"env.rewards.{key}", "unknown reward (known: step, success, fail, false_positive)")
    rewards = RewardConfig(**{k: reader.number(v, f"env.rewards.{k}") for k, v in rewards_section.items()})
    if rewards.fail > 0 or rewards.false_positive > 0 or rewards.success < 0:
        log.warning("%s: unusual reward signs (fail %s, false_positive %s, success %s)",
                    source, rewards.fail, rewards.false_positive, rewards.success)

    required = env.get("required_players", 1)
    if isinstance(required, bool) or not isinstance(required, int) or required < 1:
        raise reader.fail("env.required_players", f"expected a whole number >= 1, got {required!r}")

    seats, allowed = _seats(reader, arena, required)
    start = _start(reader, arena, seats)
    for role in allowed:
        if role not in roles:
            raise reader.fail(f"coordinator.agents.{role.value}",
                              f"missing, but the task admits {role.value} agents")
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
        configuration_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _scenario(reader: _Reader, env: dict[str, Any], base_dir: Path | None) -> Scenario:
    scenario_file = env.get("scenario_file")
    try:
        if scenario_file is not None:
            path = Path(str(scenario_file))
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            return load_scenario(path)
        if "scenario" not in env:
            raise reader.fail("env.scenario", "required key missing (or give env.scenario_file)")
        return load_scenario(str(env["scenario"]))
    except ScenarioError as error:
        raise reader.fail("env.scenario_file" if scenario_file is not None else "env.scenario",
                          str(error)) from None


def _scenario_digest(scenario: Scenario) -> str:
    parts = [sorted(map(str, scenario.ip_to_node)), sorted(map(str, scenario.networks)),
             sorted((node, sorted(map(repr, services))) for node, services in scenario.node_services.items()),
             sorted((node, sorted(map(repr, data))) for node, data in scenario.node_data.items()),
             [(str(a), str(b)) for a, b in scenario.allow_rules], list(map(str, scenario.start_candidates))]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _check_view_hosts(reader: _Reader, config: RoleConfig, scenario: Scenario, key: str) -> None:
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


def _seats(reader: _Reader, arena: dict[str, Any], required: int
           ) -> tuple[dict[AgentRole, int], frozenset[AgentRole]]:
    raw_seats = arena.get("seats")
    if raw_seats is None:
        seats = {AgentRole.Attacker: required}
    else:
        seats = {}
        for role_name, count in reader.mapping(raw_seats, "arena.seats").items():
            try:
                role = _role_name(role_name)
            except ValueError:
                raise reader.fail(f"arena.seats.{role_name}", "unknown role") from None
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise reader.fail(f"arena.seats.{role_name}", f"expected a count >= 0, got {count!r}")
            if count:
                seats[role] = count
    if seats.get(AgentRole.Attacker, 0) < 1:
        raise reader.fail("arena.seats", "a game needs at least one Attacker seat")
    raw_allowed = arena.get("allowed_roles")
    if raw_allowed is None:
        allowed = frozenset(seats)
    else:
        try:
            allowed = frozenset(_role_name(r) for r in reader.sequence(raw_allowed, "arena.allowed_roles"))
        except ValueError as error:
            raise reader.fail("arena.allowed_roles", str(error)) from None
        for role in seats:
            if role not in allowed:
                raise reader.fail("arena.allowed_roles", f"{role.value} has seats but is not allowed")
    return seats, allowed


def _start(reader: _Reader, arena: dict[str, Any], seats: dict[AgentRole, int]) -> dict[AgentRole, int]:
    raw = arena.get("start")
    if raw is None:
        return dict(seats)
    start: dict[AgentRole, int] = {}
    for role_name, count in reader.mapping(raw, "arena.start").items():
        try:
            role = _role_name(role_name)
        except ValueError:
            raise reader.fail(f"arena.start.{role_name}", "unknown role") from None
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= seats.get(role, 0):
            raise reader.fail(f"arena.start.{role_name}",
                              f"expected a count between 0 and the role's {seats.get(role, 0)} seats, got {count!r}")
        if count:
            start[role] = count
    if start.get(AgentRole.Attacker, 0) < 1:
        raise reader.fail("arena.start", "a game needs at least one Attacker to start")
    return start


def load_task(location: str | os.PathLike[str] | None = None) -> TaskConfig:
    """Load a task from a file path or an ``http(s)://`` URL (default: the built-in task).

    >>> load_task().scenario.name
    'scenario1_small'
    """
    if location is None:
        location = DEFAULT_TASK
    text_location = str(location)
    if urllib.parse.urlparse(text_location).scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(text_location, timeout=10) as response:
                text = response.read(1 << 20).decode()
        except OSError as error:
            raise TaskConfigError(text_location, "(url)", f"cannot fetch: {error}") from None
        base_dir = None
        name_hint = Path(urllib.parse.urlparse(text_location).path).stem or "task"
        source = text_location
    else:
        path = Path(text_location)
        try:
            text = path.read_text()
        except OSError as error:
            raise TaskConfigError(text_location, "(file)", f"cannot read: {error.strerror}") from None
        base_dir = path.parent
        name_hint = path.stem
        source = text_location
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TaskConfigError(source, "(yaml)", f"not valid YAML: {error}") from None
    task = parse_task(document, source, base_dir)
    if not isinstance(document, dict) or not (document.get("arena") or {}).get("name"):
        task = attrs.evolve(task, name=name_hint)
    return task
