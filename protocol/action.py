"""Actions: what an agent asks the world to do.

``Action(ActionType.ScanNetwork, {"source_host": IP(...), "target_network": Network(...)})``.
The dict/JSON form is NetSecGame's (reference netsecgame.md §1.8); :func:`validate_action`
checks that an action carries every parameter its type needs, with the right types,
so the world never meets a half-formed action.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, final

import attrs

from .components import IP, AgentInfo, Data, Network, Service, _expect_mapping
from .enums import ActionType
from .errors import ProtocolError, describe

__all__ = ["PASS", "REQUIRED_PARAMETERS", "Action", "PassAction", "validate_action"]


def _parse_flag(value: Any, field: str) -> bool:
    """A bool, or the strings ``"True"`` / ``"False"`` as upstream's literal parse allows."""
    if isinstance(value, bool):
        return value
    if value == "True":
        return True
    if value == "False":
        return False
    raise ProtocolError(field, "true or false", describe(value))


def _parse_seed(value: Any, field: str) -> int | None:
    if value is None or value == "None":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ProtocolError(field, "an integer or null", describe(value))


_PARAMETER_PARSERS: dict[str, Any] = {
    "source_host": IP.from_dict,
    "target_host": IP.from_dict,
    "blocked_host": IP.from_dict,
    "blocked_ip": IP.from_dict,
    "target_network": Network.from_dict,
    "target_service": Service.from_dict,
    "data": Data.from_dict,
    "agent_info": AgentInfo.from_dict,
    "request_trajectory": _parse_flag,
    "randomize_topology": _parse_flag,
    "seed": _parse_seed,
}

_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "source_host": (IP,),
    "target_host": (IP,),
    "blocked_host": (IP,),
    "blocked_ip": (IP,),
    "target_network": (Network,),
    "target_service": (Service,),
    "data": (Data,),
    "agent_info": (AgentInfo,),
    "request_trajectory": (bool,),
    "randomize_topology": (bool,),
    "seed": (int, type(None)),
}

_TYPE_NAMES = {IP: "an IP", Network: "a Network", Service: "a Service", Data: "a Data",
               AgentInfo: "an AgentInfo", bool: "true or false"}

#: Parameters each action type needs; BlockIP also accepts ``blocked_ip`` for ``blocked_host``.
REQUIRED_PARAMETERS: dict[ActionType, tuple[str, ...]] = {
    ActionType.ScanNetwork: ("source_host", "target_network"),
    ActionType.FindServices: ("source_host", "target_host"),
    ActionType.FindData: ("source_host", "target_host"),
    ActionType.ExploitService: ("source_host", "target_host", "target_service"),
    ActionType.ExfiltrateData: ("source_host", "target_host", "data"),
    ActionType.BlockIP: ("source_host", "target_host", "blocked_host"),
    ActionType.JoinGame: ("agent_info",),
    ActionType.QuitGame: (),
    ActionType.ResetGame: (),
}


def _parameter_as_json(value: Any) -> Any:
    if isinstance(value, (IP, Network, Service, Data, AgentInfo)):
        return value.as_dict
    if value is None or isinstance(value, (dict, bool, int)):
        return value
    return str(value)


@attrs.frozen(eq=False, repr=False)
class Action:
    """An action type and its parameters. Equal when type and parameters are equal
    (key order ignored); hashable, so actions can live in sets.

    >>> a = Action(ActionType.FindData, {"source_host": IP("1.1.1.1"), "target_host": IP("1.1.1.1")})
    >>> Action.from_json(a.to_json()) == a
    True
    """

    action_type: ActionType
    parameters: dict[str, Any] = attrs.field(factory=dict)
    _hash: int | None = attrs.field(default=None, init=False, eq=False, repr=False)
    # Wire forms, computed once (protocol.compact): an action object is often sent or
    # traced many times (a policy's cached valid actions, a world's decoded actions).
    _compact: list[Any] | None = attrs.field(default=None, init=False, eq=False, repr=False)
    _packed: bytes | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @property
    def type(self) -> ActionType:
        return self.action_type

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Action:
            return NotImplemented
        return (self.action_type is other.action_type  # type: ignore[attr-defined]
                and self.parameters == other.parameters)  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        # Cached: actions are built once and hashed often (sets, dict keys). Equal
        # parameter dicts in any key order give equal frozensets, so equal hashes.
        cached = self._hash
        if cached is None:
            cached = hash((self.action_type, frozenset(self.parameters.items())))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __repr__(self) -> str:
        return f"Action <{self.action_type}|{self.parameters}>"

    __str__ = __repr__

    @property
    def as_dict(self) -> dict[str, Any]:
        """NetSecGame's dict form: ``{"action_type": "ActionType.X", "parameters": {...}}``."""
        return {"action_type": str(self.action_type),
                "parameters": {k: _parameter_as_json(v) for k, v in self.parameters.items()}}

    def to_json(self) -> str:
        return json.dumps(self.as_dict)

    @classmethod
    def from_dict(cls, data: Any) -> Action:
        """Parse NetSecGame's dict form; bare type names are accepted.

        Raises ProtocolError (a ValueError) naming the offending field.
        """
        data = _expect_mapping(data, "action", ("action_type", "parameters"))
        if "action_type" not in data:
            raise ProtocolError("action_type", "an action type (required)", "nothing")
        raw_type = data["action_type"]
        try:
            action_type = ActionType.from_string(raw_type)
        except ValueError:
            raise ProtocolError("action_type", "one of " + ", ".join(t.value for t in ActionType),
                                describe(raw_type)) from None
        if "parameters" not in data:
            raise ProtocolError("parameters", "an object (required)", "nothing")
        raw_parameters = data["parameters"]
        if not isinstance(raw_parameters, dict):
            raise ProtocolError("parameters", "an object", describe(raw_parameters))
        parameters: dict[str, Any] = {}
        for key, value in raw_parameters.items():
            parser = _PARAMETER_PARSERS.get(key) if isinstance(key, str) else None
            if parser is None:
                raise ProtocolError("parameters", "only known parameter names "
                                    f"({', '.join(_PARAMETER_PARSERS)})", f"unknown key {key!r}")
            parameters[key] = parser(value, f"parameters.{key}")
        return cls(action_type, parameters)

    @classmethod
    def from_json(cls, text: str | bytes) -> Action:
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError) as error:
            raise ProtocolError("action", "a JSON object", f"invalid JSON ({error})") from None
        return cls.from_dict(data)


@final
class PassAction:
    """The type of :data:`PASS`, the counted no-op step. A singleton: ``PassAction() is PASS``.

    An RL environment needs a step that does nothing (a masked action, a learner that
    waits): PASS is a game step of the seat that sent it, so it counts towards max_steps
    and earns the step reward, but it changes nothing in the world. Its compact form is
    msgpack nil (PROTOCOL.md §3.2). It is not an :class:`Action` and not part of
    NetSecGame's protocol: the gateway never produces it.
    """

    __slots__ = ()
    _instance: ClassVar[PassAction | None] = None

    def __new__(cls) -> PassAction:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PASS"

    def __reduce__(self) -> str:
        return "PASS"  # pickles as the module-level singleton

    def __copy__(self) -> PassAction:
        return self

    def __deepcopy__(self, memo: Any) -> PassAction:
        return self


#: The counted no-op step (see :class:`PassAction`).
PASS = PassAction()


def validate_action(action: Any) -> Action:
    """Check that ``action`` is an Action whose type has every required parameter,
    each of the right type. Returns it; raises ProtocolError otherwise."""
    if not isinstance(action, Action):
        raise ProtocolError("action", "an Action", describe(action))
    if not isinstance(action.action_type, ActionType):
        raise ProtocolError("action_type", "an ActionType", describe(action.action_type))
    parameters = action.parameters
    if not isinstance(parameters, dict):
        raise ProtocolError("parameters", "a dict", describe(parameters))
    for key, value in parameters.items():
        expected = _PARAMETER_TYPES.get(key)
        if expected is None:
            raise ProtocolError("parameters", "only known parameter names", f"unknown key {key!r}")
        if not isinstance(value, expected) or (bool not in expected and isinstance(value, bool)):
            raise ProtocolError(f"parameters.{key}", _TYPE_NAMES.get(expected[0], "an integer or null"),
                                describe(value))
    for key in REQUIRED_PARAMETERS[action.action_type]:
        if key not in parameters and not (key == "blocked_host" and "blocked_ip" in parameters):
            raise ProtocolError(f"parameters.{key}",
                                f"{_TYPE_NAMES[_PARAMETER_TYPES[key][0]]} (required by "
                                f"{action.action_type.value})", "nothing")
    return action
