"""The compact codec's error texts (DESIGN §6, §7; PROTOCOL.md § 5 error replies).

A malformed compact body is answered with the ProtocolError's text, ``<field>: expected
<what>, got <what came>``: the client's only clue to what it sent wrong, so the full text
is checked here, not just the field (tests/test_protocol_compact.py checks the fields).
Every test starts from empty decoder caches, so a component decoded by another test
cannot stand in for the one checked here.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    Action,
    ActionType,
    GameState,
    ProtocolError,
    action_from_compact,
    action_from_packed,
    action_to_compact,
    observation_from_compact,
    pack,
    state_from_compact,
    state_to_compact,
    unpack,
)
from protocol.compact import state_from_packed

from .protocol_samples import (
    SRC,
    fresh_compact_caches,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.usefixtures("fresh_compact_caches")

HOSTS = ["10.9.0.1", "10.9.0.2"]
NET = ["10.9.0.0", 24]
SERVICE = ["ssh", "passive", "8.1.0", False]
DATUM = ["User1", "Passwords", 12, "txt", "secret"]
EMPTY_STATE: list[Any] = [[], [], [], {}, {}, {}]




def error_text(call: Any, *args: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    return str(info.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("x", "action: expected a list, got str 'x'"),
        ([], "action: expected [type code, parameters...], got an empty list"),
        ([9], "action[0]: expected an action type code 0-8, got int 9"),
        ([-1], "action[0]: expected an action type code 0-8, got int -1"),
        ([False], "action[0]: expected an action type code 0-8, got bool False"),
        ([0, HOSTS[0]], "action: expected a list of 3, got list [0, '10.9.0.1']"),
        ([0, 1, NET], "action.source_host: expected an IP address, got int 1"),
        ([0, "bad", NET], "action.source_host: expected an IP address, got str 'bad'"),
        ([1, HOSTS[0], "10.9.0.300"],
         "action.target_host: expected an IP address, got str '10.9.0.300'"),
        ([5, *HOSTS, "x"], "action.blocked_host: expected an IP address, got str 'x'"),
        ([0, HOSTS[0], ["10.9.0.0"]],
         "action.target_network: expected a list of 2, got list ['10.9.0.0']"),
        ([0, HOSTS[0], [5, 24]], "action.target_network[0]: expected a string, got int 5"),
        ([0, HOSTS[0], ["10.9.0.0", "24"]],
         "action.target_network[1]: expected an integer, got str '24'"),
        ([0, HOSTS[0], ["10.9.0.0", True]],
         "action.target_network[1]: expected an integer, got bool True"),
        ([0, HOSTS[0], ["10.9.0.0", 129]],
         "action.target_network[1]: expected a prefix length 0-128, got int 129"),
        ([0, HOSTS[0], ["10.9.0.0", -1]],
         "action.target_network[1]: expected a prefix length 0-128, got int -1"),
        ([3, *HOSTS, ["ssh"]], "action.target_service: expected a list of 4, got list ['ssh']"),
        ([3, *HOSTS, [1, "t", "v", True]], "action.target_service[0]: expected a string, got int 1"),
        ([3, *HOSTS, ["n", 2, "v", True]], "action.target_service[1]: expected a string, got int 2"),
        ([3, *HOSTS, ["n", "t", 3, True]], "action.target_service[2]: expected a string, got int 3"),
        ([3, *HOSTS, ["n", "t", "v", 1]],
         "action.target_service[3]: expected true or false, got int 1"),
        ([4, *HOSTS, ["U", "D", 0, ""]],
         "action.data: expected a list of 5, got list ['U', 'D', 0, '']"),
        ([4, *HOSTS, [1, "D", 0, "t", "c"]], "action.data[0]: expected a string, got int 1"),
        ([4, *HOSTS, ["U", 2, 0, "t", "c"]], "action.data[1]: expected a string, got int 2"),
        ([4, *HOSTS, ["U", "D", "0", "t", "c"]], "action.data[2]: expected an integer, got str '0'"),
        ([4, *HOSTS, ["U", "D", True, "t", "c"]],
         "action.data[2]: expected an integer, got bool True"),
        ([4, *HOSTS, ["U", "D", 0, 4, "c"]], "action.data[3]: expected a string, got int 4"),
        ([4, *HOSTS, ["U", "D", 0, "t", 5]], "action.data[4]: expected a string, got int 5"),
        ([6, ["a", "Attacker", "x"]],
         "action.agent_info: expected a list of 2, got list ['a', 'Attacker', 'x']"),
        ([6, {"name": "a"}], "action.agent_info: expected a list of 2, got dict {'name': 'a'}"),
        ([6, [5, "Attacker"]], "action.agent_info[0]: expected a string, got int 5"),
        ([6, ["a", 5]], "action.agent_info[1]: expected Attacker, Defender or Benign, got int 5"),
        ([6, ["a", "king"]],
         "action.agent_info[1]: expected Attacker, Defender or Benign, got str 'king'"),
        ([8, True, False], "action: expected a list of 4, got list [8, True, False]"),
        ([8, 1, False, None], "action.request_trajectory: expected true or false, got int 1"),
        ([8, False, 1, None], "action.randomize_topology: expected true or false, got int 1"),
        ([8, False, False, True], "action.seed: expected an integer or null, got bool True"),
    ],
)
def test_action_errors_say_field_expectation_and_value(value: Any, text: str) -> None:
    """DESIGN §6/§7: a malformed compact action is one clear line naming the field, what it
    needed and what came (the text an error reply carries)."""
    assert error_text(action_from_compact, value) == text


def test_action_error_field_prefix_and_packed_errors() -> None:
    """DESIGN §6: the caller's field name leads; a packed action fails the same way."""
    assert error_text(action_from_compact, [1, "x", "10.9.0.1"], "step") == (
        "step.source_host: expected an IP address, got str 'x'")
    assert error_text(action_from_packed, pack([])) == (
        "action: expected [type code, parameters...], got an empty list")
    assert error_text(action_from_packed, b"\xc1").startswith(
        "body: expected valid msgpack, got FormatError")


def test_an_incomplete_action_cannot_be_encoded() -> None:
    """DESIGN §6: encoding names the missing parameter and the type that needs it."""
    action = Action(ActionType.ScanNetwork, {"source_host": SRC})
    assert error_text(action_to_compact, action) == (
        "parameters.target_network: expected a value (required by ScanNetwork), got nothing")
    exploit = Action(ActionType.ExploitService, {"source_host": SRC, "target_host": SRC})
    assert error_text(action_to_compact, exploit) == (
        "parameters.target_service: expected a value (required by ExploitService), got nothing")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({}, "state: expected a list of 6, got dict {}"),
        (["x", [], [], {}, {}, {}], "state.controlled_hosts: expected a list, got str 'x'"),
        ([["x"], [], [], {}, {}, {}], "state.controlled_hosts: expected an IP address, got str 'x'"),
        ([[], "x", [], {}, {}, {}], "state.known_hosts: expected a list, got str 'x'"),
        ([[], ["x"], [], {}, {}, {}], "state.known_hosts: expected an IP address, got str 'x'"),
        ([[], [7], [], {}, {}, {}], "state.known_hosts: expected an IP address, got int 7"),
        ([[], [], "x", {}, {}, {}], "state.known_networks: expected a list, got str 'x'"),
        ([[], [], [["10.9.0.0", True]], {}, {}, {}],
         "state.known_networks[1]: expected an integer, got bool True"),
        ([[], [], [], [], {}, {}],
         "state.known_services: expected a map keyed by IP address, got list []"),
        ([[], [], [], {"nope": []}, {}, {}],
         "state.known_services: expected an IP address, got str 'nope'"),
        ([[], [], [], {"10.9.0.1": "x"}, {}, {}],
         "state.known_services[10.9.0.1]: expected a list, got str 'x'"),
        ([[], [], [], {"10.9.0.1": [["ssh"]]}, {}, {}],
         "state.known_services[10.9.0.1][0]: expected a list of 4, got list ['ssh']"),
        ([[], [], [], {}, "x", {}], "state.known_data: expected a map keyed by IP address, got str 'x'"),
        ([[], [], [], {}, {"10.9.0.1": [DATUM, ["U"]]}, {}],
         "state.known_data[10.9.0.1][1]: expected a list of 5, got list ['U']"),
        ([[], [], [], {}, {}, {"10.9.0.1": [5]}],
         "state.known_blocks[10.9.0.1][0]: expected an IP address, got int 5"),
        ([[], [], [], {}, {}, {"10.9.0.1": ["y"]}],
         "state.known_blocks[10.9.0.1][0]: expected an IP address, got str 'y'"),
    ],
)
def test_state_errors_say_field_expectation_and_value(value: Any, text: str) -> None:
    """DESIGN §6/§7: a malformed compact state names the field path down to the item."""
    assert error_text(state_from_compact, value) == text


def test_packed_state_errors_keep_the_callers_field() -> None:
    """PROTOCOL.md § 4: the state inside an observation is packed on its own; its errors
    still name where it sat ("observation.state"), or "state" by default."""
    assert error_text(state_from_packed, pack([])) == "state: expected a list of 6, got list []"
    assert error_text(state_from_compact, pack([]), "obs") == "obs: expected a list of 6, got list []"
    assert error_text(observation_from_compact, [pack([]), 0, False, {}]) == (
        "observation.state: expected a list of 6, got list []")
    assert error_text(state_from_packed, b"\x92\x01").startswith(
        "body: expected valid msgpack, got ValueError: ")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ([], "observation: expected a list of 4, got list []"),
        ([EMPTY_STATE, "1", False, {}], "observation.reward: expected a number, got str '1'"),
        ([EMPTY_STATE, True, False, {}], "observation.reward: expected a number, got bool True"),
        ([EMPTY_STATE, 0, 0, {}], "observation.end: expected true or false, got int 0"),
        ([EMPTY_STATE, 0, False, []], "observation.info: expected a map, got list []"),
        ([[], 0, False, {}], "observation.state: expected a list of 6, got list []"),
    ],
)
def test_observation_errors_say_field_expectation_and_value(value: Any, text: str) -> None:
    """DESIGN §6/§7: a malformed compact observation names the field."""
    assert error_text(observation_from_compact, value) == text


def test_observation_numbers_accepted() -> None:
    """reference §1.10: a reward is any number (int or float), end a bool, info a map."""
    for reward in (0, -1, 2.5):
        back = observation_from_compact([EMPTY_STATE, reward, True, {"k": 1}])
        assert (back.reward, back.end, back.info) == (reward, True, {"k": 1})
        assert back.state == GameState()


def test_unpack_errors() -> None:
    """DESIGN §6: a body that is not bytes, too large or not msgpack is a "body" error that
    says which; the size bound is inclusive."""
    assert error_text(unpack, "not bytes") == "body: expected msgpack bytes, got str 'not bytes'"
    body = pack("abcd")
    assert unpack(body, max_bytes=len(body)) == "abcd"
    assert error_text(unpack, body, len(body) - 1) == (
        f"body: expected at most {len(body) - 1} bytes, got {len(body)} bytes")
    # the part after the error type is msgpack's own wording
    assert error_text(unpack, b"\x01\x02").startswith("body: expected valid msgpack, got ExtraData: ")
    assert state_to_compact(GameState()) == EMPTY_STATE
