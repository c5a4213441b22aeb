"""A game world's :class:`~protocol.catalog.Catalog`: its scenario's entities by slot name,
bound to the addresses of the current episode.

The layout (names, order, services, data) depends only on the scenario and is built once
per scenario; the binding follows the world's address map (reference netsecgame.md
§6.11), so it changes only when a reset remaps the topology.

>>> import random
>>> from world.game_world import GameWorld
>>> from world.scenario import load_scenario
>>> catalog = catalog_of(GameWorld(load_scenario("two_networks_tiny"), random.Random(1)))
>>> catalog.hosts
('router1@192.168.1.0/24', 'smb_server', 'router1@192.168.2.0/24', 'client_1', 'outside_node')
>>> [str(ip) for ip in catalog.host_ips]
['192.168.1.1', '192.168.1.2', '192.168.2.1', '192.168.2.2', '213.47.23.195']
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import attrs

from protocol import IP, Data, Network, Service
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

from .scenario import LOG_FILE, Scenario

if TYPE_CHECKING:
    from .game_world import GameWorld

__all__ = ["all_actions_json", "catalog_of", "scenario_layout"]


@attrs.frozen
class _Layout:
    ips: tuple[IP, ...]                 # original address of each host slot
    hosts: tuple[str, ...]
    networks: tuple[Network, ...]       # original networks
    network_names: tuple[str, ...]
    services: tuple[tuple[Service, ...], ...]
    data: tuple[Data, ...]


_LAYOUTS: dict[int, tuple[Scenario, _Layout]] = {}


def scenario_layout(scenario: Scenario) -> _Layout:
    """The slots of a scenario (cached per scenario object)."""
    known = _LAYOUTS.get(id(scenario))
    if known is not None and known[0] is scenario:
        return known[1]
    ips = tuple(sorted(scenario.ip_to_node, key=lambda ip: ip.ip))
    interfaces: dict[str, int] = {}
    for node in scenario.ip_to_node.values():
        interfaces[node] = interfaces.get(node, 0) + 1
    names = []
    for ip in ips:
        node = scenario.ip_to_node[ip]
        names.append(node if interfaces[node] == 1 else f"{node}@{_network_of(scenario, ip)}")
    networks = tuple(sorted(scenario.networks))
    data = set().union(*scenario.node_data.values()) | {LOG_FILE} if scenario.node_data else {LOG_FILE}
    layout = _Layout(
        ips=ips,
        hosts=tuple(names),
        networks=networks,
        network_names=tuple(str(network) for network in networks),
        services=tuple(tuple(scenario.node_services.get(scenario.ip_to_node[ip], ())) for ip in ips),
        data=tuple(sorted(data)),
    )
    if len(_LAYOUTS) > 64:
        _LAYOUTS.clear()
    _LAYOUTS[id(scenario)] = (scenario, layout)
    return layout


def _network_of(scenario: Scenario, ip: IP) -> str:
    for network, members in scenario.networks.items():
        if ip in members:
            return str(network)
    address = ipaddress.ip_address(ip.ip)
    for network in scenario.networks:
        if address in ipaddress.ip_network(f"{network.ip}/{network.mask}", strict=False):
            return str(network)
    return ip.ip


def catalog_of(world: GameWorld) -> Catalog:
    """The world's catalog at its current addresses (cached until the addresses change)."""
    cached = getattr(world, "_catalog", None)
    if cached is not None and cached[0] is world.ip_map:
        return cached[1]  # type: ignore[no-any-return]
    layout = scenario_layout(world.scenario)
    catalog = Catalog(
        hosts=layout.hosts,
        host_ips=tuple(world.ip_map.get(ip, ip) for ip in layout.ips),
        networks=layout.network_names,
        network_addresses=tuple(world.network_map.get(n, n) for n in layout.networks),
        services=layout.services,
        data=layout.data,
    )
    world._catalog = (world.ip_map, catalog)  # type: ignore[attr-defined]
    return catalog


_ALL_ACTIONS: dict[Catalog, str] = {}


def all_actions_json(world: GameWorld) -> str:
    """Upstream's ``all_actions`` for the world's current addresses (reference §7.1),
    built once per distinct catalog: a join reply must not enumerate thousands of actions."""
    catalog = catalog_of(world)
    text = _ALL_ACTIONS.get(catalog)
    if text is None:
        if len(_ALL_ACTIONS) > 64:
            _ALL_ACTIONS.clear()
        text = _ALL_ACTIONS[catalog] = ActionTable(catalog).as_all_actions_json(catalog)
    return text
