"""world.seats, rule by rule: the error replies' message shapes and texts, and the last
history record of an episode (its final status, reward and breakdown) for a seat whose
step ended it and for a bystander (reference netsecgame.md §2.2, §3.4; PROTOCOL.md §5;
HistoryRecord's docstring: the rewards add up to the episode's return)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from protocol import AgentRole, AgentStatus, ErrorCode, GameStatus
from world import GameSession, parse_task

from .conftest import TASKS, WINNING_ATTACK, scan

DEFAULT = yaml.safe_load((TASKS / "default.yaml").read_text())


def _session(agents: list[dict[str, Any]], **arena: Any) -> GameSession:
    document = copy.deepcopy(DEFAULT)
    document["agents"] = agents
    document["arena"].update(arena)
    return GameSession(parse_task(document, "seat-rules.yaml", TASKS), seed=1)


def _proxy(ref: str, team: str, components: list[str]) -> dict[str, Any]:
    return {"ref": ref, "team": team, "type": "proxy",
            "reward_function": {"reward_components": [{"type": kind} for kind in components]}}


def test_error_replies_carry_their_text_under_message() -> None:
    """PROTOCOL.md §5: BAD_REQUEST replies carry ``{"message": reason}`` and a code."""
    session = _session([], seats={"Attacker": 1})
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    [full] = session.join("b", "B", AgentRole.Attacker, 0.0, 1)
    assert (full.status, full.code) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_FULL)
    assert full.message == {"message": "Game game has no free Attacker seat"}
    [stranger] = session.step("x", scan("192.168.2.2", "192.168.1.0/24"), 0.0, 2)
    assert stranger.message == {
        "message": "This seat has not joined the game (or has left it); send JoinGame first."}


def test_a_second_request_while_one_is_held_is_busy() -> None:
    """One request at a time per seat: the reply names the held request's kind."""
    session = _session([], start={"Attacker": 1, "Defender": 1})
    assert session.join("a", "A", AgentRole.Attacker, 0.0, 0) == []
    [busy] = session.step("a", scan("192.168.2.2", "192.168.1.0/24"), 0.0, 1)
    assert busy.code is ErrorCode.BUSY
    assert busy.message == {"message": "A join request of this seat is still waiting for its reply."}


def test_the_last_record_of_an_ended_step_holds_the_final_breakdown() -> None:
    """The seat whose step ended the episode: its last record has the final status, the
    step's total reward and the final breakdown, as its reply (reference §3.4: 99)."""
    session = _session([_proxy("r", "RED", ["netsecgame", "step"])])
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    for number, action in enumerate(WINNING_ATTACK):
        [last] = session.step("red", action, 0.0, 1 + number)
    record = session.history("red")[-1]
    assert record.status is AgentStatus.Success and record.reward == last.observation.reward == 99 - 1
    assert record.breakdown == last.observation.info["reward_breakdown"] == {"netsecgame": 99, "step": -1}


def test_a_bystanders_last_record_adds_the_final_parts_to_its_last_step() -> None:
    """A defender whose episode ended with the attacker's: its last step's record keeps
    that step's reward and breakdown and adds the end-of-episode parts to them (fail -10,
    reference §3.4), so the records add up to what the agent got."""
    session = _session([_proxy("b", "BLUE", ["netsecgame", "step", "fail"])])
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 1)
    [step] = session.step("blue", scan("192.168.1.1", "192.168.1.0/24"), 0.0, 2)
    assert step.observation.info["reward_breakdown"] == {"netsecgame": -1, "step": -1, "fail": 0}
    for number, action in enumerate(WINNING_ATTACK):
        session.step("red", action, 0.0, 3 + number)
    [told] = session.step("blue", scan("192.168.1.1", "192.168.1.0/24"), 0.0, 10)
    assert told.observation.info["reward_breakdown"] == {"netsecgame": -10, "step": 0, "fail": -10}
    [record] = session.history("blue")
    assert record.status is AgentStatus.Fail
    assert record.reward == -2 - 20, "its step (-1 twice) and the told reward (-10 twice)"
    assert record.breakdown == {"netsecgame": -11, "step": -1, "fail": -10}
