"""The ``agents:`` section of a task file: agents that play inside the game, and reward
functions, in the manner of PrimAITE's agent configuration (rl-environments.md §2, §3.4).

The schema is strict: an unknown key, a wrong type or an unknown name is a
:class:`~world.task_reader.TaskConfigError` naming its key path (``agents[1].type``)::

    agents:
      - ref: blue_1               # unique name: letters, digits, _ and -, at most 64
        team: BLUE                # RED | BLUE | GREEN: the role Attacker | Defender | Benign
        type: periodic            # random | probabilistic | periodic | kill-chain |
                                  # blocking-defender | benign | proxy
        action_space:             # random (optional), probabilistic and periodic (required),
          action_map:             # proxy (optional, kept for environments; not enforced)
            0: {action: do-nothing}
            1: {action: BlockIP, options: {source_host: client_1, target_host: client_1,
                                           blocked_host: outside_node}}
        agent_settings:           # not for proxy
          start_step: 5           # first turn at tick start_step (int >= 0; default 5)
          frequency: 5            # then every frequency + randint(-variance, variance) ticks
          variance: 0             # (frequency int >= 1, default 5; variance 0 <= v < frequency)
          max_executions: 3       # periodic only: at most this many turns per episode
          action_probabilities: {0: 0.2, 1: 0.8}   # probabilistic only (required): keys exactly
                                  # the action_map's, p >= 0, summing to 1 within 1e-6
        reward_function:          # optional; see world.rewards for the components
          reward_components:
            - {type: netsecgame, weight: 1.0}
            - {type: shared-reward, weight: 0.5, options: {agent: green_1}}

Action maps name things by the game's catalog (:mod:`world.catalog`), never by address:
``source_host``, ``target_host``, ``blocked_host`` are host slot names (``client_1``,
``router1@192.168.1.0/24``), ``target_network`` a network slot name (its original CIDR),
``target_service`` the name of one of the target host's services, ``data`` ``owner/id``.
Each action type takes exactly the options it needs; ``do-nothing`` (PASS) takes none;
BlockIP is for BLUE agents only. Keys are 0..N-1. Names are resolved when the task
loads, against the scenario's layout; an agent's action is bound to the current
addresses each time it acts, so it follows a topology remapping. ``kill-chain`` needs
team RED, ``blocking-defender`` BLUE, ``benign`` GREEN; a scripted agent's team needs its
``coordinator.agents`` role (its start position and goal); a proxy needs an
``arena.seats`` seat of its role (one seat per proxy at most).

How the agents play is :mod:`world.scripted`; how rewards are computed, :mod:`world.rewards`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from protocol import GAME_ACTIONS, PASS, REQUIRED_PARAMETERS, Action, ActionType, AgentRole, PassAction
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

from .catalog import scenario_layout
from .rewards import COMPONENT_TYPES, RewardComponent, RewardFunction
from .scenario import Scenario
from .task_reader import TaskReader, unknown_key

__all__ = ["AGENT_TYPES", "TEAMS", "AgentSpec", "MapEntry", "read_agents", "scenario_catalog"]

TEAMS: dict[str, AgentRole] = {"RED": AgentRole.Attacker, "BLUE": AgentRole.Defender, "GREEN": AgentRole.Benign}
AGENT_TYPES = ("random", "probabilistic", "periodic", "kill-chain", "blocking-defender", "benign", "proxy")
DO_NOTHING = "do-nothing"
_ENTRY_KEYS = ("ref", "team", "type", "action_space", "agent_settings", "reward_function")
_SCHEDULE_KEYS = ("start_step", "frequency", "variance")
_SETTINGS: dict[str, tuple[str, ...]] = {
    "random": _SCHEDULE_KEYS, "kill-chain": _SCHEDULE_KEYS, "blocking-defender": _SCHEDULE_KEYS,
    "benign": _SCHEDULE_KEYS, "probabilistic": (*_SCHEDULE_KEYS, "action_probabilities"),
    "periodic": (*_SCHEDULE_KEYS, "max_executions"), "proxy": (),
}
_MAPPED = ("random", "probabilistic", "periodic", "proxy")   # types that take an action_space
_NEEDS_MAP = ("probabilistic", "periodic")
_POLICY_TEAMS = {"kill-chain": "RED", "blocking-defender": "BLUE", "benign": "GREEN"}
_REF = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HOST_OPTIONS = ("source_host", "target_host", "blocked_host")


@attrs.frozen
class MapEntry:
    """One action_map entry: its label, and its index in the agent's table (None: do-nothing)."""

    label: str
    index: int | None


@attrs.frozen
class AgentSpec:
    """One validated ``agents:`` entry."""

    ref: str
    team: str
    role: AgentRole
    type: str
    action_map: tuple[MapEntry, ...] = ()
    #: the concrete actions of ``action_map`` (table indices -> actions at current addresses)
    table: ActionTable | None = attrs.field(default=None, eq=False, repr=False)
    start_step: int = 5
    frequency: int = 5
    variance: int = 0
    max_executions: int | None = None
    action_probabilities: tuple[float, ...] = ()
    reward: RewardFunction | None = None

    @property
    def scripted(self) -> bool:
        """Whether the world plays it (every type but ``proxy``)."""
        return self.type != "proxy"

    def mapped_action(self, index: int, catalog: Catalog) -> Action | PassAction:
        """Entry ``index`` of the action map at the catalog's current addresses."""
        entry = self.action_map[index]
        if entry.index is None or self.table is None:
            return PASS
        return self.table.action(entry.index, catalog)


def scenario_catalog(scenario: Scenario) -> Catalog:
    """The scenario's catalog at its original addresses (what names resolve against)."""
    layout = scenario_layout(scenario)
    return Catalog(hosts=layout.hosts, host_ips=layout.ips, networks=layout.network_names,
                   network_addresses=layout.networks, services=layout.services, data=layout.data)


def read_agents(reader: TaskReader, value: Any, scenario: Scenario) -> tuple[AgentSpec, ...]:
    """Validate the ``agents:`` list (see the module docstring); cycles of shared rewards
    and unknown shared refs are refused."""
    if value is None:
        return ()
    items = reader.sequence(value, "agents")
    catalog = scenario_catalog(scenario) if items else None
    specs: list[AgentSpec] = []
    for position, item in enumerate(items):
        key = f"agents[{position}]"
        specs.append(_read_entry(reader, item, key, catalog, {s.ref for s in specs}))
    _check_sharing(reader, specs)
    return tuple(specs)


def _read_entry(reader: TaskReader, item: Any, key: str, catalog: Any, taken: set[str]) -> AgentSpec:
    entry = reader.strict_mapping(item, key, _ENTRY_KEYS)
    ref = entry.get("ref")
    if not isinstance(ref, str) or not _REF.fullmatch(ref):
        raise reader.fail(f"{key}.ref", f"expected a name of letters, digits, _ and - (at most 64), got {ref!r}")
    if ref in taken:
        raise reader.fail(f"{key}.ref", f"{ref!r} is used by another agent")
    team = entry.get("team")
    if team not in TEAMS:
        raise reader.fail(f"{key}.team", f"expected RED, BLUE or GREEN, got {team!r}")
    kind = entry.get("type")
    if kind not in AGENT_TYPES:
        raise reader.fail(f"{key}.type", f"expected one of {', '.join(AGENT_TYPES)}, got {kind!r}")
    wanted_team = _POLICY_TEAMS.get(kind)
    if wanted_team is not None and team != wanted_team:
        raise reader.fail(f"{key}.team", f"a {kind} agent plays team {wanted_team}, got {team}")
    role = TEAMS[team]
    table, action_map = None, ()
    if "action_space" in entry:
        if kind not in _MAPPED:
            raise reader.fail(f"{key}.action_space", f"a {kind} agent chooses its own actions "
                              f"(action_space is for {', '.join(_MAPPED)})")
        table, action_map = _read_action_space(reader, entry["action_space"], f"{key}.action_space", catalog, role)
    elif kind in _NEEDS_MAP:
        raise reader.fail(f"{key}.action_space", f"required for a {kind} agent")
    settings = _read_settings(reader, entry.get("agent_settings"), f"{key}.agent_settings", kind, len(action_map))
    reward = None
    if "reward_function" in entry:
        reward = _read_reward(reader, entry["reward_function"], f"{key}.reward_function")
    return AgentSpec(ref=ref, team=team, role=role, type=kind, action_map=action_map, table=table,
                     reward=reward, **settings)


# ---------------------------------------------------------------------- action maps
def _read_action_space(reader: TaskReader, value: Any, key: str, catalog: Catalog, role: AgentRole
                       ) -> tuple[ActionTable | None, tuple[MapEntry, ...]]:
    section = reader.strict_mapping(value, key, ("action_map",))
    raw = reader.mapping(section.get("action_map"), f"{key}.action_map")
    if not raw:
        raise reader.fail(f"{key}.action_map", "expected at least one entry")
    indexed = _indexed(reader, raw, f"{key}.action_map")
    actions = [_read_mapped(reader, indexed[i], f"{key}.action_map.{i}", catalog, role) for i in range(len(indexed))]
    kinds = {action.action_type for action in actions if isinstance(action, Action)}
    table = ActionTable(catalog, kinds) if kinds else None
    entries = []
    for action in actions:
        if not isinstance(action, Action) or table is None:
            entries.append(MapEntry(DO_NOTHING, None))
            continue
        index = table.index_of(action, catalog)
        assert index is not None  # every name was resolved against this catalog
        entries.append(MapEntry(table.labels[index], index))
    return table, tuple(entries)


def _indexed(reader: TaskReader, raw: Mapping[Any, Any], key: str) -> dict[int, Any]:
    """The map's entries by int key; keys must be exactly 0..N-1."""
    result: dict[int, Any] = {}
    for name, entry in raw.items():
        number = name if isinstance(name, int) and not isinstance(name, bool) else None
        if isinstance(name, str) and name.isdigit():
            number = int(name)
        if number is None or number in result:
            raise reader.fail(f"{key}.{name}", "keys must be the integers 0..N-1, each once")
        result[number] = entry
    if sorted(result) != list(range(len(result))):
        raise reader.fail(key, f"keys must be 0..{len(result) - 1}, got {sorted(result)}")
    return result


def _read_mapped(reader: TaskReader, value: Any, key: str, catalog: Catalog, role: AgentRole
                 ) -> Action | PassAction:
    entry = reader.strict_mapping(value, key, ("action", "options"))
    name = entry.get("action")
    options = reader.mapping(entry.get("options"), f"{key}.options")
    if name == DO_NOTHING:
        if options:
            raise reader.fail(f"{key}.options", "do-nothing takes no options")
        return PASS
    try:
        kind = ActionType.from_string(name)
    except ValueError:
        kind = None
    if kind is None or kind not in GAME_ACTIONS:
        known = ", ".join(t.value for t in ActionType if t in GAME_ACTIONS)
        raise reader.fail(f"{key}.action", f"expected do-nothing or one of {known}, got {name!r}")
    if kind is ActionType.BlockIP and role is not AgentRole.Defender:
        raise reader.fail(f"{key}.action", "only BLUE agents block")
    needed = REQUIRED_PARAMETERS[kind]
    for option in options:
        if option not in needed:
            raise reader.fail(f"{key}.options.{option}", unknown_key(option, needed).replace(
                "unknown key", f"not an option of {kind.value}", 1).replace("known:", "takes:", 1))
    parameters: dict[str, Any] = {}
    for option in needed:
        where = f"{key}.options.{option}"
        if option not in options:
            raise reader.fail(where, f"required by {kind.value}")
        text = options[option]
        if not isinstance(text, str):
            raise reader.fail(where, f"expected a name, got {text!r}")
        parameters[option] = _resolve(reader, option, text, where, catalog, options)
    return Action(kind, parameters)


def _host_slot(reader: TaskReader, name: str, where: str, catalog: Catalog) -> int:
    try:
        return catalog.slot_named(name)
    except KeyError:
        raise reader.fail(where, f"no host slot {name!r} (slots: {', '.join(catalog.hosts)})") from None


def _resolve(reader: TaskReader, option: str, name: str, where: str, catalog: Catalog,
             options: Mapping[str, Any]) -> Any:
    """A named option as the value the action takes, at the catalog's (original) addresses."""
    if option in _HOST_OPTIONS:
        return catalog.host_ips[_host_slot(reader, name, where, catalog)]
    if option == "target_network":
        if name not in catalog.networks:
            raise reader.fail(where, f"no network slot {name!r} (slots: {', '.join(catalog.networks)})")
        return catalog.network_addresses[catalog.networks.index(name)]
    if option == "target_service":
        target = options.get("target_host")
        slot = _host_slot(reader, target, where.rsplit(".", 1)[0] + ".target_host", catalog) \
            if isinstance(target, str) else None
        services = catalog.services[slot] if slot is not None else ()
        for service in services:
            if service.name == name:
                return service
        raise reader.fail(where, f"host {target!r} has no service {name!r} "
                          f"(it has: {', '.join(s.name for s in services) or 'none'})")
    owner, _, ident = name.partition("/")
    for datum in catalog.data:
        if datum.owner == owner and datum.id == ident:
            return datum
    known = ", ".join(f"{d.owner}/{d.id}" for d in catalog.data)
    raise reader.fail(where, f"no datum {name!r} in the scenario (expected owner/id: {known})")


# ---------------------------------------------------------------------- settings
def _whole(reader: TaskReader, value: Any, where: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise reader.fail(where, f"expected a whole number >= {least}, got {value!r}")
    return value


def _read_settings(reader: TaskReader, value: Any, key: str, kind: str, map_size: int) -> dict[str, Any]:
    section = reader.mapping(value, key)
    allowed = _SETTINGS[kind]
    for name in section:
        if name not in allowed:
            reason = unknown_key(name, allowed) if allowed else \
                "unknown key (known: none: a proxy is played from outside)"
            raise reader.fail(f"{key}.{name}", reason.replace("unknown key", f"unknown setting for a {kind} agent", 1))
    result: dict[str, Any] = {
        "start_step": _whole(reader, section.get("start_step", 5), f"{key}.start_step", 0),
        "frequency": _whole(reader, section.get("frequency", 5), f"{key}.frequency", 1),
        "variance": _whole(reader, section.get("variance", 0), f"{key}.variance", 0),
    }
    if result["variance"] >= result["frequency"]:
        raise reader.fail(f"{key}.variance", f"must be below frequency ({result['frequency']}), "
                          f"got {result['variance']}: a turn could fall before the last one")
    if "max_executions" in section:
        result["max_executions"] = _whole(reader, section["max_executions"], f"{key}.max_executions", 1)
    if kind == "probabilistic":
        result["action_probabilities"] = _probabilities(reader, section.get("action_probabilities"),
                                                        f"{key}.action_probabilities", map_size)
    return result


def _probabilities(reader: TaskReader, value: Any, key: str, size: int) -> tuple[float, ...]:
    if value is None:
        raise reader.fail(key, "required for a probabilistic agent")
    raw = _indexed(reader, reader.mapping(value, key), key)
    if len(raw) != size:
        raise reader.fail(key, f"keys must be exactly the action_map's 0..{size - 1}, got {sorted(raw)}")
    result = []
    for index in range(size):
        p = raw[index]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
            raise reader.fail(f"{key}.{index}", f"expected a probability >= 0, got {p!r}")
        result.append(float(p))
    total = math.fsum(result)
    if abs(total - 1.0) > 1e-6:
        raise reader.fail(key, f"probabilities must sum to 1, got {total:g}")
    return tuple(result)


# ---------------------------------------------------------------------- rewards
def _read_reward(reader: TaskReader, value: Any, key: str) -> RewardFunction:
    section = reader.strict_mapping(value, key, ("reward_components",))
    items = reader.sequence(section.get("reward_components"), f"{key}.reward_components")
    if not items:
        raise reader.fail(f"{key}.reward_components", "expected at least one component")
    components: list[RewardComponent] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(items):
        where = f"{key}.reward_components[{position}]"
        entry = reader.strict_mapping(item, where, ("type", "weight", "options"))
        kind = entry.get("type")
        if kind not in COMPONENT_TYPES:
            raise reader.fail(f"{where}.type", f"expected one of {', '.join(COMPONENT_TYPES)}, got {kind!r}")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise reader.fail(f"{where}.weight", f"expected a finite number, got {weight!r}")
        options = reader.mapping(entry.get("options"), f"{where}.options")
        agent = None
        if kind == "shared-reward":
            for name in options:
                if name != "agent":
                    raise reader.fail(f"{where}.options.{name}", "unknown option (known: agent)")
            agent = options.get("agent")
            if not isinstance(agent, str) or not agent:
                raise reader.fail(f"{where}.options.agent", f"expected an agent's ref, got {agent!r}")
        elif options:
            raise reader.fail(f"{where}.options", f"{kind} takes no options")
        seen[kind] = seen.get(kind, 0) + 1
        label = kind if seen[kind] == 1 else f"{kind}#{seen[kind]}"
        components.append(RewardComponent(kind, float(weight), agent, label))
    return RewardFunction(tuple(components))


def _check_sharing(reader: TaskReader, specs: list[AgentSpec]) -> None:
    """Every shared ref exists; the sharing graph has no cycle (a self-share included)."""
    refs = {spec.ref: position for position, spec in enumerate(specs)}
    edges: dict[str, tuple[str, ...]] = {}
    for position, spec in enumerate(specs):
        shared = spec.reward.shared if spec.reward is not None else ()
        for agent in shared:
            if agent not in refs:
                raise reader.fail(f"agents[{position}].reward_function", f"shared-reward names no agent {agent!r}")
        edges[spec.ref] = shared
    state: dict[str, int] = {}   # 1: on the path, 2: done

    def visit(ref: str, path: list[str]) -> None:
        state[ref] = 1
        for nxt in edges.get(ref, ()):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt] if nxt in path else [ref, nxt]
                raise reader.fail(f"agents[{refs[ref]}].reward_function",
                                  f"shared-reward cycle: {' -> '.join(cycle)}")
            if state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[ref] = 2

    for spec in specs:
        if state.get(spec.ref) is None:
            visit(spec.ref, [spec.ref])
