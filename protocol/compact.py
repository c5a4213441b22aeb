"""Compact msgpack forms: the wire forms of the step path.

NetSecGame's nested-dict JSON costs ~45 µs to build and pack per observation; these
positional forms pack in a fraction of that (DESIGN §6). Each ``*_to_compact``
returns plain lists, strings and numbers; each ``*_from_compact`` validates
untrusted input and raises ProtocolError naming the field.

    IP            "a.b.c.d"
    Network       [ip, mask]
    Service       [name, type, version, is_local]
    Data          [owner, id, size, type, content]
    GameState     [controlled, known_hosts, networks, services, data, blocks]
                  (lists of IPs / Networks; maps IP -> list of Service / Data / IP)
    Action        [type code, parameters...] in the order of REQUIRED_PARAMETERS
                  (ResetGame: [code, request_trajectory, randomize_topology, seed])
    PASS          nil (the counted no-op step, protocol.action.PASS)
    Observation   [packed state, reward, end, info]   (the state as msgpack bytes in a bin)

A packed state is cached on the (immutable) GameState, so an unchanged state is
packed once however often it is sent; an observation carries those bytes as they are.
A decoder keeps the states it decoded by their bytes (a bounded cache), so a state seen
before, by any client of this process, is the same immutable object again: no decoding,
and whatever is cached on it (valid actions, say) is reused. Components are interned
the same way, so a new state shares the IPs, services and data of earlier ones.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .action import PASS, REQUIRED_PARAMETERS, Action, PassAction, _parse_flag, _parse_seed
from .components import IP, AgentInfo, Data, Network, Service
from .enums import ActionType, AgentRole
from .errors import ProtocolError, describe
from .state import GameState, Observation

__all__ = [
    "action_from_compact",
    "action_from_packed",
    "action_to_compact",
    "observation_from_compact",
    "observation_to_compact",
    "pack",
    "pack_action",
    "pack_state",
    "state_from_compact",
    "state_from_packed",
    "state_to_compact",
    "unpack",
]

ACTION_CODES: dict[ActionType, int] = {action_type: code for code, action_type in enumerate(ActionType)}
ACTION_BY_CODE: list[ActionType] = list(ActionType)
_RESET_KEYS = ("request_trajectory", "randomize_topology", "seed")

_packer = msgpack.Packer(use_bin_type=True)
#: PASS on the wire: a STEP body of msgpack nil.
PASS_BODY = b"\xc0"

#: Decoded states kept by their packed bytes, and interned components, at most (each).
STATE_CACHE_SIZE = 4096
INTERN_SIZE = 65536
_states: dict[bytes, GameState] = {}
_actions: dict[bytes, Action] = {}
_interned: dict[Any, Any] = {}


def pack(value: Any) -> bytes:
    """msgpack with the project's settings (binary type on)."""
    return _packer.pack(value)


def unpack(data: bytes, max_bytes: int = 1 << 20) -> Any:
    """Unpack untrusted bytes: bounded size, string map keys, no trailing data."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("body", "msgpack bytes", describe(data))
    if len(data) > max_bytes:
        raise ProtocolError("body", f"at most {max_bytes} bytes", f"{len(data)} bytes")
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ProtocolError("body", "valid msgpack", f"{type(error).__name__}: {error}") from None


def _service(service: Service) -> list[Any]:
    return [service.name, service.type, service.version, service.is_local]


def _data(data: Data) -> list[Any]:
    return [data.owner, data.id, data.size, data.type, data.content]


def state_to_compact(state: GameState) -> list[Any]:
    cached = state._cache.get("compact")
    if cached is None:
        cached = [
            [h.ip for h in state.controlled_hosts],
            [h.ip for h in state.known_hosts],
            [[n.ip, n.mask] for n in state.known_networks],
            {h.ip: [_service(s) for s in v] for h, v in state.known_services.items()},
            {h.ip: [_data(d) for d in v] for h, v in state.known_data.items()},
            {h.ip: [b.ip for b in v] for h, v in state.known_blocks.items()},
        ]
        state._cache["compact"] = cached
    return cached


def pack_state(state: GameState) -> bytes:
    """The packed compact form, computed once per state object."""
    packed = state._cache.get("packed")
    if packed is None:
        packed = state._cache["packed"] = pack(state_to_compact(state))
    return packed


def _list(value: Any, field: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, (list, tuple)) or (length is not None and len(value) != length):
        what = "a list" if length is None else f"a list of {length}"
        raise ProtocolError(field, what, describe(value))
    return list(value)


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(field, "a string", describe(value))
    return value


def _int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(field, "an integer", describe(value))
    return value


def _intern(key: Any, value: Any) -> Any:
    if len(_interned) >= INTERN_SIZE:
        _interned.clear()
    _interned[key] = value
    return value


def _ip(value: Any, field: str) -> IP:
    if type(value) is str:
        known = _interned.get(value)
        if known is not None:
            return known
    try:
        return _intern(value, IP(_str(value, field)))
    except ValueError:
        raise ProtocolError(field, "an IP address", describe(value)) from None


_SCALAR_TYPES = frozenset((str, int, bool))


def _key(value: Any) -> tuple[Any, ...] | None:
    """An intern key for a list of scalars (None if it holds anything else). It holds the
    items' types too: True == 1 and False == 0, so the values alone would let a list with
    1 for a flag (or True for a number) reuse a component checked for the other."""
    if type(value) is list:
        types = tuple(map(type, value))
        if _SCALAR_TYPES.issuperset(types):
            return (tuple(value), types)
    return None


def _interned_or(kind: str, parse: Any, value: Any, field: str) -> Any:
    """The component a list of scalars stands for: the one made before for the same list
    (checked then), else ``parse(value, field)``, kept for next time."""
    key = _key(value)
    known = _interned.get((kind, key)) if key is not None else None
    if known is not None:
        return known
    component = parse(value, field)
    return component if key is None else _intern((kind, key), component)


def _network(value: Any, field: str) -> Network:
    return _interned_or("n", _network_checked, value, field)  # type: ignore[no-any-return]


def _network_checked(value: Any, field: str) -> Network:
    ip, mask = _list(value, field, 2)
    mask = _int(mask, f"{field}[1]")
    if not 0 <= mask <= 128:
        raise ProtocolError(f"{field}[1]", "a prefix length 0-128", describe(mask))
    return Network(_str(ip, f"{field}[0]"), mask)


def _service_from(value: Any, field: str) -> Service:
    return _interned_or("s", _service_checked, value, field)  # type: ignore[no-any-return]


def _data_from(value: Any, field: str) -> Data:
    return _interned_or("d", _data_checked, value, field)  # type: ignore[no-any-return]


def _service_checked(value: Any, field: str) -> Service:
    name, kind, version, is_local = _list(value, field, 4)
    if not isinstance(is_local, bool):
        raise ProtocolError(f"{field}[3]", "true or false", describe(is_local))
    return Service(_str(name, f"{field}[0]"), _str(kind, f"{field}[1]"),
                   _str(version, f"{field}[2]"), is_local)


def _data_checked(value: Any, field: str) -> Data:
    owner, ident, size, kind, content = _list(value, field, 5)
    return Data(_str(owner, f"{field}[0]"), _str(ident, f"{field}[1]"), _int(size, f"{field}[2]"),
                _str(kind, f"{field}[3]"), _str(content, f"{field}[4]"))


def _map(value: Any, field: str, parse: Any) -> dict[IP, frozenset[Any]]:
    if not isinstance(value, dict):
        raise ProtocolError(field, "a map keyed by IP address", describe(value))
    return {
        _ip(key, field): frozenset(parse(item, f"{field}[{key}][{i}]")
                                   for i, item in enumerate(_list(items, f"{field}[{key}]")))
        for key, items in value.items()
    }


def state_from_packed(data: bytes, field: str = "state") -> GameState:
    """The state whose packed compact form is ``data``: decoded once, then the same
    immutable object for the same bytes (bounded cache; see the module docstring)."""
    state = _states.get(data)
    if state is None:
        state = state_from_compact(unpack(data), field)
        state._cache["packed"] = data = bytes(data)
        if len(_states) >= STATE_CACHE_SIZE:
            del _states[next(iter(_states))]
        _states[data] = state
    return state


def state_from_compact(value: Any, field: str = "state") -> GameState:
    if isinstance(value, (bytes, bytearray)):
        return state_from_packed(bytes(value), field)  # bytes: a bytearray is no cache key
    parts = _list(value, field, 6)
    return GameState.trusted(
        controlled_hosts=frozenset(_ip(v, f"{field}.controlled_hosts")
                                   for v in _list(parts[0], f"{field}.controlled_hosts")),
        known_hosts=frozenset(_ip(v, f"{field}.known_hosts") for v in _list(parts[1], f"{field}.known_hosts")),
        known_networks=frozenset(_network(v, f"{field}.known_networks")
                                 for v in _list(parts[2], f"{field}.known_networks")),
        known_services=_map(parts[3], f"{field}.known_services", _service_from),
        known_data=_map(parts[4], f"{field}.known_data", _data_from),
        known_blocks=_map(parts[5], f"{field}.known_blocks", _ip),
    )


def _parameter_to_compact(value: Any) -> Any:
    if isinstance(value, IP):
        return value.ip
    if isinstance(value, Network):
        return [value.ip, value.mask]
    if isinstance(value, Service):
        return _service(value)
    if isinstance(value, Data):
        return _data(value)
    if isinstance(value, AgentInfo):
        return [value.name, value.role.value]
    return value


def action_to_compact(action: Action | PassAction) -> list[Any] | None:
    """``[code, p1, p2, ...]``; a BlockIP's ``blocked_ip`` is sent as ``blocked_host``;
    None for PASS. Computed once per action object (treat the list as read-only)."""
    if action is PASS:
        return None
    assert isinstance(action, Action)
    compact = action._compact
    if compact is None:
        compact = _action_to_compact(action)
        object.__setattr__(action, "_compact", compact)
    return compact


def pack_action(action: Action | PassAction) -> bytes:
    """The packed compact form, computed once per action object (PASS: nil)."""
    if action is PASS:
        return PASS_BODY
    assert isinstance(action, Action)
    packed = action._packed
    if packed is None:
        packed = pack(action_to_compact(action))
        object.__setattr__(action, "_packed", packed)
    return packed


def action_from_packed(data: bytes) -> Action | PassAction:
    """The action whose packed compact form is ``data``: decoded and checked once, then the
    same immutable object for the same bytes (a bounded cache, as for states); PASS for nil."""
    if data == PASS_BODY:
        return PASS
    action = _actions.get(data)
    if action is None:
        decoded = action_from_compact(unpack(data))
        if decoded is PASS:  # not reached (nil is only b"\xc0"); for the type checker
            return PASS
        action = decoded
        data = bytes(data)
        object.__setattr__(action, "_packed", data)
        if len(_actions) >= STATE_CACHE_SIZE:
            del _actions[next(iter(_actions))]
        _actions[data] = action
    return action


def _action_to_compact(action: Action) -> list[Any]:
    params = action.parameters
    if action.action_type is ActionType.ResetGame:
        return [ACTION_CODES[ActionType.ResetGame], params.get("request_trajectory", False),
                params.get("randomize_topology", False), params.get("seed")]
    compact = [ACTION_CODES[action.action_type]]
    for key in REQUIRED_PARAMETERS[action.action_type]:
        value = params.get(key)
        if value is None and key == "blocked_host":
            value = params.get("blocked_ip")
        if value is None:
            raise ProtocolError(f"parameters.{key}", f"a value (required by {action.action_type.value})",
                                "nothing")
        compact.append(_parameter_to_compact(value))
    return compact


_COMPACT_PARSERS: dict[str, Any] = {
    "source_host": _ip,
    "target_host": _ip,
    "blocked_host": _ip,
    "target_network": _network,
    "target_service": _service_from,
    "data": _data_from,
}


def _agent_info(value: Any, field: str) -> AgentInfo:
    name, role = _list(value, field, 2)
    name = _str(name, f"{field}[0]")
    try:
        return AgentInfo(name, AgentRole.from_string(_str(role, f"{field}[1]")))
    except ValueError:
        raise ProtocolError(f"{field}[1]", "Attacker, Defender or Benign", describe(role)) from None


def action_from_compact(value: Any, field: str = "action") -> Action | PassAction:
    """An action from its compact form, checked; nil is PASS."""
    if value is None:
        return PASS
    items = _list(value, field)
    if not items:
        raise ProtocolError(field, "[type code, parameters...]", "an empty list")
    code = items[0]
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code < len(ACTION_BY_CODE):
        raise ProtocolError(f"{field}[0]", f"an action type code 0-{len(ACTION_BY_CODE) - 1}",
                            describe(code))
    action_type = ACTION_BY_CODE[code]
    if action_type is ActionType.ResetGame:
        _list(items, field, 4)
        return Action(action_type, {
            "request_trajectory": _parse_flag(items[1], f"{field}.request_trajectory"),
            "randomize_topology": _parse_flag(items[2], f"{field}.randomize_topology"),
            "seed": _parse_seed(items[3], f"{field}.seed"),
        })
    keys = REQUIRED_PARAMETERS[action_type]
    _list(items, field, len(keys) + 1)
    if action_type is ActionType.JoinGame:
        return Action(action_type, {"agent_info": _agent_info(items[1], f"{field}.agent_info")})
    return Action(action_type, {key: _COMPACT_PARSERS[key](item, f"{field}.{key}")
                                for key, item in zip(keys, items[1:], strict=True)})


def observation_to_compact(observation: Observation) -> list[Any]:
    state, reward, end, info = observation
    return [pack_state(state), reward, end, info]


def observation_from_compact(value: Any, field: str = "observation") -> Observation:
    state, reward, end, info = _list(value, field, 4)
    if not isinstance(reward, (int, float)) or isinstance(reward, bool):
        raise ProtocolError(f"{field}.reward", "a number", describe(reward))
    if not isinstance(end, bool):
        raise ProtocolError(f"{field}.end", "true or false", describe(end))
    if not isinstance(info, dict):
        raise ProtocolError(f"{field}.info", "a map", describe(info))
    return Observation(state_from_compact(state, f"{field}.state"), reward, end, info)
