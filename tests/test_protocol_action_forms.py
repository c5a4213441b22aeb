"""Actions (protocol/action.py): the exact one-line errors a malformed action gets, the checks
of :func:`validate_action`, equality and PASS.

The error texts are what a client reads in a MALFORMED reply's ``message`` (PROTOCOL.md §3.3,
§5): "<field>: expected <what>, got <what came>". The dict/JSON form is NetSecGame's
(reference netsecgame.md §1.8).
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from protocol import IP, PASS, Action, ActionType, AgentInfo, AgentRole, Data, Network, PassAction, Service
from protocol.action import REQUIRED_PARAMETERS, validate_action
from protocol.errors import ProtocolError, describe
from tests.protocol_samples import DATUM, DST, NET, OTHER, SRC, SSH, all_actions

KNOWN = ("source_host, target_host, blocked_host, blocked_ip, target_network, target_service, data, "
         "agent_info, request_trajectory, randomize_topology, seed")
TYPES = "ScanNetwork, FindServices, FindData, ExploitService, ExfiltrateData, BlockIP, JoinGame, QuitGame, ResetGame"


def _message(call: Any, *args: Any) -> str:
    with pytest.raises(ProtocolError) as caught:
        call(*args)
    return str(caught.value)


# ---------------------------------------------------------------- from_dict / from_json


@pytest.mark.parametrize(("data", "message"), [
    ([1], "action: expected an object with keys action_type, parameters, got list [1]"),
    ({"parameters": {}}, "action_type: expected an action type (required), got nothing"),
    ({"action_type": "Nope", "parameters": {}}, f"action_type: expected one of {TYPES}, got str 'Nope'"),
    ({"action_type": 7, "parameters": {}}, f"action_type: expected one of {TYPES}, got int 7"),
    ({"action_type": "QuitGame"}, "parameters: expected an object (required), got nothing"),
    ({"action_type": "QuitGame", "parameters": [1, 2]}, "parameters: expected an object, got list [1, 2]"),
    ({"action_type": "QuitGame", "parameters": {"x": 1}},
     f"parameters: expected only known parameter names ({KNOWN}), got unknown key 'x'"),
    ({"action_type": "QuitGame", "parameters": {3: 1}},
     f"parameters: expected only known parameter names ({KNOWN}), got unknown key 3"),
])
def test_from_dict_names_what_is_wrong(data: Any, message: str) -> None:
    """action.Action.from_dict: each malformed shape gets its own line naming the field, what
    was expected (the nine type names, the known parameter names) and what came."""
    assert _message(Action.from_dict, data) == message


@pytest.mark.parametrize(("parameters", "message"), [
    ({"request_trajectory": "yes"}, "parameters.request_trajectory: expected true or false, got str 'yes'"),
    ({"randomize_topology": 1}, "parameters.randomize_topology: expected true or false, got int 1"),
    ({"seed": "7"}, "parameters.seed: expected an integer or null, got str '7'"),
    ({"seed": True}, "parameters.seed: expected an integer or null, got bool True"),
    ({"seed": 1.5}, "parameters.seed: expected an integer or null, got float 1.5"),
])
def test_reset_parameters_refuse_other_values(parameters: dict[str, Any], message: str) -> None:
    """action._parse_flag / _parse_seed: flags are booleans or upstream's "True"/"False"
    strings, a seed an integer or null (or "None"); anything else is named."""
    assert _message(Action.from_dict, {"action_type": "ResetGame", "parameters": parameters}) == message


def test_reset_parameters_accept_upstream_literals() -> None:
    """action._parse_flag / _parse_seed: upstream writes flags and a missing seed as Python
    literals in strings (reference netsecgame.md §1.8)."""
    action = Action.from_dict({"action_type": "ActionType.ResetGame", "parameters": {
        "request_trajectory": "True", "randomize_topology": "False", "seed": "None"}})
    assert action.parameters == {"request_trajectory": True, "randomize_topology": False, "seed": None}
    assert type(action.parameters["request_trajectory"]) is bool
    action = Action.from_dict({"action_type": "ResetGame", "parameters": {
        "request_trajectory": False, "randomize_topology": True, "seed": 0}})
    assert action.parameters == {"request_trajectory": False, "randomize_topology": True, "seed": 0}


@pytest.mark.parametrize("text", ["{", b"\xff", "", "[1"])
def test_from_json_refuses_invalid_json(text: str | bytes) -> None:
    """action.Action.from_json: text that is not JSON says so, with the decoder's reason."""
    message = _message(Action.from_json, text)
    assert message.startswith("action: expected a JSON object, got invalid JSON (")
    assert message.endswith(")")


def test_from_json_reads_every_type_back() -> None:
    """action.Action.from_json: the JSON form of each of the nine sample actions reads back
    equal (a round trip of NetSecGame's form)."""
    for action in all_actions():
        assert Action.from_json(action.to_json()) == action
        assert Action.from_json(action.to_json().encode()) == action


# ---------------------------------------------------------------- validate_action


def test_validate_action_returns_complete_actions() -> None:
    """action.validate_action: a complete action of each type comes back as the same object;
    BlockIP may name the blocked host ``blocked_ip`` (upstream's WhiteBox key, reference §7.1)."""
    for action in all_actions():
        assert validate_action(action) is action
    legacy = Action(ActionType.BlockIP, {"source_host": SRC, "target_host": DST, "blocked_ip": OTHER})
    assert validate_action(legacy) is legacy
    reset = Action(ActionType.ResetGame, {"seed": None, "request_trajectory": False})
    assert validate_action(reset) is reset


@pytest.mark.parametrize(("action", "message"), [
    (5, "action: expected an Action, got int 5"),
    (PASS, "action: expected an Action, got PassAction PASS"),
    (Action("ScanNetwork", {}), "action_type: expected an ActionType, got str 'ScanNetwork'"),  # type: ignore[arg-type]
    (Action(ActionType.QuitGame, [1]), "parameters: expected a dict, got list [1]"),  # type: ignore[arg-type]
    (Action(ActionType.QuitGame, {"x": 1}), "parameters: expected only known parameter names, got unknown key 'x'"),
])
def test_validate_action_refuses_other_shapes(action: Any, message: str) -> None:
    """action.validate_action: not an Action, a type that is not an ActionType, parameters that
    are not a dict, an unknown parameter name: each named in one line."""
    assert _message(validate_action, action) == message


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("source_host", "1.1.1.1", "an IP"),
    ("target_host", NET, "an IP"),
    ("blocked_host", 3, "an IP"),
    ("blocked_ip", None, "an IP"),
    ("target_network", SRC, "a Network"),
    ("target_service", "ssh", "a Service"),
    ("data", SSH, "a Data"),
    ("agent_info", "Attacker", "an AgentInfo"),
    ("request_trajectory", 1, "true or false"),
    ("randomize_topology", None, "true or false"),
    ("seed", "3", "an integer or null"),
    ("seed", True, "an integer or null"),
    ("seed", 2.0, "an integer or null"),
])
def test_validate_action_names_a_wrongly_typed_parameter(key: str, value: Any, expected: str) -> None:
    """action.validate_action: each parameter has its type; a wrong one is named with what it
    should be (a bool is not a seed, an int is not a flag)."""
    action = Action(ActionType.QuitGame, {key: value})
    got = describe(value)
    assert _message(validate_action, action) == f"parameters.{key}: expected {expected}, got {got}"


_NAMES = {"source_host": "an IP", "target_host": "an IP", "blocked_host": "an IP", "target_network": "a Network",
          "target_service": "a Service", "data": "a Data", "agent_info": "an AgentInfo"}


@pytest.mark.parametrize("action", [a for a in all_actions() if REQUIRED_PARAMETERS[a.action_type]],
                         ids=lambda a: a.action_type.value)
def test_validate_action_names_each_missing_parameter(action: Action) -> None:
    """action.validate_action: every parameter a type needs (REQUIRED_PARAMETERS) is checked;
    a missing one is named with its type and the action type that needs it."""
    required = REQUIRED_PARAMETERS[action.action_type]
    assert set(required) <= set(action.parameters)
    for key in required:
        partial = Action(action.action_type, {k: v for k, v in action.parameters.items() if k != key})
        assert _message(validate_action, partial) == (
            f"parameters.{key}: expected {_NAMES[key]} (required by {action.action_type.value}), got nothing")


def test_required_parameters_per_type() -> None:
    """action.REQUIRED_PARAMETERS: NetSecGame's parameters per action type (reference §1.8)."""
    assert {
        ActionType.ScanNetwork: ("source_host", "target_network"),
        ActionType.FindServices: ("source_host", "target_host"),
        ActionType.FindData: ("source_host", "target_host"),
        ActionType.ExploitService: ("source_host", "target_host", "target_service"),
        ActionType.ExfiltrateData: ("source_host", "target_host", "data"),
        ActionType.BlockIP: ("source_host", "target_host", "blocked_host"),
        ActionType.JoinGame: ("agent_info",),
        ActionType.QuitGame: (),
        ActionType.ResetGame: (),
    } == REQUIRED_PARAMETERS


def test_a_wrong_type_is_named_before_a_missing_parameter() -> None:
    """action.validate_action: the types of the parameters present are checked first."""
    action = Action(ActionType.ScanNetwork, {"source_host": "1.1.1.1"})
    assert _message(validate_action, action) == "parameters.source_host: expected an IP, got str '1.1.1.1'"


# ---------------------------------------------------------------- equality, PASS


def test_equal_actions_are_not_unequal() -> None:
    """action.Action.__eq__/__ne__: equal type and parameters (any key order) make equal
    actions, and ``!=`` agrees with ``==``; other objects are never equal."""
    a = Action(ActionType.FindData, {"source_host": SRC, "target_host": DST})
    b = Action(ActionType.FindData, {"target_host": IP("192.168.1.3"), "source_host": IP("192.168.1.2")})
    c = Action(ActionType.FindServices, {"source_host": SRC, "target_host": DST})
    assert a is not b
    assert (a == b) is True and (a != b) is False
    assert (a != c) is True and (a == c) is False
    assert (a != "FindData") is True and (a == "FindData") is False
    assert hash(a) == hash(b) and len({a, b, c}) == 2
    assert a.type is ActionType.FindData


def test_pass_is_one_object() -> None:
    """action.PassAction: PASS is a singleton that survives pickling and copying (a vector
    env's workers send it across processes), and shows as ``PASS``."""
    assert PassAction() is PASS
    assert pickle.loads(pickle.dumps(PASS)) is PASS
    assert copy.copy(PASS) is PASS and copy.deepcopy([PASS])[0] is PASS
    assert repr(PASS) == str(PASS) == "PASS"


def test_parameters_keep_their_component_types() -> None:
    """action.Action.from_dict: each known parameter is parsed into its component type."""
    action = Action.from_dict({"action_type": "ExfiltrateData", "parameters": {
        "source_host": {"ip": "192.168.1.3"}, "target_host": {"ip": "213.47.23.195"}, "data": DATUM.as_dict}})
    assert action.parameters == {"source_host": DST, "target_host": OTHER, "data": DATUM}
    join = Action.from_dict({"action_type": "JoinGame", "parameters": {
        "agent_info": AgentInfo("A", AgentRole.Defender).as_dict}})
    assert join.parameters["agent_info"] == AgentInfo("A", AgentRole.Defender)
    assert isinstance(Action.from_dict({"action_type": "ScanNetwork", "parameters": {
        "target_network": NET.as_dict}}).parameters["target_network"], Network)
    assert isinstance(Service.from_dict(SSH.as_dict), Service) and isinstance(DATUM, Data)
