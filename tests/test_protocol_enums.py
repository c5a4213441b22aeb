"""The game's enums behave as NetSecGame's (reference netsecgame.md §1.5, §1.7).

Each test cites the reference section it checks.
"""

from __future__ import annotations

import json

import pytest

from protocol import ActionType, AgentRole, AgentStatus, GameStatus

# --------------------------------------------------------------------------- §1.5 ActionType


class TestActionType:
    def test_values_in_declaration_order(self) -> None:
        """reference §1.5: nine values in declaration order; each value equals its name."""
        assert [t.name for t in ActionType] == [
            "ScanNetwork",
            "FindServices",
            "FindData",
            "ExploitService",
            "ExfiltrateData",
            "BlockIP",
            "JoinGame",
            "QuitGame",
            "ResetGame",
        ]
        assert all(t.value == t.name for t in ActionType)

    @pytest.mark.parametrize("action_type", list(ActionType))
    def test_str_and_hash(self, action_type: ActionType) -> None:
        """reference §1.5: str() is "ActionType.X" (the wire form); hash is hash of the value."""
        assert str(action_type) == f"ActionType.{action_type.name}"
        assert f"{action_type}" == f"ActionType.{action_type.name}"
        assert hash(action_type) == hash(action_type.name)

    @pytest.mark.parametrize("action_type", list(ActionType))
    def test_equal_to_both_string_forms(self, action_type: ActionType) -> None:
        """reference §1.5: equal to "X" and "ActionType.X"."""
        assert action_type == action_type.name
        assert action_type == f"ActionType.{action_type.name}"
        assert not (action_type != action_type.name)  # noqa: SIM202 (tests __ne__)
        assert action_type != "Nonsense"

    def test_not_equal_to_other_members_or_types(self) -> None:
        """reference §1.5: members differ from each other and from non-strings."""
        assert ActionType.ScanNetwork != ActionType.FindData
        assert ActionType.ScanNetwork != "FindData"
        assert ActionType.ScanNetwork != 0

    @pytest.mark.parametrize("text", ["ScanNetwork", "ActionType.ScanNetwork"])
    def test_from_string(self, text: str) -> None:
        """reference §1.5: from_string strips an optional "ActionType." prefix."""
        assert ActionType.from_string(text) is ActionType.ScanNetwork

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "scannetwork",
            "Scan",
            "ActionType.",
            "AgentRole.ScanNetwork",
            "ActionType.ActionType.ScanNetwork",
            None,
            3,
        ],
    )
    def test_from_string_rejects(self, bad: object) -> None:
        """reference §1.5: ValueError("Invalid ActionType: ...") on failure."""
        with pytest.raises(ValueError, match="Invalid ActionType"):
            ActionType.from_string(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- §1.7 enums


class TestAgentRole:
    def test_values(self) -> None:
        """reference §1.7: a str-based enum with values Attacker, Defender, Benign."""
        assert [r.value for r in AgentRole] == ["Attacker", "Defender", "Benign"]
        assert isinstance(AgentRole.Attacker, str)

    def test_str_format_and_repr(self) -> None:
        """reference §1.7: str() and f-string give "AgentRole.Attacker"; repr() gives "Attacker"."""
        assert str(AgentRole.Attacker) == "AgentRole.Attacker"
        assert f"{AgentRole.Attacker}" == "AgentRole.Attacker"
        assert repr(AgentRole.Attacker) == "Attacker"

    @pytest.mark.parametrize(
        "text", ["Attacker", "attacker", "ATTACKER", "AgentRole.Attacker", "agentrole.attacker"]
    )
    def test_case_insensitive_equality(self, text: str) -> None:
        """reference §1.7: equality with strings ignores case and an "agentrole." prefix."""
        assert AgentRole.Attacker == text
        assert text == AgentRole.Attacker
        assert not (AgentRole.Attacker != text)  # noqa: SIM202 (tests __ne__)

    def test_inequality(self) -> None:
        """reference §1.7: different roles and other strings are unequal."""
        assert AgentRole.Attacker != AgentRole.Defender
        assert AgentRole.Attacker != "Defender"
        assert AgentRole.Attacker != "Attackers"
        assert AgentRole.Attacker != 1

    def test_hash_is_hash_of_value(self) -> None:
        """reference §1.7: the hash is the hash of the value."""
        assert hash(AgentRole.Defender) == hash("Defender")

    @pytest.mark.parametrize(
        ("text", "role"),
        [
            ("Attacker", AgentRole.Attacker),
            ("defender", AgentRole.Defender),
            ("BENIGN", AgentRole.Benign),
            ("AgentRole.Attacker", AgentRole.Attacker),
            ("some.prefix.defender", AgentRole.Defender),
        ],
    )
    def test_from_string(self, text: str, role: AgentRole) -> None:
        """reference §1.7: from_string keeps the text after the last dot, any case."""
        assert AgentRole.from_string(text) is role

    @pytest.mark.parametrize("bad", ["", "king", "Attacker.", None])
    def test_from_string_rejects(self, bad: object) -> None:
        """reference §1.7: unknown roles raise ValueError."""
        with pytest.raises(ValueError):
            AgentRole.from_string(bad)  # type: ignore[arg-type]

    def test_usable_as_dict_key(self) -> None:
        """reference §11 (test_enums): usable as a dict key, found by its value too."""
        table = {AgentRole.Attacker: 1, AgentRole.Defender: 2}
        assert table[AgentRole.Attacker] == 1
        assert table["Defender"] == 2
        assert {"Attacker": 3}[AgentRole.Attacker] == 3

    def test_json_serialises_as_value(self) -> None:
        """reference §1.7: it JSON-serialises as its value."""
        assert json.dumps(AgentRole.Attacker) == '"Attacker"'
        assert json.dumps({"role": AgentRole.Benign}) == '{"role": "Benign"}'
        assert json.dumps({AgentRole.Defender: 1}) == '{"Defender": 1}'


class TestAgentStatus:
    def test_values(self) -> None:
        """reference §1.7: the six AgentStatus values."""
        assert [s.value for s in AgentStatus] == [
            "Playing",
            "PlayingWithTimeout",
            "TimeoutReached",
            "ResetRequested",
            "Success",
            "Fail",
        ]

    @pytest.mark.parametrize("status", list(AgentStatus))
    def test_str_equality_hash_from_string(self, status: AgentStatus) -> None:
        """reference §1.7: str() "AgentStatus.X" (wire form of end_reason); equal to "X"
        and "AgentStatus.X"; from_string accepts both; hashed by value."""
        assert str(status) == f"AgentStatus.{status.value}"
        assert f"{status}" == f"AgentStatus.{status.value}"
        assert status == status.value
        assert status == f"AgentStatus.{status.value}"
        assert AgentStatus.from_string(status.value) is status
        assert AgentStatus.from_string(str(status)) is status
        assert hash(status) == hash(status.value)

    def test_inequality_and_bad_from_string(self) -> None:
        """reference §1.7: other statuses and strings differ; from_string rejects them."""
        assert AgentStatus.Success != AgentStatus.Fail
        assert AgentStatus.Success != "Fail"
        assert AgentStatus.Success != "success"  # case matters for AgentStatus
        with pytest.raises(ValueError):
            AgentStatus.from_string("Winning")
        with pytest.raises(ValueError):
            AgentStatus.from_string("")

    def test_terminal(self) -> None:
        """reference §2.2: Success, Fail and TimeoutReached end an episode."""
        assert {s for s in AgentStatus if s.is_terminal} == {
            AgentStatus.Success,
            AgentStatus.Fail,
            AgentStatus.TimeoutReached,
        }


class TestGameStatus:
    def test_values(self) -> None:
        """reference §1.7: OK=200, CREATED=201, RESET_DONE=202, BAD_REQUEST=400, FORBIDDEN=403."""
        assert {s.name: s.value for s in GameStatus} == {
            "OK": 200,
            "CREATED": 201,
            "RESET_DONE": 202,
            "BAD_REQUEST": 400,
            "FORBIDDEN": 403,
        }

    @pytest.mark.parametrize("status", list(GameStatus))
    def test_str_repr_and_from_string(self, status: GameStatus) -> None:
        """reference §1.7: str() and repr() are "GameStatus.X" (the wire form); round-trip."""
        assert str(status) == f"GameStatus.{status.name}"
        assert repr(status) == f"GameStatus.{status.name}"
        assert GameStatus.from_string(str(status)) is status

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "OK",
            "ok",
            "GameStatus.ok",
            "GameStatus.",
            "200",
            "GameStatus.NOT_FOUND",
            "AgentStatus.OK",
            None,
            200,
        ],
    )
    def test_from_string_accepts_only_the_five(self, bad: object) -> None:
        """reference §1.7: from_string accepts only the five strings; ValueError for anything
        else, including ""."""
        with pytest.raises(ValueError):
            GameStatus.from_string(bad)  # type: ignore[arg-type]
