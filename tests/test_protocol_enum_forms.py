"""Enumerations (protocol/enums.py): their wire strings under format specs, the one-line errors of
``from_string``, and ``AgentStatus.to_string``.

Reference netsecgame.md §1.5, §1.7: the string forms are NetSecGame's wire forms
(``ActionType.X``, ``AgentRole.X``, ``AgentStatus.X``, ``GameStatus.X``); they are written out
so that f-strings with a width (status tables, logs) show the same text as ``str()``.
"""

from __future__ import annotations

import enum

import pytest

from protocol import ActionType, AgentRole, AgentStatus, GameStatus


@pytest.mark.parametrize("member", [ActionType.ExploitService, AgentRole.Benign, AgentStatus.TimeoutReached,
                                    GameStatus.BAD_REQUEST, GameStatus.OK])
def test_format_is_the_wire_string_with_the_spec_applied(member: enum.Enum) -> None:
    """enums.*.__format__: ``f"{member}"`` is ``str(member)``, and a format spec (width,
    alignment) applies to that string, as for any str."""
    text = str(member)
    assert f"{member}" == format(member) == text
    assert f"{member:>40}" == text.rjust(40)
    assert f"{member:-^41}" == f"{text:-^41}"
    assert f"{member:.8}" == text[:8]


def test_format_of_each_kind() -> None:
    """enums.*.__format__: the four wire forms, padded in a status table's columns."""
    assert f"{ActionType.ScanNetwork:<25}|" == "ActionType.ScanNetwork   |"
    assert f"{AgentRole.Attacker:<20}|" == "AgentRole.Attacker  |"
    assert f"{AgentStatus.Success:>22}" == "   AgentStatus.Success"
    assert f"{GameStatus.CREATED:>20}" == "  GameStatus.CREATED"
    assert f"{GameStatus.FORBIDDEN}" == "GameStatus.FORBIDDEN"


def test_agent_status_to_string_is_the_wire_form() -> None:
    """enums.AgentStatus.to_string: the ``end_reason`` wire form, ``AgentStatus.X`` (§1.7)."""
    assert [status.to_string() for status in AgentStatus] == [
        "AgentStatus.Playing", "AgentStatus.PlayingWithTimeout", "AgentStatus.TimeoutReached",
        "AgentStatus.ResetRequested", "AgentStatus.Success", "AgentStatus.Fail"]


@pytest.mark.parametrize(("parse", "text", "message"), [
    (ActionType.from_string, "Scan", "Invalid ActionType: Scan"),
    (AgentRole.from_string, "king", "Invalid AgentRole: king"),
    (AgentRole.from_string, None, "Invalid AgentRole: None"),
    (AgentStatus.from_string, "Winning", "Invalid AgentStatus: Winning"),
    (AgentStatus.from_string, 3, "Invalid AgentStatus: 3"),
    (GameStatus.from_string, "GameStatus.NOT_FOUND", "Invalid GameStatus: 'GameStatus.NOT_FOUND'"),
    (GameStatus.from_string, 200, "Invalid GameStatus: 200"),
])
def test_from_string_names_the_bad_text(parse: object, text: object, message: str) -> None:
    """enums.*.from_string: ValueError whose text names the enumeration and what came."""
    with pytest.raises(ValueError) as caught:
        parse(text)  # type: ignore[operator]
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["a.b.Defender", "x.defender", "AgentRole.DEFENDER", "Defender"])
def test_agent_role_keeps_the_text_after_the_last_dot(text: str) -> None:
    """enums.AgentRole.from_string: any dotted prefix, any case (reference §1.7)."""
    assert AgentRole.from_string(text) is AgentRole.Defender
