"""The catalog of a game: every host, network, service and datum of its scenario, by
stable slot names, bound to the addresses they have in the current episode.

Fixed-size action tables and observation vectors need an enumeration that does not move
when NetSecGame's address remapping (reference netsecgame.md §6.11) gives every host a
new IP: so entities are keyed by the scenario's own names, and only the *binding*
(slot -> current address) changes between episodes.

* Host slots: one per world IP (routers included, the internet router not), named by the
  node's id; a node with several interfaces gets one slot per interface, named
  ``node@network`` after the scenario network of that interface. Ordered as the
  scenario's original IPs sorted as strings (upstream's WhiteBox order).
* Network slots: one per scenario network, named by its original CIDR, ordered as
  networks order.
* Services: per host slot, the node's services in their stored order (local included).
* Data: the union of every node's data, the log file included, in Data order.

A world sends the catalog in its join and reset replies when the JOIN asked for it
(``catalog: true``, PROTOCOL.md §3.1); in process, ``world.catalog_of`` builds it.

>>> catalog = Catalog(hosts=("client",), host_ips=(IP("10.0.0.2"),), networks=("10.0.0.0/24",),
...                   network_addresses=(Network("10.0.0.0", 24),), services=((),), data=())
>>> Catalog.from_wire(catalog.to_wire()) == catalog
True
>>> catalog.host_slot(IP("10.0.0.2")), catalog.host_slot(IP("10.9.9.9"))
(0, None)
"""

from __future__ import annotations

from typing import Any

import attrs

from .components import IP, Data, Network, Service
from .errors import ProtocolError, describe

__all__ = ["CATALOG_VERSION", "Catalog"]

#: Bumped when the catalog's wire form or ordering rules change.
CATALOG_VERSION = 1


@attrs.frozen(eq=False)
class Catalog:
    """A scenario's entities by slot (see the module docstring) and their current addresses.

    ``layout`` is what the enumeration depends on; two catalogs of one scenario have the
    same layout whatever their addresses."""

    hosts: tuple[str, ...]
    host_ips: tuple[IP, ...]
    networks: tuple[str, ...]
    network_addresses: tuple[Network, ...]
    services: tuple[tuple[Service, ...], ...]
    data: tuple[Data, ...]
    _host_slots: dict[IP, int] = attrs.field(init=False, repr=False)
    _network_slots: dict[Network, int] = attrs.field(init=False, repr=False)
    _data_slots: dict[Data, int] = attrs.field(init=False, repr=False)
    _public: tuple[bool, ...] = attrs.field(init=False, repr=False)
    _hash: int = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not (len(self.hosts) == len(self.host_ips) == len(self.services)):
            raise ValueError("hosts, host_ips and services must have one entry per host slot")
        if len(self.networks) != len(self.network_addresses):
            raise ValueError("networks and network_addresses must have one entry per network slot")
        object.__setattr__(self, "_host_slots", {ip: i for i, ip in enumerate(self.host_ips)})
        object.__setattr__(self, "_network_slots", {n: i for i, n in enumerate(self.network_addresses)})
        object.__setattr__(self, "_data_slots", {d: i for i, d in enumerate(self.data)})
        object.__setattr__(self, "_public", tuple(not ip.is_private() for ip in self.host_ips))
        object.__setattr__(self, "_hash", hash((self.hosts, self.host_ips, self.network_addresses)))

    # ------------------------------------------------------------------ identity
    @property
    def layout(self) -> tuple[Any, ...]:
        """What tables and vectors are built from: names, services and data, no addresses."""
        return (self.hosts, self.networks, self.services, self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Catalog):
            return NotImplemented
        return (self.layout == other.layout and self.host_ips == other.host_ips
                and self.network_addresses == other.network_addresses)

    def __hash__(self) -> int:
        return self._hash

    # ------------------------------------------------------------------ lookups
    def host_slot(self, ip: IP) -> int | None:
        """The slot of a current address, or None for an address outside the world."""
        return self._host_slots.get(ip)

    def network_slot(self, network: Network) -> int | None:
        return self._network_slots.get(network)

    def data_slot(self, datum: Data) -> int | None:
        """The slot of a datum (by owner, id and type: size and content do not matter)."""
        return self._data_slots.get(datum)

    def is_public(self, slot: int) -> bool:
        """Whether host slot ``slot`` is on a public network now (an attacker's C&C, say)."""
        return self._public[slot]

    def slot_named(self, name: str) -> int:
        """The host slot called ``name``; KeyError naming the known slots otherwise."""
        try:
            return self.hosts.index(name)
        except ValueError:
            raise KeyError(f"no host slot {name!r} (slots: {', '.join(self.hosts)})") from None

    def rebound(self, host_ips: tuple[IP, ...], network_addresses: tuple[Network, ...]) -> Catalog:
        """The same layout at other addresses."""
        return Catalog(self.hosts, tuple(host_ips), self.networks, tuple(network_addresses),
                       self.services, self.data)

    # ------------------------------------------------------------------ wire form
    def to_wire(self) -> dict[str, Any]:
        """A msgpack-able map (PROTOCOL.md §3.3, ``catalog``)."""
        return {
            "version": CATALOG_VERSION,
            "hosts": [[name, ip.ip] for name, ip in zip(self.hosts, self.host_ips, strict=True)],
            "networks": [[name, n.ip, n.mask]
                         for name, n in zip(self.networks, self.network_addresses, strict=True)],
            "services": [[[s.name, s.type, s.version, s.is_local] for s in services]
                         for services in self.services],
            "data": [[d.owner, d.id, d.type] for d in self.data],
        }

    @classmethod
    def from_wire(cls, value: Any, field: str = "catalog") -> Catalog:
        """Parse :meth:`to_wire`'s form; ProtocolError naming the field otherwise."""
        if not isinstance(value, dict):
            raise ProtocolError(field, "a map", describe(value))
        if value.get("version") != CATALOG_VERSION:
            raise ProtocolError(f"{field}.version", str(CATALOG_VERSION), describe(value.get("version")))
        hosts = _rows(value.get("hosts"), f"{field}.hosts", 2)
        networks = _rows(value.get("networks"), f"{field}.networks", 3)
        services = _items(value.get("services"), f"{field}.services")
        data = _rows(value.get("data"), f"{field}.data", 3)
        if len(services) != len(hosts):
            raise ProtocolError(f"{field}.services", f"{len(hosts)} lists (one per host)", f"{len(services)}")
        try:
            return cls(
                hosts=tuple(_text(name, f"{field}.hosts") for name, _ in hosts),
                host_ips=tuple(IP(_text(ip, f"{field}.hosts")) for _, ip in hosts),
                networks=tuple(_text(name, f"{field}.networks") for name, _, _ in networks),
                network_addresses=tuple(Network(_text(ip, f"{field}.networks"), _mask(mask, f"{field}.networks"))
                                        for _, ip, mask in networks),
                services=tuple(tuple(_service(row, f"{field}.services[{i}]")
                                     for row in _rows(items, f"{field}.services[{i}]", 4))
                               for i, items in enumerate(services)),
                data=tuple(Data(_text(owner, f"{field}.data"), _text(ident, f"{field}.data"),
                                type=_text(kind, f"{field}.data", empty=True)) for owner, ident, kind in data),
            )
        except ValueError as error:
            if isinstance(error, ProtocolError):
                raise
            raise ProtocolError(field, "a consistent catalog", str(error)) from None


def _items(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(field, "a list", describe(value))
    return value


def _rows(value: Any, field: str, width: int) -> list[list[Any]]:
    rows = _items(value, field)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise ProtocolError(f"{field}[{index}]", f"a list of {width}", describe(row))
    return rows


def _text(value: Any, field: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or not (value or empty):
        raise ProtocolError(field, "a string", describe(value))
    return value


def _mask(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 128:
        raise ProtocolError(field, "a prefix length 0-128", describe(value))
    return value


def _service(row: list[Any], field: str) -> Service:
    name, kind, version, is_local = row
    if not isinstance(is_local, bool):
        raise ProtocolError(field, "is_local true or false", describe(is_local))
    return Service(_text(name, field), _text(kind, field, empty=True), _text(version, field, empty=True), is_local)
