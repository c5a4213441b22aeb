"""Validation of task YAML: the reader that walks a task document for :mod:`world.task`.

A :class:`TaskReader` turns raw YAML values into protocol values (IPs, networks, services,
data) and the host/service/data entries of a view, and every problem into a
:class:`TaskConfigError` that names the file, the key path and the reason (DESIGN §3).
The ``read_*`` helpers validate the sections that need more than one key: the scenario
(``env.scenario`` / ``env.scenario_file``) and the ``arena`` seats and start counts.
:func:`world.task.parse_task` assembles the task from them; the task-file format is
documented in :mod:`world.task`.

>>> TaskReader("t.yaml").hosts(["10.0.0.1", "random", "random"], "known_hosts")
(10.0.0.1, 'random')
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from protocol import IP, AgentRole, ArenaError, Data, Network, Service

from .scenario import Scenario, ScenarioError, load_scenario

__all__ = [
    "DataEntry",
    "HostEntry",
    "ServiceEntry",
    "TaskConfigError",
    "TaskReader",
    "read_scenario",
    "read_seats",
    "read_start",
    "unknown_key",
]

log = logging.getLogger(__name__)

HostEntry = IP | str          # an IP, or the token "random" / "all_local"
ServiceEntry = Service | str  # a Service, or "random"
DataEntry = Data | str        # a Data, or "random"

_HOST_TOKENS = ("random", "all_local")


class TaskConfigError(ArenaError, ValueError):
    """A task file is broken: names the file, the line (when the YAML text is known), the
    key path and the reason, on one line: ``task.yaml:7: env.use_firewal: unknown key ...``."""

    def __init__(self, source: str, key: str, reason: str, line: int | None = None) -> None:
        self.source, self.key, self.reason, self.line = source, key, reason, line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(": ".join(part for part in (where, key, reason) if part))


def unknown_key(name: Any, known: Iterable[str], hint: str | None = None) -> str:
    """The reason for an unknown key: ``hint`` if given, else the closest known key
    (difflib, ignoring case), else the known keys."""
    known = tuple(known)
    if hint:
        return f"unknown key ({hint})"
    close = difflib.get_close_matches(str(name).lower(), [k.lower() for k in known], n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {known[[k.lower() for k in known].index(close[0])]}?)"
    return f"unknown key (known: {', '.join(known) or 'none'})"


class TaskReader:
    """Walks the YAML document, turning every problem into a TaskConfigError. ``lines``
    maps key paths (``env.rewards.step``, ``agents[0].type``) to their line in the file:
    an error names the line of its key, or of the nearest enclosing key."""

    def __init__(self, source: str, lines: Mapping[str, int] | None = None) -> None:
        self.source = source
        self.lines: Mapping[str, int] = lines or {}

    def fail(self, key: str, reason: str) -> TaskConfigError:
        return TaskConfigError(self.source, key, reason, self.line_of(key))

    def line_of(self, key: str) -> int | None:
        """The line of ``key``, or of its nearest enclosing key that has one."""
        path = key
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__} {value!r}")
        return value

    def strict_mapping(self, value: Any, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        """A mapping whose keys are all in ``known``; the first other key fails, named."""
        section = self.mapping(value, key)
        for name in section:
            if name not in known:
                raise self.fail(f"{key}.{name}" if key else str(name), unknown_key(name, known))
        return section

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


def _role_name(value: Any) -> AgentRole:
    return AgentRole.from_string(str(value))


def _seat_role(reader: TaskReader, value: Any, key: str) -> AgentRole:
    """A role named as a key of ``arena.seats`` / ``arena.start`` (any case)."""
    try:
        return _role_name(value)
    except ValueError:
        reason = unknown_key(value, [role.value for role in AgentRole]).replace("unknown key", "unknown role", 1)
        raise reader.fail(key, reason) from None


def read_scenario(reader: TaskReader, env: dict[str, Any], base_dir: Path | None) -> Scenario:
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



def read_seats(reader: TaskReader, arena: dict[str, Any], required: int, *, scripted_attacker: bool = False
               ) -> tuple[dict[AgentRole, int], frozenset[AgentRole]]:
    """Seats per role and the allowed roles. A game needs an attacker: an Attacker seat,
    or a scripted attacker (``agents:``) and some seat for an external agent."""
    raw_seats = arena.get("seats")
    if raw_seats is None:
        seats = {AgentRole.Attacker: required}
    else:
        seats = {}
        for role_name, count in reader.mapping(raw_seats, "arena.seats").items():
            role = _seat_role(reader, role_name, f"arena.seats.{role_name}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise reader.fail(f"arena.seats.{role_name}", f"expected a count >= 0, got {count!r}")
            if count:
                seats[role] = count
    if seats.get(AgentRole.Attacker, 0) < 1 and not (scripted_attacker and seats):
        raise reader.fail("arena.seats", "a game needs at least one Attacker seat"
                          + (" (or a scripted RED agent)" if not scripted_attacker else " and one seat"))
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


def read_start(reader: TaskReader, arena: dict[str, Any], seats: dict[AgentRole, int], *,
               scripted_attacker: bool = False) -> dict[AgentRole, int]:
    """Players per role a game needs to start (default: every seat); an attacker among
    them unless a scripted attacker plays."""
    raw = arena.get("start")
    if raw is None:
        return dict(seats)
    start: dict[AgentRole, int] = {}
    for role_name, count in reader.mapping(raw, "arena.start").items():
        role = _seat_role(reader, role_name, f"arena.start.{role_name}")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= seats.get(role, 0):
            raise reader.fail(f"arena.start.{role_name}",
                              f"expected a count between 0 and the role's {seats.get(role, 0)} seats, got {count!r}")
        if count:
            start[role] = count
    if start.get(AgentRole.Attacker, 0) < 1 and not (scripted_attacker and start):
        raise reader.fail("arena.start", "a game needs at least one Attacker to start"
                          + (" (or a scripted RED agent)" if not scripted_attacker else " and one player"))
    return start
