"""Wire forms: NetSecGame's dict/JSON forms of actions and states (reference
netsecgame.md §1.8-§1.10), rejection of malformed input with a ProtocolError that names
the field, and the compact msgpack codec (DESIGN §6), including a Hypothesis check that
hostile input only ever raises ProtocolError.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    IP,
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
    action_to_compact,
    observation_from_compact,
    observation_to_compact,
    pack,
    pack_state,
    state_from_compact,
    state_to_compact,
    unpack,
)

SRC, DST, OTHER = IP("192.168.1.2"), IP("192.168.1.3"), IP("213.47.23.195")
NET = Network("192.168.1.0", 24)
SSH = Service("ssh", "passive", "8.1.0", False)
DATUM = Data("User1", "DatabaseData", 12, "db", "secret")


def all_actions() -> list[Action]:
    """One fully-parameterised action of each of the nine types."""
    return [
        Action(ActionType.ScanNetwork, {"source_host": SRC, "target_network": NET}),
        Action(ActionType.FindServices, {"source_host": SRC, "target_host": DST}),
        Action(ActionType.FindData, {"source_host": SRC, "target_host": SRC}),
        Action(
            ActionType.ExploitService,
            {"source_host": SRC, "target_host": DST, "target_service": SSH},
        ),
        Action(
            ActionType.ExfiltrateData, {"source_host": DST, "target_host": OTHER, "data": DATUM}
        ),
        Action(ActionType.BlockIP, {"source_host": SRC, "target_host": DST, "blocked_host": OTHER}),
        Action(ActionType.JoinGame, {"agent_info": AgentInfo("MyAgent", AgentRole.Attacker)}),
        Action(ActionType.QuitGame, {}),
        Action(
            ActionType.ResetGame,
            {"request_trajectory": True, "randomize_topology": False, "seed": 42},
        ),
    ]


def rich_state() -> GameState:
    return GameState(
        controlled_hosts={SRC, OTHER},
        known_hosts={SRC, DST, OTHER},
        known_services={DST: {SSH, Service("http", "passive", "2.4", True)}},
        known_data={SRC: {DATUM, Data("User2", "Logs", 0, "log", "[]")}},
        known_networks={NET, Network("213.47.23.192", 26)},
        known_blocks={DST: {SRC, OTHER}},
    )


# =========================================================================== §1.8 Action dict/JSON


class TestActionDictForm:
    @pytest.mark.parametrize("action", all_actions(), ids=lambda a: a.action_type.name)
    def test_dict_round_trip(self, action: Action) -> None:
        """reference §1.8, §11: dict round-trip for all 9 types."""
        assert Action.from_dict(action.as_dict) == action

    @pytest.mark.parametrize("action", all_actions(), ids=lambda a: a.action_type.name)
    def test_json_round_trip(self, action: Action) -> None:
        """reference §1.8, §11: JSON round-trip for all 9 types."""
        text = action.to_json()
        assert json.loads(text) == action.as_dict
        assert Action.from_json(text) == action
        assert Action.from_json(text.encode()) == action

    def test_data_round_trip_keeps_size_and_content(self) -> None:
        """reference §1.4, §1.8: data parameters carry size and content through the wire."""
        back = Action.from_json(all_actions()[4].to_json()).parameters["data"]
        assert (back.size, back.type, back.content) == (12, "db", "secret")

    def test_dict_shapes(self) -> None:
        """reference §1.8: action_type is "ActionType.X"; components become their field dicts."""
        dicts = [a.as_dict for a in all_actions()]
        assert dicts[0] == {
            "action_type": "ActionType.ScanNetwork",
            "parameters": {
                "source_host": {"ip": "192.168.1.2"},
                "target_network": {"ip": "192.168.1.0", "mask": 24},
            },
        }
        assert dicts[3]["parameters"]["target_service"] == {
            "name": "ssh",
            "type": "passive",
            "version": "8.1.0",
            "is_local": False,
        }
        assert dicts[4]["parameters"]["data"] == {
            "owner": "User1",
            "id": "DatabaseData",
            "size": 12,
            "type": "db",
            "content": "secret",
        }
        assert dicts[6] == {
            "action_type": "ActionType.JoinGame",
            "parameters": {"agent_info": {"name": "MyAgent", "role": "Attacker"}},
        }
        assert dicts[7] == {"action_type": "ActionType.QuitGame", "parameters": {}}
        assert dicts[8] == {
            "action_type": "ActionType.ResetGame",
            "parameters": {"request_trajectory": True, "randomize_topology": False, "seed": 42},
        }

    def test_parameter_encoding_rules(self) -> None:
        """reference §1.8: bool, int and None stay; a dict stays; anything else becomes str()."""
        action = Action(
            ActionType.ResetGame,
            {"request_trajectory": False, "seed": None, "randomize_topology": True},
        )
        assert action.as_dict["parameters"] == {
            "request_trajectory": False,
            "seed": None,
            "randomize_topology": True,
        }
        odd = Action(ActionType.ResetGame, {"seed": 1.5, "x": {"k": [1]}, "y": 7})
        assert odd.as_dict["parameters"] == {"seed": "1.5", "x": {"k": [1]}, "y": 7}

    def test_join_game_reference_example(self) -> None:
        """reference §2.4: the JoinGame request text parses."""
        text = (
            '{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": '
            '{"name": "MyAgent", "role": "Attacker"}}}'
        )
        assert Action.from_json(text) == all_actions()[6]

    def test_join_game_lower_case_role(self) -> None:
        """reference §11: JoinGame with role "attacker" parses to AgentRole.Attacker."""
        action = Action.from_dict(
            {
                "action_type": "ActionType.JoinGame",
                "parameters": {"agent_info": {"name": "a", "role": "attacker"}},
            }
        )
        assert action.parameters["agent_info"].role is AgentRole.Attacker
        assert action.as_dict["parameters"]["agent_info"] == {"name": "a", "role": "Attacker"}

    @pytest.mark.parametrize("action", all_actions(), ids=lambda a: a.action_type.name)
    def test_bare_type_names_accepted(self, action: Action) -> None:
        """reference §1.8: action_type with or without the "ActionType." prefix."""
        data = action.as_dict
        data["action_type"] = action.action_type.name
        assert Action.from_dict(data) == action

    @pytest.mark.parametrize(
        "parameters",
        [
            {},
            {"request_trajectory": True, "seed": None},
            {"request_trajectory": False, "randomize_topology": False},
            {"request_trajectory": False, "randomize_topology": True, "seed": 7},
        ],
    )
    def test_reset_game_optional_parameters(self, parameters: dict[str, Any]) -> None:
        """reference §1.5, §11: ResetGame parameters are all optional (0, 2 or 3 given)."""
        action = Action.from_dict({"action_type": "ActionType.ResetGame", "parameters": parameters})
        assert action.parameters == parameters
        assert Action.from_json(action.to_json()) == action

    def test_block_ip_with_blocked_ip(self) -> None:
        """reference §1.5, §11: the parser also accepts blocked_ip for BlockIP."""
        data = {
            "action_type": "ActionType.BlockIP",
            "parameters": {
                "source_host": {"ip": "192.168.1.2"},
                "target_host": {"ip": "192.168.1.3"},
                "blocked_ip": {"ip": "213.47.23.195"},
            },
        }
        action = Action.from_dict(data)
        assert action.parameters["blocked_ip"] == OTHER
        assert Action.from_json(action.to_json()) == action

    @pytest.mark.parametrize(
        ("raw", "value"), [(True, True), (False, False), ("True", True), ("False", False)]
    )
    def test_flags_accept_bool_and_literal_strings(self, raw: Any, value: bool) -> None:
        """reference §1.8: request_trajectory / randomize_topology: a bool or "True"/"False"."""
        action = Action.from_dict(
            {
                "action_type": "ResetGame",
                "parameters": {"request_trajectory": raw, "randomize_topology": raw},
            }
        )
        assert action.parameters == {"request_trajectory": value, "randomize_topology": value}

    @pytest.mark.parametrize(
        ("raw", "value"), [(0, 0), (42, 42), (-3, -3), (2**62, 2**62), (None, None), ("None", None)]
    )
    def test_seed_accepts_int_null_and_none_string(self, raw: Any, value: int | None) -> None:
        """reference §1.8: seed must be an int, null or the string "None"."""
        action = Action.from_dict({"action_type": "ResetGame", "parameters": {"seed": raw}})
        assert action.parameters["seed"] == value
        assert type(action.parameters["seed"]) is type(value)

    def test_extra_top_level_keys_ignored(self) -> None:
        """reference §1.8: extra top-level keys are ignored."""
        data = all_actions()[1].as_dict | {"comment": "hi", "id": 3}
        assert Action.from_dict(data) == all_actions()[1]

    def test_action_parameter_partial_service_and_data(self) -> None:
        """reference §1.3, §1.4: in actions, a service needs only its name and data only
        owner and id; the defaults fill the rest."""
        action = Action.from_dict(
            {
                "action_type": "ExfiltrateData",
                "parameters": {
                    "source_host": {"ip": "1.1.1.1"},
                    "target_host": {"ip": "1.1.1.2"},
                    "data": {"owner": "U", "id": "D"},
                },
            }
        )
        assert action.parameters["data"] == Data("U", "D")
        action = Action.from_dict(
            {
                "action_type": "ExploitService",
                "parameters": {
                    "source_host": {"ip": "1.1.1.1"},
                    "target_host": {"ip": "1.1.1.2"},
                    "target_service": {"name": "ssh"},
                },
            }
        )
        assert action.parameters["target_service"] == Service("ssh")


# =========================================================================== malformed actions

BAD_ACTIONS: list[tuple[str, Any, str]] = [
    # (id, input to Action.from_dict, expected ProtocolError.field)
    ("not-a-dict", "ScanNetwork", "action"),
    ("list", [1, 2], "action"),
    ("none", None, "action"),
    ("missing-type", {"parameters": {}}, "action_type"),
    ("unknown-type", {"action_type": "ActionType.Teleport", "parameters": {}}, "action_type"),
    ("lower-case-type", {"action_type": "scannetwork", "parameters": {}}, "action_type"),
    ("type-not-str", {"action_type": 3, "parameters": {}}, "action_type"),
    ("type-null", {"action_type": None, "parameters": {}}, "action_type"),
    ("missing-parameters", {"action_type": "QuitGame"}, "parameters"),
    ("parameters-list", {"action_type": "QuitGame", "parameters": []}, "parameters"),
    ("parameters-str", {"action_type": "QuitGame", "parameters": "{}"}, "parameters"),
    ("parameters-null", {"action_type": "QuitGame", "parameters": None}, "parameters"),
    (
        "unknown-parameter",
        {"action_type": "ScanNetwork", "parameters": {"target": {"ip": "1.1.1.1"}}},
        "parameters",
    ),
    (
        "ip-as-string",
        {"action_type": "FindData", "parameters": {"source_host": "1.1.1.1"}},
        "parameters.source_host",
    ),
    (
        "ip-null",
        {"action_type": "FindData", "parameters": {"target_host": None}},
        "parameters.target_host",
    ),
    (
        "bad-ip",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": "1.1.1.300"}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-not-str",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": 16843009}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-missing",
        {"action_type": "FindData", "parameters": {"source_host": {}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-extra-key",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": "1.1.1.1", "port": 22}}},
        "parameters.source_host",
    ),
    (
        "bad-blocked-host",
        {"action_type": "BlockIP", "parameters": {"blocked_host": {"ip": "x"}}},
        "parameters.blocked_host.ip",
    ),
    (
        "bad-blocked-ip",
        {"action_type": "BlockIP", "parameters": {"blocked_ip": {"ip": ""}}},
        "parameters.blocked_ip.ip",
    ),
    (
        "mask-as-string",
        {
            "action_type": "ScanNetwork",
            "parameters": {"target_network": {"ip": "1.1.1.0", "mask": "24"}},
        },
        "parameters.target_network.mask",
    ),
    (
        "mask-missing",
        {"action_type": "ScanNetwork", "parameters": {"target_network": {"ip": "1.1.1.0"}}},
        "parameters.target_network.mask",
    ),
    (
        "service-name-int",
        {"action_type": "ExploitService", "parameters": {"target_service": {"name": 22}}},
        "parameters.target_service.name",
    ),
    (
        "service-no-name",
        {"action_type": "ExploitService", "parameters": {"target_service": {"type": "passive"}}},
        "parameters.target_service.name",
    ),
    (
        "service-is-local-str",
        {
            "action_type": "ExploitService",
            "parameters": {"target_service": {"name": "ssh", "is_local": "yes"}},
        },
        "parameters.target_service.is_local",
    ),
    (
        "data-no-id",
        {"action_type": "ExfiltrateData", "parameters": {"data": {"owner": "U"}}},
        "parameters.data.id",
    ),
    (
        "data-size-str",
        {
            "action_type": "ExfiltrateData",
            "parameters": {"data": {"owner": "U", "id": "D", "size": "5"}},
        },
        "parameters.data.size",
    ),
    (
        "data-list",
        {"action_type": "ExfiltrateData", "parameters": {"data": ["U", "D"]}},
        "parameters.data",
    ),
    (
        "unknown-role",
        {"action_type": "JoinGame", "parameters": {"agent_info": {"name": "a", "role": "Admin"}}},
        "parameters.agent_info.role",
    ),
    (
        "role-int",
        {"action_type": "JoinGame", "parameters": {"agent_info": {"name": "a", "role": 1}}},
        "parameters.agent_info.role",
    ),
    (
        "agent-info-junk-string",
        {"action_type": "JoinGame", "parameters": {"agent_info": "me"}},
        "parameters.agent_info",
    ),
    (
        "agent-info-unhashable-literal",
        {"action_type": "JoinGame", "parameters": {"agent_info": "{[1]: 2}"}},
        "parameters.agent_info",
    ),
    ("seed-bool", {"action_type": "ResetGame", "parameters": {"seed": True}}, "parameters.seed"),
    ("seed-false", {"action_type": "ResetGame", "parameters": {"seed": False}}, "parameters.seed"),
    ("seed-str", {"action_type": "ResetGame", "parameters": {"seed": "42"}}, "parameters.seed"),
    ("seed-float", {"action_type": "ResetGame", "parameters": {"seed": 4.2}}, "parameters.seed"),
    (
        "seed-null-lower",
        {"action_type": "ResetGame", "parameters": {"seed": "null"}},
        "parameters.seed",
    ),
    (
        "flag-int",
        {"action_type": "ResetGame", "parameters": {"request_trajectory": 1}},
        "parameters.request_trajectory",
    ),
    (
        "flag-lower",
        {"action_type": "ResetGame", "parameters": {"randomize_topology": "true"}},
        "parameters.randomize_topology",
    ),
    (
        "flag-null",
        {"action_type": "ResetGame", "parameters": {"randomize_topology": None}},
        "parameters.randomize_topology",
    ),
]


@pytest.mark.parametrize(
    ("data", "field"), [(d, f) for _, d, f in BAD_ACTIONS], ids=[i for i, _, _ in BAD_ACTIONS]
)
def test_malformed_action_names_field(data: Any, field: str) -> None:
    """reference §1.8, §2.2: malformed actions are rejected (ValueError upstream,
    "Malformed Action" on the wire); the ProtocolError names the offending field."""
    with pytest.raises(ProtocolError) as info:
        Action.from_dict(data)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["this is not json", "", "{", '{"action_type": ', "\xff", b"\xff\xfe", "[1, 2]", "null", "42"],
)
def test_malformed_action_json(text: str | bytes) -> None:
    """reference §2.4: invalid JSON (or JSON that is not an object) is a ProtocolError
    on "action"."""
    with pytest.raises(ProtocolError) as info:
        Action.from_json(text)
    assert info.value.field == "action"


def test_protocol_error_pickles() -> None:
    """DESIGN: ProtocolError survives pickling (it crosses process boundaries)."""
    import pickle

    error = ProtocolError("parameters.seed", "an integer or null", "bool True")
    back = pickle.loads(pickle.dumps(error))
    assert (back.field, back.expected, back.got) == (error.field, error.expected, error.got)
    assert back.within("action").field == "action.parameters.seed"


# ======================================================================= §1.9 GameState dict/JSON


class TestGameStateDictForm:
    def test_reference_example_shape(self) -> None:
        """reference §1.9: the dict form, maps keyed by plain IP strings."""
        state = GameState(
            controlled_hosts={SRC},
            known_hosts={SRC},
            known_networks={NET},
            known_services={SRC: {SSH}},
            known_data={SRC: {Data("User1", "DatabaseData")}},
        )
        assert state.as_dict == {
            "known_networks": [{"ip": "192.168.1.0", "mask": 24}],
            "known_hosts": [{"ip": "192.168.1.2"}],
            "controlled_hosts": [{"ip": "192.168.1.2"}],
            "known_services": {
                "192.168.1.2": [
                    {"name": "ssh", "type": "passive", "version": "8.1.0", "is_local": False}
                ]
            },
            "known_data": {
                "192.168.1.2": [
                    {"owner": "User1", "id": "DatabaseData", "size": 0, "type": "", "content": ""}
                ]
            },
            "known_blocks": {},
        }
        assert json.loads(state.as_json()) == state.as_dict

    def test_blocks_shape_and_keys_are_plain_strings(self) -> None:
        """reference §1.9: known_blocks values are lists of {"ip": ...}; keys are strings."""
        data = rich_state().as_dict
        assert all(
            type(key) is str
            for part in ("known_services", "known_data", "known_blocks")
            for key in data[part]
        )
        assert sorted(b["ip"] for b in data["known_blocks"]["192.168.1.3"]) == [
            "192.168.1.2",
            "213.47.23.195",
        ]

    def test_round_trips(self) -> None:
        """reference §1.9, §11: as_dict/from_dict and as_json/from_json round-trip."""
        state = rich_state()
        assert GameState.from_dict(state.as_dict) == state
        assert GameState.from_json(state.as_json()) == state
        back = GameState.from_json(state.as_json())
        stored = {d.id: d for d in back.known_data[SRC]}
        assert (stored["DatabaseData"].size, stored["DatabaseData"].content) == (12, "secret")

    def test_known_blocks_optional_on_input(self) -> None:
        """reference §1.9: from_dict requires the first five keys; known_blocks is optional."""
        data = rich_state().as_dict
        del data["known_blocks"]
        assert GameState.from_dict(data).known_blocks == {}

    def test_doubly_wrapped_block_entries(self) -> None:
        """reference §1.9: blocked-IP entries may be {"ip": "x"} or {"ip": {"ip": "x"}}."""
        data = GameState().as_dict
        data["known_blocks"] = {
            "192.168.1.3": [{"ip": "192.168.1.2"}, {"ip": {"ip": "213.47.23.195"}}]
        }
        assert GameState.from_dict(data).known_blocks == {DST: frozenset({SRC, OTHER})}

    def test_order_of_lists_is_irrelevant(self) -> None:
        """reference §9: lists compare as sets."""
        data = rich_state().as_dict
        for key in ("known_hosts", "known_networks", "controlled_hosts"):
            data[key] = list(reversed(data[key]))
        assert GameState.from_dict(data) == rich_state()

    @pytest.mark.parametrize(
        "missing",
        ["known_networks", "known_hosts", "controlled_hosts", "known_services", "known_data"],
    )
    def test_required_keys(self, missing: str) -> None:
        """reference §1.9: the first five keys are required."""
        data = rich_state().as_dict
        del data[missing]
        with pytest.raises(ProtocolError) as info:
            GameState.from_dict(data)
        assert info.value.field == f"state.{missing}"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"known_hosts": {"ip": "1.1.1.1"}}, "state.known_hosts"),
            ({"known_hosts": [{"ip": "1.1.1.999"}]}, "state.known_hosts[0].ip"),
            ({"controlled_hosts": ["1.1.1.1"]}, "state.controlled_hosts[0]"),
            ({"known_networks": [{"ip": "1.1.1.0"}]}, "state.known_networks[0].mask"),
            ({"known_services": []}, "state.known_services"),
            ({"known_services": {"not-an-ip": []}}, "state.known_services"),
            ({"known_services": {"1.1.1.1": {"name": "ssh"}}}, "state.known_services[1.1.1.1]"),
            (
                {"known_services": {"1.1.1.1": [{"name": "ssh", "type": "t", "version": "v"}]}},
                "state.known_services[1.1.1.1][0].is_local",
            ),
            (
                {"known_data": {"1.1.1.1": [{"owner": "U", "id": "D"}]}},
                "state.known_data[1.1.1.1][0].size",
            ),
            (
                {
                    "known_data": {
                        "1.1.1.1": [
                            {
                                "owner": "U",
                                "id": "D",
                                "size": 0,
                                "type": "",
                                "content": "",
                                "extra": 1,
                            }
                        ]
                    }
                },
                "state.known_data[1.1.1.1][0]",
            ),
            (
                {"known_blocks": {"1.1.1.1": [{"ip": {"ip": "bad"}}]}},
                "state.known_blocks[1.1.1.1][0].ip.ip",
            ),
            ({"known_blocks": {"1.1.1.1": ["1.1.1.2"]}}, "state.known_blocks[1.1.1.1][0]"),
            ({"known_blocks": None}, "state.known_blocks"),
        ],
    )
    def test_from_dict_errors(self, change: dict[str, Any], field: str) -> None:
        """reference §1.9: malformed states are rejected, naming the field (Service entries
        need all four keys, Data entries all five)."""
        data = GameState().as_dict | change
        with pytest.raises(ProtocolError) as info:
            GameState.from_dict(data)
        assert info.value.field == field

    @pytest.mark.parametrize("bad", [None, [], "state", 5])
    def test_from_dict_non_dict(self, bad: Any) -> None:
        """reference §1.9: a state must be an object."""
        with pytest.raises(ProtocolError) as info:
            GameState.from_dict(bad)
        assert info.value.field == "state"

    def test_from_json_invalid(self) -> None:
        """reference §1.9: invalid JSON is a ProtocolError."""
        with pytest.raises(ProtocolError) as info:
            GameState.from_json("{nope")
        assert info.value.field == "state"


# =========================================================================== compact codec


class TestCompactCodec:
    def test_state_round_trip(self) -> None:
        """DESIGN §6: state_to_compact / state_from_compact round-trip, also through msgpack."""
        state = rich_state()
        assert state_from_compact(state_to_compact(state)) == state
        back = state_from_compact(unpack(pack_state(state)))
        assert back == state
        stored = {d.id: d for d in back.known_data[SRC]}
        assert (stored["DatabaseData"].size, stored["DatabaseData"].content) == (12, "secret")
        assert state_from_compact(state_to_compact(GameState())) == GameState()

    def test_state_compact_shape(self) -> None:
        """DESIGN §6: [controlled, known_hosts, networks, services, data, blocks]."""
        state = GameState(
            controlled_hosts={SRC},
            known_hosts={SRC},
            known_networks={NET},
            known_services={SRC: {SSH}},
            known_data={SRC: {DATUM}},
            known_blocks={SRC: {DST}},
        )
        assert state_to_compact(state) == [
            ["192.168.1.2"],
            ["192.168.1.2"],
            [["192.168.1.0", 24]],
            {"192.168.1.2": [["ssh", "passive", "8.1.0", False]]},
            {"192.168.1.2": [["User1", "DatabaseData", 12, "db", "secret"]]},
            {"192.168.1.2": ["192.168.1.3"]},
        ]

    def test_packed_state_is_cached(self) -> None:
        """DESIGN §6: an unchanged state is packed once: the same bytes object is reused."""
        state = rich_state()
        first = pack_state(state)
        assert pack_state(state) is first
        assert state_to_compact(state) is state_to_compact(state)
        assert unpack(first) == state_to_compact(state)
        evolved = state.evolve(known_hosts=frozenset({SRC}))
        assert pack_state(evolved) is not first

    @pytest.mark.parametrize("action", all_actions(), ids=lambda a: a.action_type.name)
    def test_action_round_trip(self, action: Action) -> None:
        """DESIGN §6: every action type round-trips, also through msgpack."""
        assert action_from_compact(action_to_compact(action)) == action
        assert action_from_compact(unpack(pack(action_to_compact(action)))) == action

    def test_action_compact_codes_follow_declaration_order(self) -> None:
        """DESIGN §6: the type code is the declaration index."""
        assert [action_to_compact(a)[0] for a in all_actions()] == list(range(9))

    def test_reset_defaults_are_filled_in(self) -> None:
        """DESIGN §6: ResetGame always carries [flag, flag, seed] (defaults False, False, null)."""
        compact = action_to_compact(Action(ActionType.ResetGame, {}))
        assert compact == [8, False, False, None]
        assert action_from_compact(compact).parameters == {
            "request_trajectory": False,
            "randomize_topology": False,
            "seed": None,
        }

    def test_blocked_ip_sent_as_blocked_host(self) -> None:
        """reference §1.5: BlockIP's blocked_ip is carried as blocked_host."""
        action = Action(
            ActionType.BlockIP, {"source_host": SRC, "target_host": DST, "blocked_ip": OTHER}
        )
        back = action_from_compact(action_to_compact(action))
        assert back.parameters == {"source_host": SRC, "target_host": DST, "blocked_host": OTHER}

    def test_action_to_compact_missing_parameter(self) -> None:
        """DESIGN §6: a half-formed action cannot be encoded."""
        with pytest.raises(ProtocolError) as info:
            action_to_compact(Action(ActionType.ScanNetwork, {"source_host": SRC}))
        assert info.value.field == "parameters.target_network"

    def test_observation_round_trip(self) -> None:
        """reference §1.10, DESIGN §6: observations round-trip."""
        obs = Observation(rich_state(), -1.5, True, {"end_reason": "AgentStatus.Success"})
        back = observation_from_compact(unpack(pack(observation_to_compact(obs))))
        assert back == obs
        assert isinstance(back, Observation)
        assert observation_from_compact(
            observation_to_compact(Observation(GameState(), 0, False, {}))
        ) == Observation(GameState(), 0, False, {})

    @pytest.mark.parametrize(
        "garbage",
        [
            b"\xc1",
            b"\x92\x01",
            b"\x01\x02",
            b"\xdd\xff\xff\xff\xff",
            b"\xd9\x05ab",
            b"\x81\x01\x02",
            b"\x81\x90\x01",
            b"\xa2\xff\xfe",
        ],
    )
    def test_unpack_rejects_garbage(self, garbage: bytes) -> None:
        """DESIGN §6: invalid, truncated, trailing-data, int-keyed or non-UTF-8 msgpack is a
        ProtocolError on "body"."""
        with pytest.raises(ProtocolError) as info:
            unpack(garbage)
        assert info.value.field == "body"

    def test_unpack_rejects_oversized_and_non_bytes(self) -> None:
        """DESIGN §6: bodies are bounded and must be bytes."""
        with pytest.raises(ProtocolError) as info:
            unpack(pack("x" * 100), max_bytes=50)
        assert info.value.field == "body"
        with pytest.raises(ProtocolError):
            unpack(b"\x00" * ((1 << 20) + 1))
        with pytest.raises(ProtocolError):
            unpack("not bytes")  # type: ignore[arg-type]
        assert unpack(bytearray(pack([1, "a"]))) == [1, "a"]
        assert unpack(memoryview(pack({"a": None}))) == {"a": None}

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            ([], "action"),
            ("x", "action"),
            ([9], "action[0]"),
            ([-1], "action[0]"),
            ([True], "action[0]"),
            (["ScanNetwork"], "action[0]"),
            ([0, "1.1.1.1"], "action"),
            ([0, "1.1.1.1", ["1.1.1.0", 24], "extra"], "action"),
            ([0, "bad", ["1.1.1.0", 24]], "action.source_host"),
            ([0, 1, ["1.1.1.0", 24]], "action.source_host"),
            ([0, "1.1.1.1", ["1.1.1.0", "24"]], "action.target_network[1]"),
            ([0, "1.1.1.1", ["1.1.1.0"]], "action.target_network"),
            ([3, "1.1.1.1", "1.1.1.2", ["ssh", "t", "v", 1]], "action.target_service[3]"),
            ([4, "1.1.1.1", "1.1.1.2", ["U", "D", 0, ""]], "action.data"),
            ([4, "1.1.1.1", "1.1.1.2", ["U", "D", "0", "", ""]], "action.data[2]"),
            ([6, ["a", "king"]], "action.agent_info[1]"),
            ([6, [5, "attacker"]], "action.agent_info[0]"),
            ([6, {"name": "a", "role": "Attacker"}], "action.agent_info"),
            ([8, True, False], "action"),
            ([8, 1, False, None], "action.request_trajectory"),
            ([8, False, False, True], "action.seed"),
        ],
    )
    def test_action_from_compact_errors(self, value: Any, field: str) -> None:
        """DESIGN §6: malformed compact actions name the field."""
        with pytest.raises(ProtocolError) as info:
            action_from_compact(value)
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            ({}, "state"),
            ([[], [], [], {}, {}], "state"),
            ([["x"], [], [], {}, {}, {}], "state.controlled_hosts"),
            ([[], "1.1.1.1", [], {}, {}, {}], "state.known_hosts"),
            ([[], [], [["1.1.1.0", True]], {}, {}, {}], "state.known_networks[1]"),
            ([[], [], [], [], {}, {}], "state.known_services"),
            ([[], [], [], {"nope": []}, {}, {}], "state.known_services"),
            ([[], [], [], {}, {"1.1.1.1": [["U"]]}, {}], "state.known_data[1.1.1.1][0]"),
            ([[], [], [], {}, {}, {"1.1.1.1": [5]}], "state.known_blocks[1.1.1.1][0]"),
        ],
    )
    def test_state_from_compact_errors(self, value: Any, field: str) -> None:
        """DESIGN §6: malformed compact states name the field."""
        with pytest.raises(ProtocolError) as info:
            state_from_compact(value)
        assert info.value.field == field

    @pytest.mark.parametrize(
        ("value", "field"),
        [
            ([], "observation"),
            ([state_to_compact(GameState()), "1", False, {}], "observation.reward"),
            ([state_to_compact(GameState()), True, False, {}], "observation.reward"),
            ([state_to_compact(GameState()), 0, 0, {}], "observation.end"),
            ([state_to_compact(GameState()), 0, False, []], "observation.info"),
            ([[], 0, False, {}], "observation.state"),
        ],
    )
    def test_observation_from_compact_errors(self, value: Any, field: str) -> None:
        """DESIGN §6: malformed compact observations name the field."""
        with pytest.raises(ProtocolError) as info:
            observation_from_compact(value)
        assert info.value.field == field


# =========================================================================== Hypothesis

_IPS = ["192.168.1.2", "10.0.0.1", "::1", "213.47.23.195", "1.1.1.300", "", "x"]
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.sampled_from(_IPS),
    st.sampled_from(["True", "False", "None", "attacker", "Benign"]),
    st.integers(min_value=-1, max_value=10),
)
_values = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=7),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.sampled_from(_IPS)), children, max_size=4
        ),
    ),
    max_leaves=40,
)


@st.composite
def _near_valid(draw: st.DrawFn) -> Any:
    """Mutations of valid compact forms: the shapes the decoders must check most carefully."""
    obs = Observation(rich_state(), -1, False, {"a": 1})
    bases = [action_to_compact(a) for a in all_actions()]
    bases += [state_to_compact(rich_state()), observation_to_compact(obs)]
    value = json.loads(json.dumps(draw(st.sampled_from(bases))))  # deep copy, lists only

    def mutate(node: Any) -> Any:
        if isinstance(node, list) and node and draw(st.booleans()):
            index = draw(st.integers(0, len(node) - 1))
            node[index] = mutate(node[index]) if draw(st.booleans()) else draw(_values)
        elif isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            node[key] = mutate(node[key]) if draw(st.booleans()) else draw(_values)
        return node

    for _ in range(draw(st.integers(0, 3))):
        value = mutate(value)
    return value


_DECODERS = (action_from_compact, state_from_compact, observation_from_compact)


def _only_protocol_errors(value: Any) -> None:
    for decode in _DECODERS:
        with contextlib.suppress(ProtocolError):
            decode(value)


_SETTINGS = settings(
    derandomize=True, deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)


@_SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    """DESIGN §6: random bytes either decode or raise ProtocolError, never anything else."""
    try:
        value = unpack(data)
    except ProtocolError:
        return
    _only_protocol_errors(value)


@_SETTINGS
@given(st.one_of(_values, _near_valid()))
def test_random_values_raise_only_protocol_error(value: Any) -> None:
    """DESIGN §6: random nested msgpack values fed to the decoders either decode or raise
    ProtocolError (directly, and after a msgpack round-trip)."""
    _only_protocol_errors(value)
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return
    try:
        unpacked = unpack(packed)
    except ProtocolError:
        return
    _only_protocol_errors(unpacked)


@_SETTINGS
@given(_near_valid())
def test_decoded_values_reencode(value: Any) -> None:
    """DESIGN §6: whatever decodes successfully can be encoded again and decodes equal."""
    for decode, encode in (
        (action_from_compact, action_to_compact),
        (state_from_compact, state_to_compact),
        (observation_from_compact, observation_to_compact),
    ):
        try:
            decoded = decode(value)
        except ProtocolError:
            continue
        again = decode(unpack(pack(encode(decoded))))
        if isinstance(decoded, Observation) and decoded.reward != decoded.reward:  # NaN
            assert again.reward != again.reward
            again, decoded = again._replace(reward=0), decoded._replace(reward=0)
        assert again == decoded
