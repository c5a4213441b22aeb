"""Wire forms: NetSecGame's dict/JSON forms of actions and states (reference
netsecgame.md §1.8-§1.9). Malformed input is in test_protocol_malformed.py, the compact
msgpack codec in test_protocol_compact.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import Action, ActionType, AgentRole, Data, GameState, ProtocolError, Service

from .protocol_samples import DST, NET, OTHER, SRC, SSH, all_actions, rich_state

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
