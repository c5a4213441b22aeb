"""The NetSecGame world: one game's network, firewall, data and logs, and the six actions.

Semantics are upstream's exactly for what a valid configuration can reach (reference
netsecgame.md §6, DESIGN §3). What differs is how: states are immutable and shared,
unchanged parts are never copied, a failed precondition returns the very same state
object, and per-episode tables are copied only when an action changes them. A step
that changes nothing allocates nothing.

The world is shared by every agent of one game: an exfiltration or a block is seen by
all of them until the next reset (reference §6.1).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

from protocol import IP, Action, ActionType, AgentRole, Data, GameState, Network, Service

from .remap import remap_addresses, rewrite_addresses
from .scenario import LOG_FILE, Scenario
from .task import View

__all__ = ["LOG_FILE", "GameWorld", "goal_reached"]

log = logging.getLogger(__name__)

_EMPTY: frozenset[Any] = frozenset()


def goal_reached(state: GameState, goal: GameState) -> bool:
    """Reference §3.3: subset for the three sets; for the maps, every goal key present
    with a subset of values. known_blocks is not part of NetSecGame's goal."""
    if not (goal.known_networks <= state.known_networks
            and goal.known_hosts <= state.known_hosts
            and goal.controlled_hosts <= state.controlled_hosts):
        return False
    for wanted, have in ((goal.known_services, state.known_services),
                         (goal.known_data, state.known_data)):
        for host, values in wanted.items():
            present = have.get(host)
            if present is None or not values <= present:
                return False
    return True


def _log_entry(source: IP, action_type: ActionType) -> str:
    # json.dumps default separators, as upstream's log content (reference §6.3, §9).
    return f'{{"source_host": {json.dumps(source.ip)}, "action_type": "{action_type}"}}'


class GameWorld:
    """One game's world. Not thread-safe; one game loop owns it.

    >>> from world.scenario import load_scenario
    >>> world = GameWorld(load_scenario("scenario1_small"), random.Random(42))
    >>> len(world.ip_to_node)
    9
    """

    def __init__(self, scenario: Scenario, rng: random.Random, *, use_firewall: bool = True) -> None:
        self.scenario = scenario
        self.rng = rng
        self.use_firewall = use_firewall
        #: original address -> current address (identity until a topology change)
        self.ip_map: dict[IP, IP] = {ip: ip for ip in scenario.ip_to_node}
        self.network_map: dict[Network, Network] = {n: n for n in scenario.networks}
        self._install_tables(dict(scenario.ip_to_node), {n: tuple(ips) for n, ips in scenario.networks.items()},
                             scenario.firewall(use_firewall), tuple(scenario.start_candidates))
        #: agent id -> false positives this episode (reference §6.3)
        self.false_positives: Counter[Any] = Counter()
        self.reset_episode()

    # ------------------------------------------------------------------ tables
    def _install_tables(self, ip_to_node: dict[IP, str], networks: dict[Network, tuple[IP, ...]],
                        firewall: dict[IP, frozenset[IP]], start_candidates: tuple[IP, ...]) -> None:
        self.ip_to_node = ip_to_node
        self.networks = networks
        self.start_candidates = start_candidates
        self._firewall_original = firewall
        self.all_ips: tuple[IP, ...] = tuple(ip_to_node)
        self.ip_networks: dict[IP, frozenset[Network]] = {}
        for network, ips in networks.items():
            for ip in ips:
                self.ip_networks[ip] = self.ip_networks.get(ip, _EMPTY) | {network}
        self._scan_cache: dict[Network, tuple[IP, ...]] = {}
        self._node_services = self.scenario.node_services
        self._remote_services = {node: frozenset(s for s in services if not s.is_local)
                                 for node, services in self._node_services.items()}
        self._all_services = {node: frozenset(services) for node, services in self._node_services.items()}

    def reset_episode(self) -> None:
        """Restore data, logs and firewall from the originals; clear blocks (§6.10 step 3)."""
        self._firewall = self._firewall_original
        self._firewall_owned = False
        self._data: dict[str, frozenset[Data]] = dict(self.scenario.node_data)
        self._logs: dict[str, list[str]] = {}
        self._log_cache: dict[str, frozenset[Data]] = {}
        self.fw_blocks: dict[IP, frozenset[IP]] = {}
        self.agent_fw_rules: dict[tuple[IP, IP], set[Any]] = {}
        self.false_positives.clear()

    def reset(self, *, randomize_topology: bool = False) -> None:
        """A world reset (§6.10): optional address remapping, then fresh episode tables."""
        if randomize_topology:
            self._change_addresses()
        self.reset_episode()

    def _change_addresses(self) -> None:
        step = remap_addresses(self.networks, self.rng)
        ip_step, network_step = step.ips, step.networks
        ip_to_node = {ip_step[ip]: node for ip, node in self.ip_to_node.items()}
        networks = {network_step[n]: tuple(ip_step[ip] for ip in ips) for n, ips in self.networks.items()}
        firewall = {ip_step[src]: frozenset(ip_step.get(d, d) for d in dsts)
                    for src, dsts in self._firewall_original.items()}
        candidates = tuple(ip_step[ip] for ip in self.start_candidates)
        self.ip_map = {original: ip_step[current] for original, current in self.ip_map.items()}
        self.network_map = {original: network_step[current] for original, current in self.network_map.items()}
        self._install_tables(ip_to_node, networks, firewall, candidates)
        log.debug("addresses changed: %s", self.network_map)  # pragma: no mutate

    def describe_goal(self, text: str) -> str:
        """The goal text with original addresses replaced by current ones (§6.11 step 4)."""
        return rewrite_addresses(text, self.ip_map, self.network_map)

    # ------------------------------------------------------------------ views
    def _map_ip(self, ip: IP) -> IP:
        return self.ip_map.get(ip, ip)

    def _local_ips(self) -> list[IP]:
        return [ip for network, ips in self.networks.items() if network.is_private() for ip in ips]

    def _hosts(self, entries: Iterable[IP | str], candidates: list[IP] | tuple[IP, ...]) -> set[IP]:
        hosts: set[IP] = set()
        for entry in entries:
            if entry == "random":
                hosts.add(self.rng.choice(candidates))
            elif entry == "all_local":
                hosts.update(self._local_ips())
            else:
                hosts.add(self._map_ip(entry))  # type: ignore[arg-type]
        return hosts

    def _services(self, view: View) -> dict[IP, frozenset[Service]]:
        result: dict[IP, frozenset[Service]] = {}
        for host, entries in view.known_services.items():
            ip = self._map_ip(host)
            chosen: list[Service] = []
            for entry in entries:
                if isinstance(entry, Service):
                    chosen.append(entry)
                elif entry == "random":
                    pool = [s for s in self._node_services.get(self.ip_to_node.get(ip, ""), ())
                            if s not in chosen]
                    if pool:
                        chosen.append(self.rng.choice(pool))
            result[ip] = frozenset(chosen)
        return result

    def _data_pool(self, ip: IP | None, chosen: list[Data], exclude_type: str) -> list[Data]:
        if ip is not None:
            sources: Iterable[frozenset[Data]] = (self._data.get(self.ip_to_node.get(ip, ""), _EMPTY),)
        else:
            sources = self._data.values()
        pool: list[Data] = []
        for data in sources:
            for datum in sorted(data):
                if datum.type != exclude_type and datum not in chosen and datum not in pool:
                    pool.append(datum)
        return pool

    def _known_data(self, view: View, *, goal: bool) -> dict[IP, frozenset[Data]]:
        result: dict[IP, frozenset[Data]] = {}
        for host, entries in view.known_data.items():
            ip = self._map_ip(host)
            chosen: list[Data] = []
            for entry in entries:
                if isinstance(entry, Data):
                    chosen.append(entry)
                elif entry == "random":
                    # Start: a non-log datum of that host. Goal: any host's datum; upstream
                    # excludes type "logs" there, so log files can be drawn (reference §6.2).
                    pool = self._data_pool(None if goal else ip, chosen, "logs" if goal else "log")
                    if pool:
                        chosen.append(self.rng.choice(pool))
            result[ip] = frozenset(chosen)
        return result

    def _networks(self, view: View) -> set[Network]:
        return {self.network_map.get(network, network) for network in view.known_networks}

    def start_state(self, view: View) -> GameState:
        """An agent's start state (§6.2): draws in the order networks, controlled hosts,
        known hosts, services, data; then neighbouring networks of controlled hosts."""
        networks = self._networks(view)
        controlled = self._hosts(view.controlled_hosts, self.start_candidates)
        known = self._hosts(view.known_hosts, self.start_candidates) | controlled
        services = self._services(view)
        data = self._known_data(view, goal=False)
        for host in controlled:
            for network in self.ip_networks.get(host, _EMPTY):
                networks.add(network)
                if network.is_private():
                    networks.update(_neighbours(network))
        return GameState.trusted(frozenset(controlled), frozenset(known), services, data,
                                 frozenset(networks), {})

    def goal_state(self, view: View) -> GameState:
        """An agent's goal (§6.2): random hosts from all world IPs, no neighbours, no blocks."""
        networks = self._networks(view)
        controlled = self._hosts(view.controlled_hosts, self.all_ips)
        known = self._hosts(view.known_hosts, self.all_ips)
        services = self._services(view)
        data = self._known_data(view, goal=True)
        return GameState.trusted(frozenset(controlled), frozenset(known), services, data,
                                 frozenset(networks), {})

    # ------------------------------------------------------------------ mechanics
    def reachable(self, source: IP, target: IP) -> bool:
        return target in self._firewall.get(source, _EMPTY)

    def _refused(self, source: IP, target: IP, agent: Any, role: AgentRole) -> None:
        """A refused connection: defenders and benign agents earn each block's author a
        false positive (§6.3)."""
        if role is not AgentRole.Attacker:
            authors = self.agent_fw_rules.get((source, target))
            if authors:
                for author in authors:
                    self.false_positives[author] += 1

    def _log(self, target: IP, source: IP, action_type: ActionType) -> None:
        node = self.ip_to_node.get(target)
        if node is None:
            return
        entries = self._logs.get(node)
        if entries is None:
            entries = self._logs[node] = []
        entries.append(_log_entry(source, action_type))
        self._log_cache.pop(node, None)

    def node_data(self, node: str) -> frozenset[Data]:
        """The node's data with its log file's current content (built only when read)."""
        cached = self._log_cache.get(node)
        if cached is not None:
            return cached
        data = self._data.get(node, _EMPTY)
        entries = self._logs.get(node)
        if entries:
            content = "[" + ", ".join(entries) + "]"
            data = (data - {LOG_FILE}) | {Data("system", "logfile", len(content), "log", content)}
        elif LOG_FILE not in data:
            data = data | {LOG_FILE}  # every node has a log, even in hand-built worlds
        self._log_cache[node] = data
        return data

    def _networks_in(self, network: Network) -> tuple[IP, ...]:
        members = self._scan_cache.get(network)
        if members is None:
            try:
                block = ipaddress.ip_network(f"{network.ip}/{network.mask}", strict=False)
                members = tuple(ip for ip in self.all_ips if ipaddress.ip_address(ip.ip) in block)
            except ValueError:
                members = ()
            self._scan_cache[network] = members
        return members

    # ------------------------------------------------------------------ actions
    def step(self, state: GameState, action: Action, agent: Any, role: AgentRole) -> GameState:
        """Apply a validated game action; return the new state (the same object when
        a precondition fails or nothing changes)."""
        handler = self._handlers.get(action.action_type)
        if handler is None:
            return state
        return handler(self, state, action.parameters, agent, role)

    def _scan_network(self, state: GameState, params: dict[str, Any], agent: Any,
                      role: AgentRole) -> GameState:
        source = params["source_host"]
        if source not in state.controlled_hosts:
            return state
        found: list[IP] = []
        reachable = self._firewall.get(source, _EMPTY)
        for ip in self._networks_in(params["target_network"]):
            if ip in reachable:
                found.append(ip)
                self._log(ip, source, ActionType.ScanNetwork)
            else:
                self._refused(source, ip, agent, role)
        if not found or state.known_hosts.issuperset(found):
            return state
        return state.evolve(known_hosts=state.known_hosts.union(found))

    def _find_services(self, state: GameState, params: dict[str, Any], agent: Any,
                       role: AgentRole) -> GameState:
        source, target = params["source_host"], params["target_host"]
        if source not in state.controlled_hosts:
            return state
        if not self.reachable(source, target):
            self._refused(source, target, agent, role)
            return state
        self._log(target, source, ActionType.FindServices)
        node = self.ip_to_node.get(target)
        if node is None:
            return state
        found = (self._all_services if target in state.controlled_hosts else self._remote_services).get(node)
        if not found:
            return state
        changes: dict[str, Any] = {}
        if state.known_services.get(target) != found:
            services = dict(state.known_services)
            services[target] = found  # replaced, not merged (reference §6.5)
            changes["known_services"] = services
        if target not in state.known_hosts:
            changes["known_hosts"] = state.known_hosts | {target}
            changes["known_networks"] = state.known_networks | self.ip_networks.get(target, _EMPTY)
        return state.evolve(**changes) if changes else state

    def _find_data(self, state: GameState, params: dict[str, Any], agent: Any,
                   role: AgentRole) -> GameState:
        source, target = params["source_host"], params["target_host"]
        if source not in state.controlled_hosts:
            return state
        if not self.reachable(source, target):
            self._refused(source, target, agent, role)
            return state
        self._log(target, source, ActionType.FindData)  # before reading: the entry is visible
        if target not in state.controlled_hosts:
            return state
        changes: dict[str, Any] = {}
        node = self.ip_to_node.get(target)
        if node is not None:
            world_data = self.node_data(node)
            old = state.known_data.get(target)
            # Set union keeps the agent's existing equal element, so an older copy of the
            # log stays in its view (reference §6.6, seen in the edge-case transcript).
            merged = world_data if old is None else old | world_data
            if merged != old or old is None:
                data = dict(state.known_data)
                data[target] = merged
                changes["known_data"] = data
        blocks = self.fw_blocks.get(target)
        if blocks:
            old_blocks = state.known_blocks.get(target, _EMPTY)
            if not blocks <= old_blocks:
                known_blocks = dict(state.known_blocks)
                known_blocks[target] = old_blocks | blocks
                changes["known_blocks"] = known_blocks
        return state.evolve(**changes) if changes else state

    def _exploit_service(self, state: GameState, params: dict[str, Any], agent: Any,
                         role: AgentRole) -> GameState:
        source, target, service = params["source_host"], params["target_host"], params["target_service"]
        if source not in state.controlled_hosts:
            return state
        node = self.ip_to_node.get(target)
        if node is None:
            return state
        if not self.reachable(source, target):
            self._refused(source, target, agent, role)
            return state
        self._log(target, source, ActionType.ExploitService)
        if service not in self._all_services.get(node, _EMPTY):
            return state
        if service not in state.known_services.get(target, _EMPTY):
            return state
        if target in state.controlled_hosts:
            networks = self.ip_networks.get(target, _EMPTY)
            if networks <= state.known_networks:
                return state
            return state.evolve(known_networks=state.known_networks | networks)
        # Not added to known_hosts (reference §6.7).
        return state.evolve(controlled_hosts=state.controlled_hosts | {target},
                            known_networks=state.known_networks | self.ip_networks.get(target, _EMPTY))

    def _exfiltrate_data(self, state: GameState, params: dict[str, Any], agent: Any,
                         role: AgentRole) -> GameState:
        source, target, datum = params["source_host"], params["target_host"], params["data"]
        if target not in state.controlled_hosts or source not in state.controlled_hosts:
            return state
        if not self.reachable(source, target):
            self._refused(source, target, agent, role)
            return state
        if datum not in state.known_data.get(source, _EMPTY):
            return state
        self._log(target, source, ActionType.ExfiltrateData)
        source_node = self.ip_to_node.get(source)
        if source_node is None or datum not in self._data.get(source_node, _EMPTY):
            return state
        target_node = self.ip_to_node.get(target)
        if target_node is not None:
            current = self._data.get(target_node, _EMPTY)
            if datum not in current:
                self._data[target_node] = current | {datum}
                self._log_cache.pop(target_node, None)
        held = state.known_data.get(target, _EMPTY)
        if datum in held:
            return state
        data = dict(state.known_data)
        data[target] = held | {datum}
        return state.evolve(known_data=data)

    def _block_ip(self, state: GameState, params: dict[str, Any], agent: Any,
                  role: AgentRole) -> GameState:
        source, target = params["source_host"], params["target_host"]
        blocked = params.get("blocked_host") or params.get("blocked_ip")
        if source not in state.controlled_hosts or target not in state.controlled_hosts:
            return state
        if not self.reachable(source, target):
            self._refused(source, target, agent, role)
            return state
        self._log(target, source, ActionType.BlockIP)
        if blocked == target:
            return state
        for pair in ((target, blocked), (blocked, target)):
            self.agent_fw_rules.setdefault(pair, set()).add(agent)
        if not self._firewall_owned:
            self._firewall = dict(self._firewall)
            self._firewall_owned = True
        for a, b in ((target, blocked), (blocked, target)):
            reachable = self._firewall.get(a)
            if reachable is not None and b in reachable:
                self._firewall[a] = reachable - {b}
            self.fw_blocks[a] = self.fw_blocks.get(a, _EMPTY) | {b}
        known_blocks = dict(state.known_blocks)
        known_blocks[target] = known_blocks.get(target, _EMPTY) | {blocked}
        known_blocks[blocked] = known_blocks.get(blocked, _EMPTY) | {target}
        if known_blocks == state.known_blocks:
            return state
        return state.evolve(known_blocks=known_blocks)

    _handlers: dict[ActionType, Any] = {
        ActionType.ScanNetwork: _scan_network,
        ActionType.FindServices: _find_services,
        ActionType.FindData: _find_data,
        ActionType.ExploitService: _exploit_service,
        ActionType.ExfiltrateData: _exfiltrate_data,
        ActionType.BlockIP: _block_ip,
    }


def _neighbours(network: Network) -> list[Network]:
    """The networks 256 addresses below and above, when still private (§6.2 step 4)."""
    try:
        base = int(ipaddress.ip_address(network.ip))
    except ValueError:
        return []
    result = []
    for shifted in (base - 256, base + 256):
        if 0 <= shifted < 1 << 32:
            address = ipaddress.IPv4Address(shifted)
            if address.is_private:
                result.append(Network(str(address), network.mask))
    return result
