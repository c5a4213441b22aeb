"""GameState (what one agent knows) and Observation (what a step returns).

A GameState is immutable: sets are frozensets and the maps hold frozensets, so a
world can hand the same object to an agent, a trajectory and an encoder without
copying, and cache its packed forms (DESIGN §6). The maps are plain dicts for
speed; treat them as read-only. Equality is by value over all six parts; like
upstream's, a GameState is not hashable (reference netsecgame.md §1.9).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import attrs

from .components import IP, Data, Network, Service, _expect_mapping
from .errors import ProtocolError, describe

__all__ = ["GameState", "Observation"]

T = TypeVar("T")


def _frozen(items: Iterable[Any]) -> frozenset[Any]:
    return items if isinstance(items, frozenset) else frozenset(items)


def _frozen_map(mapping: Mapping[Any, Iterable[Any]]) -> dict[Any, frozenset[Any]]:
    return {key: _frozen(values) for key, values in mapping.items()}


def _set_text(items: Iterable[Any]) -> str:
    """A set as upstream's f-strings print one: ``{a, b}``, or ``set()`` when empty."""
    text = ", ".join(repr(item) for item in items)
    return "{" + text + "}" if text else "set()"


def _map_text(mapping: Mapping[Any, Iterable[Any]]) -> str:
    return "{" + ", ".join(f"{key!r}: {_set_text(values)}" for key, values in mapping.items()) + "}"


@attrs.frozen(repr=False)
class GameState:
    """What one agent knows: hosts, networks, services, data, controlled hosts, blocks.

    >>> s = GameState(controlled_hosts={IP("10.0.0.2")}, known_hosts={IP("10.0.0.2")})
    >>> GameState.from_dict(s.as_dict) == s
    True
    """

    controlled_hosts: frozenset[IP] = attrs.field(factory=frozenset, converter=_frozen)
    known_hosts: frozenset[IP] = attrs.field(factory=frozenset, converter=_frozen)
    known_services: dict[IP, frozenset[Service]] = attrs.field(factory=dict, converter=_frozen_map)
    known_data: dict[IP, frozenset[Data]] = attrs.field(factory=dict, converter=_frozen_map)
    known_networks: frozenset[Network] = attrs.field(factory=frozenset, converter=_frozen)
    known_blocks: dict[IP, frozenset[IP]] = attrs.field(factory=dict, converter=_frozen_map)
    # Encodings computed once per state object (the state never changes).
    _cache: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking maps: not hashable, as upstream

    def __copy__(self) -> GameState:
        """A state never changes, so a copy is the state itself: ``copy.deepcopy`` of an
        env's info (SB3's DummyVecEnv does it every step) would otherwise copy every
        derived value cached on it (valid actions, masks, encodings)."""
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> GameState:
        return self

    @classmethod
    def trusted(
        cls,
        controlled_hosts: frozenset[IP],
        known_hosts: frozenset[IP],
        known_services: dict[IP, frozenset[Service]],
        known_data: dict[IP, frozenset[Data]],
        known_networks: frozenset[Network],
        known_blocks: dict[IP, frozenset[IP]],
    ) -> GameState:
        """Build a state from parts that are already frozen, skipping conversion.

        The world's step path uses this; the parts must not be mutated afterwards.
        """
        state = object.__new__(cls)
        setter = object.__setattr__
        setter(state, "controlled_hosts", controlled_hosts)
        setter(state, "known_hosts", known_hosts)
        setter(state, "known_services", known_services)
        setter(state, "known_data", known_data)
        setter(state, "known_networks", known_networks)
        setter(state, "known_blocks", known_blocks)
        setter(state, "_cache", {})
        return state

    def cached(self, name: str, compute: Callable[[GameState], T]) -> T:
        """``compute(self)``, computed once per state object and kept on it: a state never
        changes, so whatever is derived from it (its valid actions, say) never does either.
        Decoded states are shared by content (``protocol.compact``), so clients reuse it.

        >>> state = GameState()
        >>> state.cached("hosts", lambda s: len(s.known_hosts)), "hosts" in state._cache
        (0, True)
        """
        cache = self._cache
        if name in cache:
            return cache[name]  # type: ignore[no-any-return]
        value = cache[name] = compute(self)
        return value

    def evolve(self, **changes: Any) -> GameState:
        """A copy with some parts replaced (frozen parts are shared, not copied)."""
        parts = {
            "controlled_hosts": self.controlled_hosts,
            "known_hosts": self.known_hosts,
            "known_services": self.known_services,
            "known_data": self.known_data,
            "known_networks": self.known_networks,
            "known_blocks": self.known_blocks,
        }
        parts.update(changes)
        return GameState.trusted(**parts)

    def __str__(self) -> str:
        return (f"State<nets:{_set_text(self.known_networks)}; known:{_set_text(self.known_hosts)}; "
                f"owned:{_set_text(self.controlled_hosts)}; services:{_map_text(self.known_services)}; "
                f"data:{_map_text(self.known_data)}; blocks:{_map_text(self.known_blocks)}>")

    def __repr__(self) -> str:
        return str(self)

    @property
    def as_dict(self) -> dict[str, Any]:
        """NetSecGame's dict form: lists of objects, maps keyed by plain IP strings."""
        return {
            "known_networks": [n.as_dict for n in self.known_networks],
            "known_hosts": [h.as_dict for h in self.known_hosts],
            "controlled_hosts": [h.as_dict for h in self.controlled_hosts],
            "known_services": {h.ip: [s.as_dict for s in v] for h, v in self.known_services.items()},
            "known_data": {h.ip: [d.as_dict for d in v] for h, v in self.known_data.items()},
            "known_blocks": {h.ip: [b.as_dict for b in v] for h, v in self.known_blocks.items()},
        }

    def as_json(self) -> str:
        return json.dumps(self.as_dict)

    @classmethod
    def from_dict(cls, data: Any) -> GameState:
        """Parse the dict form; ``known_blocks`` is optional, as upstream."""
        keys = ("known_networks", "known_hosts", "controlled_hosts", "known_services", "known_data")
        data = _expect_mapping(data, "state", keys)
        for key in keys:
            if key not in data:
                raise ProtocolError(f"state.{key}", "a value (required)", "nothing")
        return cls.trusted(
            controlled_hosts=_parse_set(data["controlled_hosts"], "state.controlled_hosts", IP.from_dict),
            known_hosts=_parse_set(data["known_hosts"], "state.known_hosts", IP.from_dict),
            known_services=_parse_map(data["known_services"], "state.known_services",
                                      lambda v, f: Service.from_dict(v, f, complete=True)),
            known_data=_parse_map(data["known_data"], "state.known_data",
                                  lambda v, f: Data.from_dict(v, f, complete=True)),
            known_networks=_parse_set(data["known_networks"], "state.known_networks", Network.from_dict),
            known_blocks=_parse_map(data.get("known_blocks", {}), "state.known_blocks", _parse_block),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> GameState:
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as error:
            raise ProtocolError("state", "a JSON object", f"invalid JSON ({error})") from None
        return cls.from_dict(data)


def _parse_block(value: Any, field: str) -> IP:
    """Blocked-IP entries come as ``{"ip": "x"}`` or, doubly wrapped, ``{"ip": {"ip": "x"}}``."""
    if isinstance(value, dict) and isinstance(value.get("ip"), dict):
        return IP.from_dict(value["ip"], f"{field}.ip")
    return IP.from_dict(value, field)


def _parse_set(value: Any, field: str, parse: Any) -> frozenset[Any]:
    if not isinstance(value, (list, tuple)):
        raise ProtocolError(field, "a list", describe(value))
    return frozenset(parse(item, f"{field}[{index}]") for index, item in enumerate(value))


def _parse_map(value: Any, field: str, parse: Any) -> dict[IP, frozenset[Any]]:
    if not isinstance(value, dict):
        raise ProtocolError(field, "an object keyed by IP address", describe(value))
    result: dict[IP, frozenset[Any]] = {}
    for key, items in value.items():
        if not isinstance(key, str):
            raise ProtocolError(field, "IP address keys", describe(key))
        try:
            host = IP(key)
        except ValueError:
            raise ProtocolError(field, "IP address keys", describe(key)) from None
        result[host] = _parse_set(items, f"{field}[{key}]", parse)
    return result


class Observation(NamedTuple):
    """What a step returns: the new state, the reward, whether the episode ended, info."""

    state: GameState
    reward: float
    end: bool
    info: dict[str, Any]
