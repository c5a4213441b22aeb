"""The game's value objects: IP, Network, Service, Data, AgentInfo.

They behave as NetSecGame's (reference netsecgame.md §1.1-§1.6): immutable, equal and
hashed by value, with the same string forms, orderings and dict forms. ``from_dict``
validates untrusted input and raises :class:`~protocol.errors.ProtocolError` naming
the field; the constructors trust their caller, except IP, which always checks its
address as upstream does.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

import attrs

from .enums import AgentRole
from .errors import ProtocolError, describe

__all__ = ["IP", "AgentInfo", "Data", "Network", "Service"]

_VALIDATED_LIMIT = 1 << 16
_validated: set[str] = set()


def _check_address(text: str) -> None:
    """Validate an IP address string, remembering a bounded number of good ones."""
    if text in _validated:
        return
    try:
        ipaddress.ip_address(text)
    except (ValueError, TypeError):
        raise ValueError(f"Invalid IP address provided: {text}") from None
    if len(_validated) < _VALIDATED_LIMIT:
        _validated.add(text)


def _expect_mapping(value: Any, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(field, f"an object with keys {', '.join(keys)}", describe(value))
    return value


def _expect_keys(value: dict[str, Any], field: str, required: tuple[str, ...],
                 optional: tuple[str, ...] = ()) -> None:
    for key in required:
        if key not in value:
            raise ProtocolError(f"{field}.{key}", "a value (required)", "nothing")
    for key in value:
        if key not in required and key not in optional:
            raise ProtocolError(field, f"only the keys {', '.join(required + optional)}",
                                f"unknown key {key!r}")


def _expect_str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(field, "a string", describe(value))
    return value


def _expect_int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(field, "an integer", describe(value))
    return value


def _expect_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError(field, "true or false", describe(value))
    return value


@attrs.frozen(eq=False, order=False, repr=False)
class IP:
    """One host address. ``str()`` and ``repr()`` give the bare address.

    Equal only to another IP (never to a string), hashed as its string, ordered as
    strings (so ``IP("1.1.1.2") > IP("1.1.1.10")``, as upstream).

    >>> IP("192.168.1.2")
    192.168.1.2
    """

    ip: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.ip, str):
            raise ValueError(f"Invalid IP address provided: {self.ip!r}")
        _check_address(self.ip)

    def __repr__(self) -> str:
        return self.ip

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if other.__class__ is IP:
            return self.ip == other.ip  # type: ignore[attr-defined]
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if other.__class__ is IP:
            return self.ip != other.ip  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.ip)

    def __lt__(self, other: IP) -> bool:
        if other.__class__ is not IP:
            return NotImplemented
        return self.ip < other.ip

    def __le__(self, other: IP) -> bool:
        if other.__class__ is not IP:
            return NotImplemented
        return self.ip <= other.ip

    def __gt__(self, other: IP) -> bool:
        if other.__class__ is not IP:
            return NotImplemented
        return self.ip > other.ip

    def __ge__(self, other: IP) -> bool:
        if other.__class__ is not IP:
            return NotImplemented
        return self.ip >= other.ip

    def is_private(self) -> bool:
        return _address_is_private(self.ip)

    @property
    def as_dict(self) -> dict[str, str]:
        return {"ip": self.ip}

    @classmethod
    def from_dict(cls, data: Any, field: str = "ip") -> IP:
        """Parse ``{"ip": "a.b.c.d"}``."""
        data = _expect_mapping(data, field, ("ip",))
        _expect_keys(data, field, ("ip",))
        text = _expect_str(data["ip"], f"{field}.ip")
        try:
            return cls(text)
        except ValueError:
            raise ProtocolError(f"{field}.ip", "an IP address", describe(text)) from None


@lru_cache(maxsize=4096)
def _address_is_private(text: str) -> bool:
    return ipaddress.ip_address(text).is_private


@lru_cache(maxsize=4096)
def _network_sort_key(ip: str, mask: int) -> tuple[int, int, int, int] | None:
    """CIDR ordering: version, network address, prefix length, host bits."""
    try:
        network = ipaddress.ip_network(f"{ip}/{mask}", strict=False)
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    first = int(network.network_address)
    return (network.version, first, mask, int(address) - first)


@attrs.frozen(order=False, repr=False)
class Network:
    """A network as ``ip/mask``. Not normalised: ``Network("175.148.76.156", 26)`` is
    legal, as upstream (reference §1.2). Ordered as CIDR blocks."""

    ip: str
    mask: int

    def __repr__(self) -> str:
        return f"{self.ip}/{self.mask}"

    __str__ = __repr__

    def _key(self, other: Network) -> tuple[Any, Any]:
        mine, theirs = _network_sort_key(self.ip, self.mask), _network_sort_key(other.ip, other.mask)
        if mine is None or theirs is None:
            return self.ip, other.ip
        return mine, theirs

    def __lt__(self, other: Network) -> bool:
        mine, theirs = self._key(other)
        return mine < theirs

    def __le__(self, other: Network) -> bool:
        mine, theirs = self._key(other)
        return mine <= theirs

    def __gt__(self, other: Network) -> bool:
        mine, theirs = self._key(other)
        return mine > theirs

    def __ge__(self, other: Network) -> bool:
        mine, theirs = self._key(other)
        return mine >= theirs

    def is_private(self) -> bool:
        try:
            return ipaddress.ip_network(f"{self.ip}/{self.mask}", strict=False).is_private
        except ValueError:
            return True

    @property
    def as_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "mask": self.mask}

    @classmethod
    def from_dict(cls, data: Any, field: str = "network") -> Network:
        """Parse ``{"ip": "a.b.c.d", "mask": 24}``."""
        data = _expect_mapping(data, field, ("ip", "mask"))
        _expect_keys(data, field, ("ip", "mask"))
        ip = _expect_str(data["ip"], f"{field}.ip")
        mask = _expect_int(data["mask"], f"{field}.mask")
        if not 0 <= mask <= 128:
            raise ProtocolError(f"{field}.mask", "a prefix length 0-128", describe(mask))
        return cls(ip, mask)


@attrs.frozen(order=True)
class Service:
    """A service on a host. ``is_local`` services are seen only by an agent that
    controls the host (reference §1.3, §6.5)."""

    name: str
    type: str = "unknown"
    version: str = "unknown"
    is_local: bool = True

    @property
    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "version": self.version,
                "is_local": self.is_local}

    @classmethod
    def from_dict(cls, data: Any, field: str = "service", *, complete: bool = False) -> Service:
        """Parse a service object; ``complete`` requires all four keys (states do)."""
        keys = ("name", "type", "version", "is_local")
        data = _expect_mapping(data, field, keys)
        if complete:
            _expect_keys(data, field, keys)
        else:
            _expect_keys(data, field, ("name",), keys[1:])
        return cls(
            _expect_str(data["name"], f"{field}.name"),
            _expect_str(data.get("type", "unknown"), f"{field}.type"),
            _expect_str(data.get("version", "unknown"), f"{field}.version"),
            _expect_bool(data.get("is_local", True), f"{field}.is_local"),
        )


@attrs.frozen(eq=False, order=False, repr=False)
class Data:
    """A datum on a host. Equality, hashing and ordering use only
    ``(owner, id, type)``; size and content are carried along (reference §1.4)."""

    owner: str
    id: str
    size: int = 0
    type: str = ""
    content: str = ""

    def _identity(self) -> tuple[str, str, str]:
        return (self.owner, self.id, self.type)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is Data:
            return self._identity() == other._identity()  # type: ignore[attr-defined]
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((self.owner, self.id, self.type))

    def __lt__(self, other: Data) -> bool:
        if other.__class__ is not Data:
            return NotImplemented
        return self._identity() < other._identity()

    def __le__(self, other: Data) -> bool:
        if other.__class__ is not Data:
            return NotImplemented
        return self._identity() <= other._identity()

    def __gt__(self, other: Data) -> bool:
        if other.__class__ is not Data:
            return NotImplemented
        return self._identity() > other._identity()

    def __ge__(self, other: Data) -> bool:
        if other.__class__ is not Data:
            return NotImplemented
        return self._identity() >= other._identity()

    def __repr__(self) -> str:
        return f"Data(owner={self.owner!r}, id={self.id!r}, size={self.size!r}, type={self.type!r})"

    @property
    def as_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "id": self.id, "size": self.size, "type": self.type,
                "content": self.content}

    @classmethod
    def from_dict(cls, data: Any, field: str = "data", *, complete: bool = False) -> Data:
        """Parse a data object; ``complete`` requires all five keys (states do)."""
        keys = ("owner", "id", "size", "type", "content")
        data = _expect_mapping(data, field, keys)
        if complete:
            _expect_keys(data, field, keys)
        else:
            _expect_keys(data, field, ("owner", "id"), keys[2:])
        return cls(
            _expect_str(data["owner"], f"{field}.owner"),
            _expect_str(data["id"], f"{field}.id"),
            _expect_int(data.get("size", 0), f"{field}.size"),
            _expect_str(data.get("type", ""), f"{field}.type"),
            _expect_str(data.get("content", ""), f"{field}.content"),
        )


@attrs.frozen(order=False, repr=False)
class AgentInfo:
    """Who joins: a free-text name and a role."""

    name: str
    role: AgentRole

    def __repr__(self) -> str:
        return f"{self.name}({self.role})"

    @property
    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role.value}

    @classmethod
    def from_dict(cls, data: Any, field: str = "agent_info") -> AgentInfo:
        """Parse ``{"name": ..., "role": "Attacker"}`` (role in any case)."""
        if isinstance(data, str):
            data = _literal_dict(data, field)
        data = _expect_mapping(data, field, ("name", "role"))
        _expect_keys(data, field, ("name", "role"))
        name = _expect_str(data["name"], f"{field}.name")
        role_text = _expect_str(data["role"], f"{field}.role")
        try:
            role = AgentRole.from_string(role_text)
        except ValueError:
            raise ProtocolError(f"{field}.role", "Attacker, Defender or Benign",
                                describe(role_text)) from None
        return cls(name, role)


def _literal_dict(text: str, field: str) -> Any:
    """Upstream also accepts a Python-literal dict in a string; parse it safely."""
    import ast

    if len(text) > 4096:
        raise ProtocolError(field, "an object", "an overlong string")
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ProtocolError(field, "an object", describe(text)) from None
