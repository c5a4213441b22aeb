"""A NetSecGame attacker sees the same observations, step for step: NetSecGame 0.2.0's
recorded messages replayed against a GameSession in process (reference
netsecgame.md §2, §3; transcripts in tests/fixtures/transcripts)."""

from __future__ import annotations

import json

import pytest

from protocol import Action, GameStatus, ProtocolError
from world import GameSession, load_task

from .conftest import TASKS
from .transcripts import load_transcript, normalize_reply


def replay(name: str) -> list[tuple[int, dict, dict]]:
    """(index, ours, theirs) for every recorded reply, both normalised."""
    session = GameSession(load_task(TASKS / "scenario1_small_attacker.yaml"), seed=42)
    compared, replies, index = [], [], 0
    for direction, raw in load_transcript(name):
        if direction == "send":
            try:
                replies = session.handle("agent", Action.from_json(raw), now=float(index), request=index)
            except ProtocolError as error:
                replies = [session.reject("agent", error, index)]
            assert [r.request for r in replies] == [index], "each request gets exactly its own reply"
            index += 1
        else:
            ours = normalize_reply(replies[0].as_netsecgame_dict())
            if isinstance(ours.get("message"), dict):
                ours["message"].pop("reason", None)  # our extra detail on malformed requests
            compared.append((index - 1, ours, normalize_reply(json.loads(raw))))
    return compared


def test_winning_episode_matches_netsecgame_exactly() -> None:
    """Join, the five-step winning attack (reward 99 = step -1 + success 100), a seeded
    reset returning the trajectory, then QuitGame (answered here; upstream never
    replies to it, so the transcript records nothing)."""
    compared = replay("transcript_scenario1_small.jsonl")
    assert len(compared) == 7
    for index, ours, theirs in compared:
        assert ours == theirs, f"reply to request {index} differs"


def test_edge_cases_match_except_the_seedless_reset() -> None:
    """Duplicate join, malformed JSON, unknown action, impossible actions, the step
    limit (reward -11 = step -1 + fail -10), FORBIDDEN after the end, a seeded reset.
    The seedless reset that stops NetSecGame 0.2.0 is valid here (DESIGN §3,
    reference §0.1): RESET_DONE instead of "Stopping the game"."""
    compared = replay("transcript_scenario1_small_edgecases.jsonl")
    *same, (_, last_ours, last_theirs) = compared
    assert len(same) == 56
    for index, ours, theirs in same:
        assert ours == theirs, f"reply to request {index} differs"
    assert last_theirs["status"] == "GameStatus.BAD_REQUEST"
    assert last_ours["status"] == str(GameStatus.RESET_DONE)
    assert last_ours["observation"]["end"] is False


@pytest.mark.parametrize("name", ["transcript_scenario1_small.jsonl",
                                  "transcript_scenario1_small_edgecases.jsonl"])
def test_transcripts_are_read_whole(name: str) -> None:
    pairs = load_transcript(name)
    sends = sum(1 for direction, _ in pairs if direction == "send")
    assert sends >= 8 and all(direction in ("send", "recv") for direction, _ in pairs)
