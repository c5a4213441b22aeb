"""world.remap, rule by rule: the edges of the address plan of reference netsecgame.md
§6.11 (and world/remap.py's docstring) that the registry scenarios never reach: public
draws that are never multicast, private blocks that must stay private as a whole, a
shift that leaves IPv4 space (redrawn, never a crash), a bigger private network after a
smaller one, hosts outside their listed network or in two nested networks, and goal-text
tokens that are not addresses (§6.11 step 4).

Addresses are random (§9: check the rules, not the values), so every rule is checked
over a range of seeds.
"""

from __future__ import annotations

import ipaddress
import random

from protocol import IP, Network
from world.remap import RemapStep, remap_addresses, rewrite_addresses

from .world_samples import CNC, PUBLIC

SEEDS = range(40)


def _block(network: Network) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{network.ip}/{network.mask}", strict=False)


def _in(ip: IP, network: Network) -> bool:
    return ipaddress.IPv4Address(ip.ip) in _block(network)


def _remap(networks: dict[Network, tuple[IP, ...]], seed: int) -> RemapStep:
    return remap_addresses(networks, random.Random(seed))


def test_public_networks_get_global_unicast_addresses() -> None:
    """§6.11 step 1 (upstream: Faker's public IPv4): a public network's new address is a
    global address and never a multicast one; the mask is kept."""
    for seed in range(200):
        new = _remap({PUBLIC: (CNC,)}, seed).networks[PUBLIC]
        address = ipaddress.IPv4Address(new.ip)
        assert address.is_global and not address.is_multicast, new
        assert new.mask == PUBLIC.mask


def test_a_big_private_network_stays_private_as_a_whole() -> None:
    """§6.11 step 2: every resulting network must be private, broadcast address included.
    A /11 drawn from 172.16.0.0/12 normalises to 172.0.0.0/11, whose broadcast address is
    private but whose network address is not: that draw is redrawn, never kept."""
    big = Network("10.0.0.0", 11)
    host = IP("10.0.0.9")
    for seed in SEEDS:
        step = _remap({big: (host,)}, seed)
        new = step.networks[big]
        assert new.is_private() and _block(new).is_private, new
        assert new.mask == 11 and new.ip == str(_block(new).network_address)
        assert _in(step.ips[host], new)


def test_a_shift_out_of_ipv4_space_is_redrawn_not_a_crash() -> None:
    """§6.11 step 2 "the whole private step is redrawn": with 10.0.0.0/24 and
    192.168.0.0/24, a base drawn in 172.16/12 or 192.168/16 pushes the second network past
    255.255.255.255; the plan is redrawn (or, after the attempts, the addresses are kept),
    and whatever comes out is private with the original distance."""
    low, high = Network("10.0.0.0", 24), Network("192.168.0.0", 24)
    distance = int(_block(high).network_address) - int(_block(low).network_address)
    for seed in SEEDS:
        step = _remap({low: (IP("10.0.0.1"),), high: (IP("192.168.0.1"),)}, seed)
        new_low, new_high = step.networks[low], step.networks[high]
        assert new_low.is_private() and new_high.is_private()
        assert int(_block(new_high).network_address) - int(_block(new_low).network_address) == distance


def test_a_shift_ending_exactly_at_two_to_the_32_is_out_of_range() -> None:
    """§6.11 step 2, the range check's end: 2**32 is not an IPv4 address. With the private
    (reserved) blocks 0.0.0.0/8 and 246.0.0.0/8 the only private /8 base, 10.0.0.0, puts
    the second network at exactly 2**32; every attempt is redrawn and the addresses stay."""
    zero, top = Network("0.0.0.0", 8), Network("246.0.0.0", 8)
    hosts = {zero: (IP("0.0.0.7"),), top: (IP("246.0.0.7"),)}
    for seed in range(5):
        step = _remap(hosts, seed)
        assert step.networks == {zero: zero, top: top}
        assert step.ips == {IP("0.0.0.7"): IP("0.0.0.7"), IP("246.0.0.7"): IP("246.0.0.7")}


def test_a_bigger_private_network_after_a_smaller_one_is_normalised() -> None:
    """§6.11 step 2: the base is aligned to the first (lowest) network's mask; a later /16
    shifted by the same distance lands mid-block and is normalised to its network address
    (mask kept, still private, its host inside), not rejected as having host bits set."""
    small, big = Network("10.0.0.0", 24), Network("10.1.0.0", 16)
    host = IP("10.1.0.20")
    moved = 0
    for seed in SEEDS:
        step = _remap({small: (IP("10.0.0.1"),), big: (host,)}, seed)
        new = step.networks[big]
        assert new.mask == 16 and new.ip == str(_block(new).network_address) and new.is_private()
        assert _in(step.ips[host], new)
        moved += new != big
    assert moved > len(SEEDS) // 2


def test_a_host_outside_its_listed_network_gets_a_usable_address_inside_it() -> None:
    """world/remap.py docstring / §6.11 step 3: an offset that falls outside the new network
    (here 256 = the address just past a /24's broadcast, and -1) takes a free usable host of
    the new network; a host with a usable offset keeps it."""
    lan = Network("10.0.0.0", 24)
    past, before, inside = IP("10.0.1.0"), IP("9.255.255.255"), IP("10.0.0.5")
    for seed in SEEDS:
        step = _remap({lan: (past, before, inside)}, seed)
        new = _block(step.networks[lan])
        usable = {IP(str(h)) for h in new.hosts()}
        assert {step.ips[past], step.ips[before]} <= usable
        assert len(set(step.ips.values())) == 3
        if step.ips[inside] != IP(str(new.network_address + 5)):  # only if a fallback took it first
            assert IP(str(new.network_address + 5)) in {step.ips[past], step.ips[before]}


def test_a_host_in_two_nested_networks_lies_inside_both_new_networks() -> None:
    """§6.11 steps 3-4: the network -> IPs table is rewritten, so a host listed in two
    nested networks (10.0.0.0/9 and 10.0.0.0/16) must be inside both new blocks (a scan of
    either finds it); every host is mapped, including ones after the shared host."""
    wide, narrow = Network("10.0.0.0", 9), Network("10.0.0.0", 16)
    shared = tuple(IP(f"10.0.{i}.{i + 5}") for i in range(8))
    for seed in SEEDS:
        step = _remap({wide: shared, narrow: shared, PUBLIC: (CNC,)}, seed)
        assert set(step.ips) == {*shared, CNC}
        for ip in shared:
            assert _in(step.ips[ip], step.networks[wide]) and _in(step.ips[ip], step.networks[narrow])
        assert _in(step.ips[CNC], step.networks[PUBLIC])


def test_goal_text_keeps_tokens_that_are_not_addresses() -> None:
    """§6.11 step 4: only known original addresses and networks are replaced; a token that
    is not an IP address stays exactly as written, its ``/m`` suffix included."""
    ip_map = {IP("10.0.0.1"): IP("172.16.0.1")}
    network_map = {Network("10.0.0.0", 24): Network("172.16.0.0", 24)}
    text = "see 1.2.3.999/24, 1.2.3.999, 10.0.0.1/24 and 10.0.0.0/24"
    assert rewrite_addresses(text, ip_map, network_map) == (
        "see 1.2.3.999/24, 1.2.3.999, 172.16.0.1/24 and 172.16.0.0/24")
