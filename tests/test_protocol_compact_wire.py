"""The compact codec's wire forms and decoder caches (DESIGN §6; PROTOCOL.md § 4 STEP and
observation; protocol/compact.py module docstring).

Promised: exact compact forms of every action type, PASS as nil, a packed form computed
once per action or state object, decoded states and actions kept by their bytes (the same
object again, bounded), interned components shared between decodes (bounded), and the
checks of untrusted input holding whatever was decoded before. Every test starts from
empty decoder caches so that earlier decodes (of this or other tests) cannot hide a
decoding path.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    IP,
    PASS,
    Action,
    ActionType,
    AgentInfo,
    AgentRole,
    Data,
    GameState,
    Network,
    Observation,
    ProtocolError,
    Service,
    action_from_compact,
    action_from_packed,
    action_to_compact,
    compact,
    observation_from_compact,
    observation_to_compact,
    pack,
    pack_action,
    pack_state,
    state_from_compact,
    state_to_compact,
    unpack,
)
from protocol.compact import state_from_packed

from .protocol_samples import (
    all_actions,
    fresh_compact_caches,  # noqa: F401 (a fixture)
    rich_state,
)

pytestmark = pytest.mark.usefixtures("fresh_compact_caches")




def compact_state(index: int) -> list[Any]:
    """A compact state with one component of each kind, distinct per ``index``."""
    host = f"10.7.{index // 256}.{index % 256}"
    return [[host], [host, "10.7.255.1"], [["10.7.0.0", 16]],
            {host: [["ssh", "passive", f"8.{index}", False]]},
            {host: [["User1", f"Data{index}", index, "txt", "secret"]]},
            {host: ["10.7.255.1"]}]


# ------------------------------------------------------------------------- actions


def test_every_action_type_has_its_exact_compact_form() -> None:
    """DESIGN §6: ``[type code, parameters...]`` in REQUIRED_PARAMETERS order, components
    as their compact lists; ResetGame carries [flag, flag, seed]."""
    expected = [
        [0, "192.168.1.2", ["192.168.1.0", 24]],
        [1, "192.168.1.2", "192.168.1.3"],
        [2, "192.168.1.2", "192.168.1.2"],
        [3, "192.168.1.2", "192.168.1.3", ["ssh", "passive", "8.1.0", False]],
        [4, "192.168.1.3", "213.47.23.195", ["User1", "DatabaseData", 12, "db", "secret"]],
        [5, "192.168.1.2", "192.168.1.3", "213.47.23.195"],
        [6, ["MyAgent", "Attacker"]],
        [7],
        [8, True, False, 42],
    ]
    assert [action_to_compact(action) for action in all_actions()] == expected
    reset = Action(ActionType.ResetGame,
                   {"request_trajectory": False, "randomize_topology": True, "seed": 7})
    assert action_to_compact(reset) == [8, False, True, 7]
    assert action_from_compact([8, False, True, 7]) == reset
    assert action_from_compact([8, "True", "False", "None"]).parameters == {
        "request_trajectory": True, "randomize_topology": False, "seed": None}


def test_pass_is_nil() -> None:
    """PROTOCOL.md § 4: PASS is a STEP body of msgpack nil, the single byte 0xc0."""
    assert action_to_compact(PASS) is None
    assert pack_action(PASS) == b"\xc0" == pack(None)
    assert action_from_compact(None) is PASS
    assert action_from_packed(b"\xc0") is PASS


def test_an_actions_wire_forms_are_computed_once() -> None:
    """compact.py: the compact list and the packed bytes are made once per action object
    (a policy's cached actions are sent many times)."""
    for action in all_actions():
        first = action_to_compact(action)
        assert action_to_compact(action) is first
        packed = pack_action(action)
        assert packed == pack(first)
        assert pack_action(action) is packed
        assert unpack(packed) == first


def test_packed_actions_are_decoded_once_per_bytes() -> None:
    """compact.py: ``action_from_packed`` checks and decodes a body once; the same bytes
    (or a view of them) give the same immutable action, whose packed form is those bytes."""
    for action in all_actions():
        body = pack(action_to_compact(action))
        decoded = action_from_packed(body)
        assert decoded == action and decoded is not action
        assert action_from_packed(bytes(bytearray(body))) is decoded
        assert action_from_packed(memoryview(body)) is decoded
        assert pack_action(decoded) is body
    viewed = action_from_packed(memoryview(pack([7])))
    assert viewed == Action(ActionType.QuitGame, {})
    assert type(pack_action(viewed)) is bytes and pack_action(viewed) == pack([7])


def test_the_action_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """compact.py: decoded actions are kept up to STATE_CACHE_SIZE, the oldest dropped first."""
    monkeypatch.setattr(compact, "STATE_CACHE_SIZE", 3)
    bodies = [pack([8, False, False, seed]) for seed in range(5)]
    decoded = [action_from_packed(body) for body in bodies]
    assert [d.parameters["seed"] for d in decoded] == list(range(5))
    assert len(compact._actions) == 3
    assert action_from_packed(bodies[4]) is decoded[4]
    again = action_from_packed(bodies[0])
    assert again == decoded[0] and again is not decoded[0]


def test_join_actions_decode_every_role() -> None:
    """reference §1.5: JoinGame carries [name, role]; a role is read in any case."""
    for role in AgentRole:
        back = action_from_compact([6, ["agent", role.value.upper()]])
        assert back == Action(ActionType.JoinGame, {"agent_info": AgentInfo("agent", role)})


# -------------------------------------------------------------------------- states


def test_states_decode_from_a_cold_cache() -> None:
    """DESIGN §6: the compact state round-trips, also through msgpack, with every field of
    every component (Data compares by owner/id/type only, so size/content are checked)."""
    state = rich_state()
    back = state_from_compact(state_to_compact(state))
    assert back == state
    sizes = {(d.id, d.size, d.content) for d in next(iter(back.known_data.values()))}
    assert sizes == {("DatabaseData", 12, "secret"), ("Logs", 0, "[]")}
    services = {(s.name, s.type, s.version, s.is_local) for s in next(iter(back.known_services.values()))}
    assert services == {("ssh", "passive", "8.1.0", False), ("http", "passive", "2.4", True)}
    assert state_from_compact(unpack(pack_state(state))) == state


def test_in_process_tuples_decode_too() -> None:
    """compact.py: a component given as a tuple (in-process callers) is checked and decoded,
    though not interned."""
    value = [(), (), [("10.7.0.0", 16)], {"10.7.0.1": [("ssh", "t", "v", True)]},
             {"10.7.0.1": [("U", "D", 3, "t", "c")]}, {}]
    back = state_from_compact(value)
    assert back.known_networks == frozenset({Network("10.7.0.0", 16)})
    assert back.known_services == {IP("10.7.0.1"): frozenset({Service("ssh", "t", "v", True)})}
    [datum] = back.known_data[IP("10.7.0.1")]
    assert (datum.owner, datum.id, datum.size, datum.type, datum.content) == ("U", "D", 3, "t", "c")


def test_mask_bounds() -> None:
    """DESIGN §6: a prefix length is 0-128 inclusive (IPv6 networks exist upstream)."""
    assert action_from_compact([0, "10.7.0.1", ["0.0.0.0", 0]]).parameters["target_network"] == (
        Network("0.0.0.0", 0))
    assert action_from_compact([0, "10.7.0.1", ["::", 128]]).parameters["target_network"] == (
        Network("::", 128))


def test_components_are_interned_across_decodes() -> None:
    """compact.py: a new state shares the IPs, networks, services and data of earlier ones."""
    first = state_from_compact(compact_state(1))
    second = state_from_compact(compact_state(1))  # equal lists, new objects
    assert first == second
    for field in ("controlled_hosts", "known_hosts", "known_networks"):
        assert {id(item) for item in getattr(first, field)} == {id(item) for item in getattr(second, field)}
    [host] = first.controlled_hosts
    assert [id(h) for h in second.known_services] == [id(host)]
    assert [id(s) for s in first.known_services[host]] == [id(s) for s in second.known_services[host]]
    assert [id(d) for d in first.known_data[host]] == [id(d) for d in second.known_data[host]]
    assert [id(b) for b in first.known_blocks[host]] == [id(b) for b in second.known_blocks[host]]
    action = action_from_compact([3, "10.7.0.1", "10.7.0.1", ["ssh", "passive", "8.1", False]])
    [service] = first.known_services[host]
    assert action.parameters["target_service"] is service
    assert action.parameters["source_host"] is host


def test_component_kinds_do_not_share_intern_entries() -> None:
    """compact.py: interning is per kind: a list that is a valid service is still checked
    as data (and the other way round)."""
    action_from_compact([3, "10.7.0.1", "10.7.0.2", ["a", "b", "c", True]])
    with pytest.raises(ProtocolError) as info:
        action_from_compact([4, "10.7.0.1", "10.7.0.2", ["a", "b", "c", True]])
    assert info.value.field == "action.data"
    action_from_compact([0, "10.7.0.1", ["10.7.0.0", 16]])
    with pytest.raises(ProtocolError) as info:
        action_from_compact([3, "10.7.0.1", "10.7.0.2", ["10.7.0.0", 16]])
    assert info.value.field == "action.target_service"


@pytest.mark.parametrize(
    ("valid", "invalid", "field"),
    [
        ([3, "10.7.0.1", "10.7.0.2", ["ssh", "t", "v", True]],
         [3, "10.7.0.1", "10.7.0.2", ["ssh", "t", "v", 1]], "action.target_service[3]"),
        ([3, "10.7.0.1", "10.7.0.2", ["ssh", "t", "v", False]],
         [3, "10.7.0.1", "10.7.0.2", ["ssh", "t", "v", 0]], "action.target_service[3]"),
        ([4, "10.7.0.1", "10.7.0.2", ["U", "D", 1, "t", "c"]],
         [4, "10.7.0.1", "10.7.0.2", ["U", "D", True, "t", "c"]], "action.data[2]"),
        ([0, "10.7.0.1", ["10.7.0.0", 1]], [0, "10.7.0.1", ["10.7.0.0", True]],
         "action.target_network[1]"),
    ],
)
def test_checks_hold_after_an_equal_looking_component(valid: Any, invalid: Any, field: str) -> None:
    """compact.py ("checked then"): True == 1 in Python, but a flag sent as 1 (or a number
    sent as true) is rejected whether or not the valid form was decoded before.
    (Defect fixed: the intern key ignored types, so the invalid form reused the valid one.)"""
    with pytest.raises(ProtocolError):
        action_from_compact(invalid)
    action_from_compact(valid)
    with pytest.raises(ProtocolError) as info:
        action_from_compact(invalid)
    assert info.value.field == field


def test_interned_components_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """compact.py: at most INTERN_SIZE interned components are kept; decoding stays right
    when the table is cleared."""
    monkeypatch.setattr(compact, "INTERN_SIZE", 4)
    for index in range(12):
        assert state_from_compact(compact_state(index)) == state_from_compact(compact_state(index))
        assert len(compact._interned) <= 4
    monkeypatch.setattr(compact, "INTERN_SIZE", 2)
    compact._interned.clear()
    state_from_compact([["10.7.1.1", "10.7.1.2"], [], [], {}, {}, {}])
    assert len(compact._interned) == 2


def test_packed_states_are_decoded_once_per_bytes() -> None:
    """PROTOCOL.md § 4, compact.py: a client decodes each distinct packed state once; the same
    bytes give the same state object, whose packed form is those very bytes (so a state
    passed on is not packed again)."""
    body = pack(compact_state(3))
    state = state_from_packed(body)
    assert state == state_from_compact(compact_state(3))
    assert state_from_packed(bytes(bytearray(body))) is state
    assert state_from_compact(body) is state
    assert state_from_packed(memoryview(body)) is state
    assert pack_state(state) is body
    other = state_from_packed(pack(compact_state(4)))
    assert other is not state and other != state


def test_a_packed_state_from_a_view_or_bytearray() -> None:
    """compact.py: ``state_from_compact`` takes bytes or a bytearray (defect fixed: a
    bytearray was used as a cache key and raised TypeError), and a state from a memoryview
    keeps plain bytes as its packed form."""
    body = pack(compact_state(5))
    from_array = state_from_compact(bytearray(body))
    assert from_array == state_from_compact(compact_state(5))
    assert pack_state(from_array) == body and type(pack_state(from_array)) is bytes
    assert state_from_packed(body) is from_array
    viewed = state_from_packed(memoryview(pack(compact_state(6))))
    assert type(pack_state(viewed)) is bytes and pack_state(viewed) == pack(compact_state(6))


def test_the_state_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """compact.py: decoded states are kept up to STATE_CACHE_SIZE, the oldest dropped first."""
    monkeypatch.setattr(compact, "STATE_CACHE_SIZE", 3)
    bodies = [pack(compact_state(index)) for index in range(5)]
    states = [state_from_packed(body) for body in bodies]
    assert len(compact._states) == 3
    assert state_from_packed(bodies[4]) is states[4]
    assert state_from_packed(bodies[2]) is states[2]
    again = state_from_packed(bodies[0])
    assert again == states[0] and again is not states[0]


def test_observations_carry_the_packed_state() -> None:
    """PROTOCOL.md § 4: ``[state, reward, end, info]`` with the state packed on its own, sent
    as the state's cached bytes and decoded to the cached state."""
    state = rich_state()
    observation = Observation(state, -1.5, True, {"end_reason": "goal"})
    wire = observation_to_compact(observation)
    assert wire == [pack_state(state), -1.5, True, {"end_reason": "goal"}]
    assert wire[0] is pack_state(state)
    back = observation_from_compact(unpack(pack(wire)))
    assert back == observation
    assert observation_from_compact(unpack(pack(wire))).state is back.state
    assert pack_state(back.state) == wire[0]
    datum = Data("User9", "Keys", 3, "key", "k")
    changed = state.evolve(known_data={IP("10.7.0.9"): frozenset({datum})})
    assert observation_from_compact(observation_to_compact(Observation(changed, 0, False, {}))).state == changed
    assert GameState() == state_from_compact(unpack(pack_state(GameState())))


def test_unpack_keeps_strings_and_binaries_apart() -> None:
    """DESIGN §6: msgpack str decodes to str and bin to bytes (a packed state is a bin)."""
    body = pack(["é", b"\x00\xff", {"k": [1, 2.5, None, True]}])
    assert body[1:3] == b"\xa2\xc3"  # a str, UTF-8 encoded
    assert unpack(body) == ["é", b"\x00\xff", {"k": [1, 2.5, None, True]}]
    assert [type(item) for item in unpack(body)] == [str, bytes, dict]
