"""GameWorld: start and goal views (neighbouring networks, random draws), the goal check,
the firewall switch and world reset, against reference/netsecgame.md §3.3, §4.3, §5.1,
§5.2, §6.2 and §6.10.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from protocol import IP, Data, GameState, Network
from world.game_world import GameWorld, goal_reached
from world.scenario import LOG_FILE, load_scenario
from world.task import View

from .world_samples import (
    ATTACKER,
    BENIGN,
    CLIENT,
    CNC,
    DB,
    DEFENDER,
    LAN1,
    LAN2,
    LAN3,
    MS_DS,
    MS_WBT,
    NOWHERE,
    PUBLIC,
    ROUTER1,
    SECRET,
    SMB,
    SMB_DATA,
    SMB_SERVICES,
    SSH,
    WEB,
    block,
    exfil_ready,
    exfiltrate,
    find_data,
    find_services,
    first_state,
    log_of,
    make_world,
    owning,
)


# ---------------------------------------------------------------------------- start and goal views
def test_start_state_adds_neighbouring_networks() -> None:
    """Reference §6.2 start step 4: the controlled host's network and, being private, the
    networks +-256 away (192.168.1.0/24 and .3.0/24, which need not exist)."""
    world = make_world()
    assert world.start_state(View(controlled_hosts=(CLIENT,))) == GameState(
        controlled_hosts={CLIENT}, known_hosts={CLIENT}, known_networks={LAN1, LAN2, LAN3})


def test_start_state_public_network_gets_no_neighbours() -> None:
    """Reference §6.2 start step 4: public networks are added without neighbours."""
    world = make_world()
    assert world.start_state(View(controlled_hosts=(CNC,))) == GameState(
        controlled_hosts={CNC}, known_hosts={CNC}, known_networks={PUBLIC})


def test_start_state_neighbours_only_while_still_private(tmp_path: Path) -> None:
    """Reference §6.2 start step 4: a shifted network is added only if still private
    (10.0.0.0 - 256 = 9.255.255.0 is public; 172.16.0.0 - 256 = 172.15.255.0 too)."""
    path = tmp_path / "edge.yaml"
    path.write_text(
        "name: edge\n"
        "nodes:\n"
        "  - id: a\n"
        "    interfaces: [{ip: 10.0.0.5, network: 10.0.0.0/24}]\n"
        "  - id: b\n"
        "    interfaces: [{ip: 172.16.0.9, network: 172.16.0.0/24}]\n"
        "start_candidates: [10.0.0.5]\n")
    world = GameWorld(load_scenario(path), random.Random(1))
    assert world.start_state(View(controlled_hosts=(IP("10.0.0.5"),))).known_networks == {
        Network("10.0.0.0", 24), Network("10.0.1.0", 24)}
    assert world.start_state(View(controlled_hosts=(IP("172.16.0.9"),))).known_networks == {
        Network("172.16.0.0", 24), Network("172.16.1.0", 24)}


def test_start_state_known_hosts_include_controlled_and_literal_entries() -> None:
    """Reference §6.2 start steps 2-3: IP entries are taken literally (no existence check),
    every controlled host is also known; known_blocks is always empty."""
    world = make_world()
    state = world.start_state(View(known_networks=(Network("10.9.9.0", 24),), known_hosts=(NOWHERE,),
                                   controlled_hosts=(CNC, IP("1.2.3.4"))))
    assert state == GameState(controlled_hosts={CNC, IP("1.2.3.4")}, known_hosts={CNC, IP("1.2.3.4"), NOWHERE},
                              known_networks={Network("10.9.9.0", 24), PUBLIC})


def test_random_start_draw_is_weighted_by_duplicate_candidates() -> None:
    """Reference §5.2: ``random`` draws uniformly from the candidate list, duplicates
    included: on two_networks client_1 (listed twice) comes up with probability 2/6."""
    world = make_world("two_networks", seed=2024)
    view = View(controlled_hosts=("random",))
    draws = 6000
    counts: Counter[IP] = Counter()
    for _ in range(draws):
        (host,) = world.start_state(view).controlled_hosts
        counts[host] += 1
    assert set(counts) == {IP(f"192.168.2.{i}") for i in range(2, 7)}
    # Binomial sd is about 36 for p = 1/3 and 27 for p = 1/6: bounds of about 6 sd.
    assert abs(counts[CLIENT] - draws * 2 / 6) < 220
    for i in range(3, 7):
        assert abs(counts[IP(f"192.168.2.{i}")] - draws / 6) < 170


def test_random_known_host_in_start_draws_from_candidates_but_goal_from_all_ips() -> None:
    """Reference §4.3 / §6.2: start ``random`` hosts come from the start candidates, goal
    ``random`` hosts from every world IP (routers included)."""
    world = make_world("two_networks_tiny", seed=5)
    start = {host for _ in range(50) for host in world.start_state(View(known_hosts=("random",))).known_hosts}
    assert start == {CLIENT}
    goal: set[IP] = set()
    for _ in range(400):
        state = world.goal_state(View(controlled_hosts=("random",), known_hosts=("random",)))
        goal |= state.controlled_hosts | state.known_hosts
    assert goal == set(world.scenario.ip_to_node)
    assert ROUTER1 in goal


def test_all_local_is_every_private_ip_including_routers() -> None:
    """Reference §4.3 / §6.2 step 2: ``all_local`` gives every IP of every private
    network, routers included (three_net_scenario: 14 of its 15 IPs)."""
    world = make_world("three_net_scenario")
    private = {ip for ip in world.scenario.ip_to_node if ip != CNC}
    assert len(private) == 14
    assert {IP("192.168.1.1"), IP("192.168.4.1"), IP("192.168.3.2")} <= private
    state = world.start_state(View(controlled_hosts=("all_local",)))
    assert state.controlled_hosts == private
    assert state.known_hosts == private
    assert world.goal_state(View(known_hosts=("all_local",))).known_hosts == private


def test_goal_state_has_no_neighbours_and_no_blocks() -> None:
    """Reference §6.2 goal: the same parsing without neighbour expansion; known_blocks is
    left out even when the view has some."""
    world = make_world()
    goal = world.goal_state(View(controlled_hosts=(CLIENT,), known_networks=(LAN1,),
                                 known_blocks={SMB: (CLIENT,)}))
    assert goal == GameState(controlled_hosts={CLIENT}, known_networks={LAN1})


def test_goal_random_data_can_draw_the_log_file() -> None:
    """Reference §6.2 goal / §12.2 item 1: goal ``random`` data come from all hosts'
    data and exclude type "logs", so the log file (type "log") can be drawn."""
    world = make_world("two_networks_tiny", seed=11)
    drawn: set[Data] = set()
    for _ in range(300):
        (datum,) = world.goal_state(View(known_data={CNC: ("random",)})).known_data[CNC]
        drawn.add(datum)
    assert drawn == SMB_DATA | {LOG_FILE}


def test_start_random_data_is_a_non_log_datum_of_that_host() -> None:
    """Reference §6.2 start step 6: ``random`` picks a datum of that host whose type is
    not ``log``; already listed data are not drawn again."""
    world = make_world(seed=3)
    drawn: set[Data] = set()
    for _ in range(200):
        (datum,) = world.start_state(View(known_data={SMB: ("random",)})).known_data[SMB]
        drawn.add(datum)
    assert drawn == SMB_DATA
    for _ in range(20):
        picked = world.start_state(View(known_data={SMB: (SECRET, "random", "random")})).known_data[SMB]
        assert len(picked) == 3 and picked <= SMB_DATA and SECRET in picked


def test_random_service_excludes_already_listed_services() -> None:
    """Reference §6.2 start step 5: ``random`` picks one of the host's services, local
    ones included, not already listed; when none is left nothing is added."""
    for seed in range(10):
        world = make_world(seed=seed)
        view = View(known_services={SMB: (MS_DS, "random", "random", "random", "random")})
        assert world.start_state(view).known_services == {SMB: SMB_SERVICES}
        assert world.goal_state(view).known_services == {SMB: SMB_SERVICES}
        (single,) = world.start_state(View(known_services={SMB: ("random",)})).known_services[SMB]
        assert single in SMB_SERVICES


# ---------------------------------------------------------------------------- goal check
def test_goal_reached_dict_of_set_semantics() -> None:
    """Reference §3.3: subset for the three sets; for services and data every goal key
    must be present with a subset of values; extra keys are fine."""
    state = GameState(controlled_hosts={CLIENT, SMB}, known_hosts={CLIENT, SMB, DB},
                      known_networks={LAN1, LAN2},
                      known_services={SMB: {MS_DS, MS_WBT}, DB: {SSH}},
                      known_data={CNC: {SECRET, LOG_FILE}, SMB: SMB_DATA})
    assert goal_reached(state, GameState(known_services={SMB: {MS_DS}}, known_data={CNC: {SECRET}}))
    assert goal_reached(state, GameState(controlled_hosts={SMB}, known_hosts={DB}, known_networks={LAN2}))
    assert goal_reached(state, GameState(known_services={SMB: set()}))  # key present, empty subset
    assert not goal_reached(state, GameState(known_services={WEB: set()}))  # key missing
    assert not goal_reached(state, GameState(known_data={DB: {SECRET}}))  # key missing
    assert not goal_reached(state, GameState(known_services={SMB: {MS_DS, SSH}}))  # not a subset
    assert not goal_reached(state, GameState(controlled_hosts={DB}))
    assert not goal_reached(state, GameState(known_hosts={WEB}))
    assert not goal_reached(state, GameState(known_networks={LAN3}))


def test_empty_goal_is_reached_immediately() -> None:
    """Reference §3.3: an empty goal is reached at once, even by an empty state."""
    assert goal_reached(GameState(), GameState())
    world = make_world()
    assert goal_reached(first_state(world), world.goal_state(View()))


def test_goal_data_equality_ignores_size_and_content_but_not_type() -> None:
    """Reference §1.4 / §3.3: Data membership uses (owner, id, type) only."""
    goal = GameState(known_data={CNC: {Data("User1", "DataFromServer1")}})
    assert goal_reached(GameState(known_data={CNC: {Data("User1", "DataFromServer1", 99, "", "x")}}), goal)
    assert not goal_reached(GameState(known_data={CNC: {Data("User1", "DataFromServer1", 0, "log")}}), goal)


def test_goal_ignores_known_blocks() -> None:
    """Reference §3.3: NetSecGame's goal check has no known_blocks part."""
    assert goal_reached(GameState(), GameState(known_blocks={SMB: {CLIENT}}))


# ---------------------------------------------------------------------------- firewall and reset
def test_without_firewall_every_ip_reaches_every_ip() -> None:
    """Reference §5.1 "Firewall": with use_firewall false every IP reaches every IP."""
    world = make_world(use_firewall=False)
    ips = list(world.scenario.ip_to_node)
    assert all(world.reachable(a, b) for a in ips for b in ips)
    assert world.step(owning(SMB), find_services(SMB, CLIENT), "a", ATTACKER).known_services == {
        CLIENT: {MS_WBT}}
    firewalled = make_world()
    assert not firewalled.reachable(SMB, CLIENT) and not firewalled.reachable(CNC, SMB)


@pytest.mark.parametrize("how", ["reset", "reset_episode"])
def test_world_reset_restores_data_logs_firewall_and_clears_blocks(how: str) -> None:
    """Reference §6.10 step 3: data, logs and firewall come back from the originals;
    fw_blocks and agent_fw_rules are cleared (and so are false positives)."""
    world = make_world()
    original = {node: world.node_data(node) for node in world.scenario.node_data}
    state = world.step(exfil_ready(world), exfiltrate(SMB, CNC, SECRET), "a", ATTACKER)
    world.step(owning(SMB), block(SMB, SMB, DB), "d", DEFENDER)
    world.step(owning(DB), find_services(DB, SMB), "b", BENIGN)
    assert world.false_positives and world.fw_blocks and not world.reachable(SMB, DB)
    assert log_of(world, SMB).content
    getattr(world, how)()
    for node, data in original.items():
        assert world.node_data(node) == data
        assert all(d.content == "" and d.size == 0 for d in world.node_data(node))
    assert world.fw_blocks == {} and world.agent_fw_rules == {}
    assert world.false_positives == Counter()
    assert world.reachable(SMB, DB) and world.reachable(DB, SMB)
    assert world.step(owning(CNC), find_data(CNC, CNC), "b", ATTACKER).known_data[CNC] == {LOG_FILE}
    assert state.known_data[CNC] == {SECRET}  # agent states are not the world's business


def test_reset_keeps_addresses_without_randomisation() -> None:
    """Reference §6.10 step 2: addresses change only when the topology change is asked."""
    world = make_world()
    world.reset()
    assert world.ip_map == {ip: ip for ip in world.scenario.ip_to_node}
    assert world.ip_to_node == world.scenario.ip_to_node
