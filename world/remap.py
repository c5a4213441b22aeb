"""Dynamic address remapping: a new address plan with the same layout (reference §6.11).

NetSecGame draws new addresses with Faker; we draw them from the game's own
``random.Random`` and keep the invariants that matter to agents:

* every public network gets a random public address with the same mask (not
  normalised, as upstream: ``175.148.76.156/26`` happens);
* the first private network (in string order) gets a random private base, and every
  other private network keeps its numeric distance from it, all still private;
* every host keeps its offset inside its network; an offset that would fall outside
  the new network, or on its network or broadcast address, takes a free address from
  a shuffled pool of the network's usable hosts;
* the mapping is one-to-one, and the same seed gives the same plan.
"""

from __future__ import annotations

import ipaddress
import random
import re

import attrs

from protocol import IP, Network

__all__ = ["RemapStep", "remap_addresses", "rewrite_addresses"]

_PRIVATE_RANGES = (ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv4Network("172.16.0.0/12"),
                   ipaddress.IPv4Network("192.168.0.0/16"))
_ATTEMPTS = 100
_ADDRESS = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?\b")


@attrs.frozen
class RemapStep:
    """One change of addresses: current -> new, for hosts and networks."""

    ips: dict[IP, IP]
    networks: dict[Network, Network]


def _random_private(rng: random.Random) -> ipaddress.IPv4Address:
    block = rng.choice(_PRIVATE_RANGES)
    return block.network_address + rng.randrange(block.num_addresses)


def _random_public(rng: random.Random) -> ipaddress.IPv4Address:
    while True:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global and not address.is_multicast:
            return address


def _block(network: Network) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{network.ip}/{network.mask}", strict=False)


def _private_plan(private: list[Network], rng: random.Random) -> dict[Network, Network]:
    """Shift every private network by the same distance to a random private base."""
    first = int(_block(private[0]).network_address)
    for _ in range(_ATTEMPTS):
        base = int(ipaddress.IPv4Network(f"{_random_private(rng)}/{private[0].mask}",
                                         strict=False).network_address)
        plan: dict[Network, Network] = {}
        for network in private:
            start = base + int(_block(network).network_address) - first
            if not 0 <= start < 1 << 32:
                break
            new = ipaddress.IPv4Network(f"{ipaddress.IPv4Address(start)}/{network.mask}", strict=False)
            if not (new.is_private and new.broadcast_address.is_private):
                break
            plan[network] = Network(str(new.network_address), network.mask)
        else:
            return plan
    return {network: network for network in private}  # no private plan found: keep addresses


def remap_addresses(networks: dict[Network, tuple[IP, ...]], rng: random.Random) -> RemapStep:
    """Draw a new address plan for ``networks`` (network -> its hosts)."""
    ordered = sorted(networks, key=str)
    plan: dict[Network, Network] = {}
    # The base goes to the numerically lowest private network, not the first in string
    # order: a uniform shift keeps numeric order but not string order (.9.0 -> .10.0), so
    # only this choice makes a repeated remap with the same seed give the same addresses
    # (reference §6.11). For the registry scenarios both orders agree on the originals.
    private = sorted((n for n in ordered if n.is_private()),
                     key=lambda n: int(_block(n).network_address))
    for network in ordered:
        if network not in private:
            plan[network] = Network(str(_random_public(rng)), network.mask)
    if private:
        plan.update(_private_plan(private, rng))

    ips: dict[IP, IP] = {}
    used: set[IP] = set()
    hosts = sorted({(ip, network) for network, members in networks.items() for ip in members},
                   key=lambda pair: (pair[0].ip, str(pair[1])))
    for ip, network in hosts:
        if ip in ips:
            continue  # a host in two networks keeps its first mapping
        old, new = _block(network), _block(plan[network])
        offset = int(ipaddress.IPv4Address(ip.ip)) - int(old.network_address)
        candidate = new.network_address + offset if 0 <= offset < new.num_addresses else None
        if (candidate is None or candidate in (new.network_address, new.broadcast_address)
                or IP(str(candidate)) in used):
            pool = [IP(str(h)) for h in new.hosts()]
            rng.shuffle(pool)
            candidate = next((h for h in pool if h not in used), None)
            if candidate is None:
                raise ValueError(f"network {plan[network]} has no free address for {ip}")
            new_ip = candidate
        else:
            new_ip = IP(str(candidate))
        ips[ip] = new_ip
        used.add(new_ip)
    return RemapStep(ips, plan)


def rewrite_addresses(text: str, ip_map: dict[IP, IP], network_map: dict[Network, Network]) -> str:
    """Replace every known ``a.b.c.d`` or ``a.b.c.d/m`` token by its current address."""
    if not text:
        return text

    def replace(match: re.Match[str]) -> str:
        address, suffix = match.group(1), match.group(2)
        if suffix:
            network = network_map.get(Network(address, int(suffix[1:])))
            if network is not None:
                return str(network)
        try:
            mapped = ip_map.get(IP(address))
        except ValueError:
            return match.group(0)
        if mapped is None:
            return match.group(0)
        return mapped.ip + (suffix or "")

    return _ADDRESS.sub(replace, text)
