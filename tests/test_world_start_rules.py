"""GameWorld start rules at the edges: neighbouring networks at the ends of IPv4 space and of
a host in two networks, random start services of a host without any, goal data that exclude
type ``logs``, an unknown source host, the firewall setting, and a remap that runs out of
addresses. Reference netsecgame.md §5.1, §6.2, §6.3, §6.5, §6.11; ``Scenario`` is public and
may be built by hand (as in test_world_game_world_rules).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from protocol import IP, Data, Network
from world.game_world import GameWorld
from world.remap import remap_addresses
from world.scenario import LOG_FILE, Scenario, load_scenario
from world.session import GameSession
from world.task import View

from .world_samples import ATTACKER, CLIENT, NOWHERE, SSH, find_services, make_world, owning, scan, task_with

LOW, HIGH = IP("0.0.1.5"), IP("255.255.255.5")
HOME, ROUTER = IP("10.0.0.2"), IP("10.0.0.1")
LAN, WIDE = Network("10.0.0.0", 24), Network("10.0.0.0", 16)


def _edge_world(tmp_path: Path) -> GameWorld:
    """One host in the lowest /24 of IPv4 space, one in the highest (both private ranges
    for Python's ipaddress: 0.0.0.0/8 and 240.0.0.0/4)."""
    path = tmp_path / "edge.yaml"
    path.write_text(
        "name: edge\n"
        "nodes:\n"
        "  - id: low\n"
        "    interfaces: [{ip: 0.0.1.5, network: 0.0.1.0/24}]\n"
        "  - id: high\n"
        "    interfaces: [{ip: 255.255.255.5, network: 255.255.255.0/24}]\n"
        "start_candidates: [0.0.1.5]\n", encoding="utf-8")
    return GameWorld(load_scenario(path), random.Random(1))


def test_neighbours_reach_down_to_the_first_network_of_ipv4_space(tmp_path: Path) -> None:
    """§6.2 start step 4: 0.0.1.0/24 - 256 is 0.0.0.0/24, still private, so it is added."""
    world = _edge_world(tmp_path)
    assert world.start_state(View(controlled_hosts=(LOW,))).known_networks == {
        Network("0.0.0.0", 24), Network("0.0.1.0", 24), Network("0.0.2.0", 24)}


def test_neighbours_stop_at_the_end_of_ipv4_space(tmp_path: Path) -> None:
    """§6.2 start step 4: 255.255.255.0/24 + 256 is past the last address: no such network
    (and no crash); the one below is added."""
    world = _edge_world(tmp_path)
    assert world.start_state(View(controlled_hosts=(HIGH,))).known_networks == {
        Network("255.255.254.0", 24), Network("255.255.255.0", 24)}


def _hand_world() -> GameWorld:
    """``home`` sits in two world networks (a /24 inside a /16) and has no services entry;
    ``router`` is in the /24 only and has ssh. Its data: a datum of type "logs" and the log
    file. Firewall on: the LAN is fully connected."""
    scenario = Scenario(name="hand", ip_to_node={HOME: "home", ROUTER: "router"},
                        networks={LAN: (HOME, ROUTER), WIDE: (HOME,)},
                        node_services={"router": (SSH,)},
                        node_data={"home": frozenset({Data("u", "journal", type="logs"), LOG_FILE}),
                                   "router": frozenset({LOG_FILE})},
                        allow_rules=(), start_candidates=(HOME,))
    return GameWorld(scenario, random.Random(1))


def test_a_host_in_two_networks_starts_knowing_both() -> None:
    """§6.2 start step 4: every world network containing a controlled host is added, each
    with its neighbours."""
    world = _hand_world()
    assert world.start_state(View(controlled_hosts=(HOME,))).known_networks == {
        LAN, Network("10.0.1.0", 24), WIDE, Network("10.0.1.0", 16)}


def test_a_random_start_service_of_a_host_without_services_is_none() -> None:
    """§6.2 start step 5: ``random`` picks one of the host's services; a node with no services
    entry, or an address of no node, gets an empty set, not an error."""
    world = _hand_world()
    state = world.start_state(View(controlled_hosts=(HOME,),
                                   known_services={HOME: ("random",), NOWHERE: ("random",),
                                                   ROUTER: ("random",)}))
    assert state.known_services == {HOME: frozenset(), NOWHERE: frozenset(), ROUTER: frozenset({SSH})}


def test_a_random_goal_datum_excludes_type_logs_but_not_log_files() -> None:
    """§6.2 goal: ``random`` draws from every host's data except type ``logs``, so a log file
    (type ``log``) can be drawn and a ``logs`` datum never is."""
    for seed in range(20):
        world = _hand_world()
        world.rng.seed(seed)
        assert world.goal_state(View(known_data={HOME: ("random",)})).known_data == {HOME: frozenset({LOG_FILE})}


def test_a_controlled_host_outside_the_world_reaches_nothing() -> None:
    """§6.2: controlled IPs are taken literally, with no existence check; §6.3: an unknown
    source is unreachable, so its FindServices changes nothing and a scan finds nobody."""
    world = make_world()
    stranger = IP("1.2.3.4")
    start = owning(stranger, CLIENT)
    assert world.reachable(stranger, CLIENT) is False
    assert world.step(start, find_services(stranger, CLIENT), "a", ATTACKER) is start
    assert world.step(start, scan(stranger, Network("192.168.2.0", 24)), "a", ATTACKER) is start
    assert world.reachable(CLIENT, CLIENT) is True


def test_the_world_reports_the_tasks_firewall_setting() -> None:
    """env.use_firewall (reference §4.2, §5.1): the game's world says whether its firewall is
    on, and without it every host reaches every host."""
    on = GameSession(task_with(), seed=1).world
    off = GameSession(task_with(**{"env.use_firewall": False}), seed=1).world
    assert on.use_firewall is True and off.use_firewall is False
    cnc, smb = IP("213.47.23.195"), IP("192.168.1.2")
    assert (on.reachable(cnc, smb), off.reachable(cnc, smb)) == (False, True)


def test_a_remap_with_no_free_address_names_the_network_and_the_host() -> None:
    """§6.11 step 3: a host whose shifted address is the broadcast address takes a free one
    from the new network's usable hosts; when none is left the error says which network
    and which host (a /30 has two usable hosts, here three are listed)."""
    hosts = (IP("10.0.0.1"), IP("10.0.0.2"), IP("10.0.0.3"))
    with pytest.raises(ValueError) as info:
        remap_addresses({Network("10.0.0.0", 30): hosts}, random.Random(5))
    assert re.fullmatch(r"network (\d+\.){3}\d+/30 has no free address for 10\.0\.0\.3", str(info.value))

