"""What one step changed in an agent's state, as data: ``arena replay``'s diff.

A :class:`StateChange` is two :class:`StateDelta` s, what appeared and what vanished,
each holding the six parts of a state (networks, hosts, controlled hosts, services,
data, blocks) as sorted tuples. Services, data and blocks are per host, so they are
kept as ``(host, item)`` pairs: a service found on a second host is a change even when
the first host already had it. Data compare as the game compares them, by owner, id
and type (a new size alone is no change).

The JSON form of a delta is NetSecGame's state dict (reference netsecgame.md §1.9), so
:meth:`protocol.GameState.from_dict` reads it and tools that read states read it too.

>>> from protocol import IP, GameState
>>> before = GameState(controlled_hosts={IP("10.0.0.2")}, known_hosts={IP("10.0.0.2")})
>>> after = before.evolve(known_hosts=frozenset({IP("10.0.0.2"), IP("10.0.0.3")}))
>>> change = StateChange.between(before, after)
>>> print(change)
+ host 10.0.0.3
>>> StateChange.from_dict(change.as_dict) == change, StateChange.between(after, after).is_empty
(True, True)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from protocol import IP, Data, GameState, Network, Service

__all__ = ["StateChange", "StateDelta"]

T = TypeVar("T")


def _ip_key(ip: IP) -> tuple[int, int, str]:
    """Numeric address order (``10.0.0.2`` before ``10.0.0.10``), unlike IP's own string order."""
    try:
        address = ipaddress.ip_address(ip.ip)
    except ValueError:
        return (99, 0, ip.ip)
    return (address.version, int(address), "")


def _service_key(service: Service) -> tuple[str, str, str, bool]:
    return (service.name, service.type, service.version, service.is_local)


def _pairs(mapping: Mapping[IP, Iterable[T]]) -> set[tuple[IP, T]]:
    return {(host, item) for host, items in mapping.items() for item in items}


def _by_host(pairs: Iterable[tuple[IP, Any]]) -> dict[IP, list[Any]]:
    grouped: dict[IP, list[Any]] = {}
    for host, item in pairs:
        grouped.setdefault(host, []).append(item)
    return grouped


@attrs.frozen
class StateDelta:
    """Parts of a state, sorted: one side (added or removed) of a :class:`StateChange`."""

    networks: tuple[Network, ...] = ()
    hosts: tuple[IP, ...] = ()
    controlled_hosts: tuple[IP, ...] = ()
    services: tuple[tuple[IP, Service], ...] = ()
    data: tuple[tuple[IP, Data], ...] = ()
    blocks: tuple[tuple[IP, IP], ...] = ()

    @classmethod
    def between(cls, state: GameState, other: GameState) -> StateDelta:
        """What ``state`` has and ``other`` has not, part by part."""
        return cls.build(
            networks=state.known_networks - other.known_networks,
            hosts=state.known_hosts - other.known_hosts,
            controlled_hosts=state.controlled_hosts - other.controlled_hosts,
            services=_pairs(state.known_services) - _pairs(other.known_services),
            data=_pairs(state.known_data) - _pairs(other.known_data),
            blocks=_pairs(state.known_blocks) - _pairs(other.known_blocks),
        )

    @classmethod
    def build(cls, *, networks: Iterable[Network] = (), hosts: Iterable[IP] = (),
              controlled_hosts: Iterable[IP] = (), services: Iterable[tuple[IP, Service]] = (),
              data: Iterable[tuple[IP, Data]] = (), blocks: Iterable[tuple[IP, IP]] = ()) -> StateDelta:
        """A delta from unordered parts: each is sorted (hosts in numeric address order)."""
        return cls(
            networks=tuple(sorted(networks)),
            hosts=tuple(sorted(hosts, key=_ip_key)),
            controlled_hosts=tuple(sorted(controlled_hosts, key=_ip_key)),
            services=tuple(sorted(services, key=lambda pair: (_ip_key(pair[0]), _service_key(pair[1])))),
            data=tuple(sorted(data, key=lambda pair: (_ip_key(pair[0]), pair[1]))),
            blocks=tuple(sorted(blocks, key=lambda pair: (_ip_key(pair[0]), _ip_key(pair[1])))),
        )

    @property
    def is_empty(self) -> bool:
        return not (self.networks or self.hosts or self.controlled_hosts or self.services or self.data
                    or self.blocks)

    def lines(self, sign: str) -> list[str]:
        """One line per item: ``<sign> host 10.0.0.3``, ``<sign> service ssh on 10.0.0.3``..."""
        return [
            *(f"{sign} network {network}" for network in self.networks),
            *(f"{sign} host {host}" for host in self.hosts),
            *(f"{sign} controlled {host}" for host in self.controlled_hosts),
            *(f"{sign} service {service.name} on {host}" for host, service in self.services),
            *(f"{sign} data ({datum.owner}, {datum.id}) on {host}" for host, datum in self.data),
            *(f"{sign} block {blocked} on {host}" for host, blocked in self.blocks),
        ]

    @property
    def as_dict(self) -> dict[str, Any]:
        """NetSecGame's state dict form, every list in this delta's order."""
        return {
            "known_networks": [network.as_dict for network in self.networks],
            "known_hosts": [host.as_dict for host in self.hosts],
            "controlled_hosts": [host.as_dict for host in self.controlled_hosts],
            "known_services": {h.ip: [s.as_dict for s in v] for h, v in _by_host(self.services).items()},
            "known_data": {h.ip: [d.as_dict for d in v] for h, v in _by_host(self.data).items()},
            "known_blocks": {h.ip: [b.as_dict for b in v] for h, v in _by_host(self.blocks).items()},
        }

    @classmethod
    def from_dict(cls, data: Any) -> StateDelta:
        """Parse the state dict form (raises ProtocolError, a ValueError, naming the field)."""
        state = GameState.from_dict(data)
        return cls.build(networks=state.known_networks, hosts=state.known_hosts,
                         controlled_hosts=state.controlled_hosts, services=_pairs(state.known_services),
                         data=_pairs(state.known_data), blocks=_pairs(state.known_blocks))


@attrs.frozen
class StateChange:
    """What a step changed: the parts that appeared (``added``) and vanished (``removed``)."""

    added: StateDelta = attrs.field(factory=StateDelta)
    removed: StateDelta = attrs.field(factory=StateDelta)

    @classmethod
    def between(cls, before: GameState, after: GameState) -> StateChange:
        return cls(StateDelta.between(after, before), StateDelta.between(before, after))

    @property
    def is_empty(self) -> bool:
        return self.added.is_empty and self.removed.is_empty

    def lines(self) -> list[str]:
        """Additions (``+ ...``) then removals (``- ...``); ``(no change)`` when there are none."""
        return self.added.lines("+") + self.removed.lines("-") or ["(no change)"]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    @property
    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added.as_dict, "removed": self.removed.as_dict}

    @classmethod
    def from_dict(cls, data: Any) -> StateChange:
        if not isinstance(data, Mapping) or not {"added", "removed"} <= data.keys():
            raise ValueError("a state change needs 'added' and 'removed' objects")
        return cls(StateDelta.from_dict(data["added"]), StateDelta.from_dict(data["removed"]))
