"""Dynamic address remapping (topology randomisation): the invariants of
reference/netsecgame.md §6.11 for every registry scenario, over many seeds.

Addresses themselves are random (upstream draws them from Faker, we from the game's
rng), so §9 says to check the invariants, not the values.
"""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocol import IP, AgentRole, Data, GameState, Network, Service
from world.game_world import GameWorld
from world.remap import remap_addresses, rewrite_addresses
from world.scenario import SCENARIO_FILES, Scenario, load_scenario
from world.task import View

from .world_samples import (
    CLIENT,
    CNC,
    DB,
    LAN1,
    LAN2,
    MS_DS,
    PUBLIC,
    SECRET,
    SMB,
    WEB,
    block,
    exploit,
    find_data,
    find_services,
    owning,
    scan,
)

NAMES = sorted(SCENARIO_FILES)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
FEW = settings(derandomize=True, deadline=None, max_examples=20)
ATTACKER = AgentRole.Attacker


def _block(network: Network) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{network.ip}/{network.mask}", strict=False)


def _int(ip: IP) -> int:
    return int(ipaddress.IPv4Address(ip.ip))


def remapped(name: str, seed: int) -> tuple[Scenario, GameWorld]:
    scenario = load_scenario(name)
    world = GameWorld(scenario, random.Random(0))
    world.rng.seed(seed)
    world.reset(randomize_topology=True)
    return scenario, world


def shifted(network: Network, distance: int) -> Network | None:
    address = int(_block(network).network_address) + distance
    if not 0 <= address < 1 << 32 or not ipaddress.IPv4Address(address).is_private:
        return None
    return Network(str(ipaddress.IPv4Address(address)), network.mask)


def check_invariants(scenario: Scenario, world: GameWorld) -> None:
    """Everything §6.11 promises about one world, relative to its scenario's originals."""
    ip_map, net_map = world.ip_map, world.network_map
    # one-to-one, total
    assert set(ip_map) == set(scenario.ip_to_node)
    assert len(set(ip_map.values())) == len(ip_map)
    assert set(net_map) == set(scenario.networks)
    assert len({_block(n) for n in net_map.values()}) == len(net_map)
    # the tables are rewritten
    assert world.ip_to_node == {ip_map[ip]: node for ip, node in scenario.ip_to_node.items()}
    assert set(world.networks) == set(net_map.values())
    for network, ips in scenario.networks.items():
        assert set(world.networks[net_map[network]]) == {ip_map[ip] for ip in ips}
    assert world.start_candidates == tuple(ip_map[ip] for ip in scenario.start_candidates)
    # networks: same mask; private stay private (normalised, same distances); public stay public
    private = sorted((n for n in scenario.networks if n.is_private()), key=lambda n: _block(n).network_address)
    for network, new in net_map.items():
        assert new.mask == network.mask
        assert new.is_private() == network.is_private()
        if network.is_private():
            assert new.ip == str(_block(new).network_address)
            assert _block(new).broadcast_address.is_private
        else:
            assert _block(new).is_global
    first = private[0]
    for network in private:
        assert (int(_block(net_map[network]).network_address) - int(_block(net_map[first]).network_address)
                == int(_block(network).network_address) - int(_block(first).network_address))
    # hosts keep their offsets (no fallback is needed in the registry scenarios)
    for network, ips in scenario.networks.items():
        new_block = _block(net_map[network])
        for ip in ips:
            new_ip = ip_map[ip]
            assert ipaddress.IPv4Address(new_ip.ip) in new_block
            assert (_int(new_ip) - int(new_block.network_address)
                    == _int(ip) - int(_block(network).network_address))
            assert new_ip.is_private() == ip.is_private()
    # firewall reachability is preserved under the mapping
    original = scenario.firewall()
    for source in scenario.ip_to_node:
        for target in scenario.ip_to_node:
            assert world.reachable(ip_map[source], ip_map[target]) == (target in original[source])


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(seed=SEEDS)
def test_remap_invariants(name: str, seed: int) -> None:
    """Reference §6.11 steps 1-4: one-to-one mapping, private networks stay private with
    their distances, public ones public with the same mask, hosts keep their offsets,
    firewall and start candidates rewritten."""
    scenario, world = remapped(name, seed)
    check_invariants(scenario, world)
    assert world.ip_map != {ip: ip for ip in scenario.ip_to_node}


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(first=SEEDS, second=SEEDS)
def test_second_remap_composes(name: str, first: int, second: int) -> None:
    """Reference §6.11 step 4 "cumulative mappings": after two changes ip_map still goes
    from the original address to the current one, through both steps."""
    scenario, world = remapped(name, first)
    ip_after_first, net_after_first = dict(world.ip_map), dict(world.network_map)
    step = remap_addresses(dict(world.networks), random.Random(second))
    world.rng.seed(second)
    world.reset(randomize_topology=True)
    assert world.ip_map == {ip: step.ips[current] for ip, current in ip_after_first.items()}
    assert world.network_map == {n: step.networks[current] for n, current in net_after_first.items()}
    check_invariants(scenario, world)


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(seed=SEEDS)
@example(seed=41)
@example(seed=57)
@example(seed=336)
def test_same_seed_gives_same_addresses(name: str, seed: int) -> None:
    """Reference §6.11: repeating the reset with the same seed gives the same addresses
    (the step from the current layout is the identity), and so does a fresh world.

    Seeds 41, 57 and 336 put the remapped third octets across a digit boundary (.9 ->
    .10), where string order and numeric order of the networks differ: the random base
    must go to the numerically first private network for this to hold."""
    _, world = remapped(name, seed)
    snapshot = (dict(world.ip_map), dict(world.network_map), dict(world.ip_to_node))
    world.rng.seed(seed)
    world.reset(randomize_topology=True)
    assert (world.ip_map, world.network_map, world.ip_to_node) == snapshot
    _, other = remapped(name, seed)
    assert (other.ip_map, other.network_map, other.ip_to_node) == snapshot


def test_different_seeds_give_different_addresses() -> None:
    """Reference §6.12: the plan comes from the seeded rng (not a constant)."""
    plans = {tuple(sorted(map(str, remapped("two_networks_tiny", seed)[1].network_map.values())))
             for seed in range(20)}
    assert len(plans) > 15


@pytest.mark.parametrize("name", ["scenario1_small", "two_networks_tiny", "three_net_scenario"])
@FEW
@given(seed=SEEDS)
def test_views_in_original_addresses_resolve_to_current(name: str, seed: int) -> None:
    """Reference §6.11 step 4 / §6.2: start and goal views name original addresses
    (explicit networks included: upstream raises KeyError there) and resolve to current
    ones; neighbours are computed on the current network."""
    _, world = remapped(name, seed)
    ip, net = world.ip_map, world.network_map
    view = View(known_networks=(LAN1,), known_hosts=(SMB,), controlled_hosts=(CLIENT, CNC),
                known_services={SMB: (MS_DS,)}, known_data={SMB: (SECRET,)},
                known_blocks={SMB: (CLIENT,)})
    current_lan2 = net[LAN2]
    neighbours = {n for n in (shifted(current_lan2, -256), shifted(current_lan2, 256)) if n is not None}
    assert net[LAN1] in neighbours
    assert world.start_state(view) == GameState(
        controlled_hosts={ip[CLIENT], ip[CNC]}, known_hosts={ip[CLIENT], ip[CNC], ip[SMB]},
        known_networks={net[LAN1], current_lan2, net[PUBLIC], *neighbours},
        known_services={ip[SMB]: {MS_DS}}, known_data={ip[SMB]: {SECRET}})
    assert world.goal_state(view) == GameState(
        controlled_hosts={ip[CLIENT], ip[CNC]}, known_hosts={ip[SMB]}, known_networks={net[LAN1]},
        known_services={ip[SMB]: {MS_DS}}, known_data={ip[SMB]: {SECRET}})


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(seed=SEEDS)
def test_keywords_resolve_to_current_addresses(name: str, seed: int) -> None:
    """Reference §6.11 step 5 / §4.3: ``all_local`` (KeyError upstream after a change) is
    every current private IP; ``random`` draws from the current candidates / IPs; a
    ``random`` service of an original host key comes from that node."""
    scenario, world = remapped(name, seed)
    private = {world.ip_map[ip] for ip in scenario.ip_to_node if ip.is_private()}
    assert world.start_state(View(controlled_hosts=("all_local",))).controlled_hosts == private
    assert world.goal_state(View(known_hosts=("all_local",))).known_hosts == private
    (start,) = world.start_state(View(controlled_hosts=("random",))).controlled_hosts
    assert start in set(world.start_candidates)
    (goal,) = world.goal_state(View(controlled_hosts=("random",))).controlled_hosts
    assert goal in set(world.ip_to_node)
    (service,) = world.start_state(View(known_services={CNC: ("random",)})).known_services[world.ip_map[CNC]]
    assert service in {Service("bash", "passive", "5.0.0", True), Service("listener", "passive", "1.0.0", False)}


@pytest.mark.parametrize("name", NAMES)
@FEW
@given(seed=SEEDS)
def test_goal_description_rewritten(name: str, seed: int) -> None:
    """Reference §6.11 step 4: every a.b.c.d or a.b.c.d/m token that is a known original
    address or network is replaced; other tokens stay."""
    scenario, world = remapped(name, seed)
    ip, net = world.ip_map, world.network_map
    public = next(n for n in scenario.networks if not n.is_private())
    text = ("Exfiltrate data from Samba server to remote C&C server (213.47.23.195). "
            "Reach 192.168.2.0/24 and 213.47.23.192/26; ignore 8.8.8.8, 10.0.0.0/8 and 1.2.3.999.")
    assert world.describe_goal(text) == (
        f"Exfiltrate data from Samba server to remote C&C server ({ip[CNC]}). "
        f"Reach {net.get(LAN2, '192.168.2.0/24')} and {net[public]}; "
        "ignore 8.8.8.8, 10.0.0.0/8 and 1.2.3.999.")
    assert str(ip[CNC]) not in text and str(net[public]) not in text
    # a second change rewrites the original text again, to the newest addresses
    world.rng.seed(seed ^ 0x5A5A5A5A)
    world.reset(randomize_topology=True)
    assert world.describe_goal("C&C 213.47.23.195") == f"C&C {world.ip_map[CNC]}"


def test_goal_description_unchanged_without_remap() -> None:
    """Reference §6.11: the identity mapping leaves the text as it is."""
    world = GameWorld(load_scenario("scenario1_small"), random.Random(1))
    text = "Exfiltrate data from Samba server to remote C&C server (213.47.23.195)."
    assert world.describe_goal(text) == text
    assert rewrite_addresses("", world.ip_map, world.network_map) == ""


@FEW
@given(seed=SEEDS)
def test_game_plays_the_same_after_remap(seed: int) -> None:
    """Reference §6.11: "the relative layout is preserved": the transcript's attack works
    on the new addresses, and a block is undone by a plain reset to the remapped firewall."""
    _, world = remapped("scenario1_small", seed)
    m, n = world.ip_map, world.network_map
    state = owning(m[CLIENT], m[CNC])
    state = world.step(state, scan(m[CLIENT], n[LAN1]), "a", ATTACKER)
    assert state.known_hosts == {m[CLIENT], m[CNC], m[SMB], m[DB], m[WEB]}
    state = world.step(state, find_services(m[CLIENT], m[SMB]), "a", ATTACKER)
    state = world.step(state, exploit(m[CLIENT], m[SMB], MS_DS), "a", ATTACKER)
    state = world.step(state, find_data(m[SMB], m[SMB]), "a", ATTACKER)
    assert SECRET in state.known_data[m[SMB]]
    world.step(owning(m[SMB]), block(m[SMB], m[SMB], m[DB]), "d", AgentRole.Defender)
    assert not world.reachable(m[DB], m[SMB])
    world.reset()
    assert world.reachable(m[DB], m[SMB]) and world.reachable(m[SMB], m[DB])
    assert world.ip_map == m  # a plain reset keeps the addresses
    assert world.fw_blocks == {}


@FEW
@given(seed=SEEDS)
def test_host_on_network_or_broadcast_address_falls_back_to_usable_host(seed: int) -> None:
    """Reference §6.11 step 3: a shifted address that is the network or broadcast address
    is replaced by a free usable host of the new network; the mapping stays one-to-one."""
    lan = Network("10.0.0.0", 29)
    hosts = (IP("10.0.0.0"), IP("10.0.0.1"), IP("10.0.0.3"), IP("10.0.0.7"))
    step = remap_addresses({lan: hosts}, random.Random(seed))
    new = _block(step.networks[lan])
    assert new.prefixlen == 29 and new.is_private
    assert len(set(step.ips.values())) == len(hosts)
    usable = {IP(str(h)) for h in new.hosts()}
    assert set(step.ips.values()) <= usable
    # .1 and .3 are usable offsets: they keep them unless a host before them (in string
    # order) already took that address; .0 and .7 never keep theirs.
    for index, host in enumerate(hosts):
        kept = IP(str(new.network_address + _int(host) - _int(hosts[0])))
        if kept in usable and step.ips[host] != kept:
            assert kept in {step.ips[earlier] for earlier in hosts[:index]}
        if kept not in usable:
            assert step.ips[host] != kept


def test_data_and_services_follow_the_node() -> None:
    """Reference §6.11: node tables are keyed by node, so data and services move with
    the address (the world data of the remapped smb is smb's)."""
    _, world = remapped("scenario1_small", 99)
    m = world.ip_map
    state = owning(m[CLIENT], m[SMB])
    after = world.step(state, find_data(m[CLIENT], m[SMB]), "a", ATTACKER)
    assert after.known_data[m[SMB]] >= {SECRET, Data("User2", "Data2FromServer1")}
    after = world.step(state, find_services(m[CLIENT], m[SMB]), "a", ATTACKER)
    assert MS_DS in after.known_services[m[SMB]]
