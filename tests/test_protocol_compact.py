"""The compact msgpack codec (DESIGN §6): compact forms of actions, states and
observations, pack/unpack, and malformed compact input.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    Action,
    ActionType,
    GameState,
    Observation,
    ProtocolError,
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

from .protocol_samples import DATUM, DST, NET, OTHER, SRC, SSH, all_actions, rich_state

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
