"""A world's RELEASE, the STATUS reply and the free-seat rule (PROTOCOL.md §3.1, §3.4, §3.5).

The placement rules are driven on a Placement directly (time passed in); the RELEASE path
through a real Broker running in a thread of the test process, a raw DEALER as the world
and another as the agent (the helpers of tests/test_broker_faults.py), bounded waits.

Covered: RELEASE frees a world's own seats (named as strings or bytes) and closes its own
games only, skips entries of the wrong type, and is dropped whole when it is not one map
frame; STATUS reports every documented field exactly; a role a task allows but has no
seat for finds no free seat in an existing game."""

from __future__ import annotations

from typing import Any

import pytest

from broker import Broker
from broker.placement import Placement, PlacementError, TaskInfo, WorldRecord
from protocol import PROTOCOL_FRAME, Command, ErrorCode, GameStatus, pack, seq_bytes

from .fake_broker import context
from .test_broker_faults import Agent, World, join_and_answer, pair, running, wait_for

__all__ = ["context", "pair", "running"]  # fixtures, imported for pytest

STEP, STATUS, RELEASE = Command.STEP.frame, Command.STATUS.frame, Command.RELEASE.frame
DUEL = TaskInfo("duel", {"Attacker": 1, "Defender": 1}, frozenset({"Attacker", "Defender"}))
SOLO = TaskInfo("solo", {"Attacker": 1}, frozenset({"Attacker"}))
WATCHED = TaskInfo("watched", {"Attacker": 1}, frozenset({"Attacker", "Benign"}))
Pair = tuple[Broker, World, Agent]
#: seconds: the bound of a wait for what the broker sends at once (a mutant that drops it fails fast)
SHORT = 3.0


def world(name: str, *tasks: TaskInfo, capacity: int = 10, at: float = 0.0) -> WorldRecord:
    return WorldRecord(name.encode(), name, capacity, {t.name: t for t in tasks}, 1.0, expiry=99.0,
                       registered_at=at)


# ---------------------------------------------------------------------- RELEASE, on a Placement
def test_a_release_frees_the_worlds_own_seats_and_skips_the_rest() -> None:
    """PROTOCOL.md §3.4: RELEASE {"seats": [...]} names seats that left (strings or bytes);
    a world cannot free another world's seats; unknown or ill-typed entries are skipped."""
    placement = Placement()
    w1, w2 = world("w1", SOLO), world("w2", SOLO, at=1.0)
    placement.add_world(w1)
    text = placement.place_join(b"c1", "solo", "Attacker", "a")
    raw = placement.place_join(b"c2", "solo", "Attacker", "b")
    placement.add_world(w2)
    kept = placement.place_join(b"c3", "solo", "Attacker", "c")          # the less loaded world
    assert (text.world, raw.world, kept.world) == (b"w1", b"w1", b"w2")
    placement.release_from(w1, {"seats": [text.seat.decode(), raw.seat, kept.seat, "ghost", 7, [1], {"x": 1}]})
    assert list(placement.seats) == [kept.seat], "w1's two seats freed, w2's kept"
    assert (placement.games["a"].free("Attacker"), placement.games["b"].free("Attacker")) == (1, 1)
    assert placement.games["c"].free("Attacker") == 0
    placement.release_from(w1, {"seats": [text.seat]})     # already gone: nothing happens
    assert placement.games["a"].taken == {"Attacker": 0}


def test_a_release_closes_the_worlds_own_games_only() -> None:
    """PROTOCOL.md §3.4: RELEASE {"closed": [...]} closes games of the sending world, with
    their seats; one message may free seats and close games."""
    placement = Placement()
    w1, w2 = world("w1", SOLO), world("w2", SOLO, at=1.0)
    placement.add_world(w1)
    mine = placement.place_join(b"c1", "solo", "Attacker", "a")
    leaving = placement.place_join(b"c2", "solo", "Attacker", "b")
    placement.add_world(w2)
    theirs = placement.place_join(b"c3", "solo", "Attacker", "c")        # the less loaded world
    placement.release_from(w1, {"seats": [leaving.seat], "closed": ["a", "c", 5, ["a"]]})
    assert sorted(placement.games) == ["b", "c"] and w1.games == {"b"} and w2.games == {"c"}
    assert list(placement.seats) == [theirs.seat], "the closed game's seat and the released one are gone"
    assert mine.seat not in placement.seats
    placement.close_game("a")                              # closing it again is harmless
    assert sorted(placement.games) == ["b", "c"]


@pytest.mark.parametrize("body", [{"seats": 3, "closed": 5}, {"seats": "ab", "closed": "ab"}, {}])
def test_a_release_with_lists_of_the_wrong_type_changes_nothing(body: dict[str, Any]) -> None:
    """PROTOCOL.md §3.4: seats and closed are lists; anything else is skipped, not iterated."""
    placement = Placement()
    w1 = world("w1", SOLO)
    placement.add_world(w1)
    seat = placement.place_join(b"c1", "solo", "Attacker", "a")
    placement.release_from(w1, body)
    assert list(placement.seats) == [seat.seat] and list(placement.games) == ["a"]


def test_a_release_that_is_not_a_map_is_refused() -> None:
    placement = Placement()
    w1 = world("w1", SOLO)
    placement.add_world(w1)
    with pytest.raises(ValueError, match=r"^RELEASE must be a map, not list$"):
        placement.release_from(w1, ["seat"])


# ---------------------------------------------------------------------- RELEASE, through the broker
def status(agent: Agent, seq: int) -> dict[str, Any]:
    agent.send(PROTOCOL_FRAME, STATUS, b"", seq_bytes(seq), pack(None))
    frames, reply = agent.reply(SHORT)
    assert frames[1:4] == [STATUS, b"", seq_bytes(seq)] and reply.status is GameStatus.OK
    return reply.message


def test_a_worlds_release_frees_its_seats_in_the_broker(pair: Pair) -> None:
    """PROTOCOL.md §1/§3.4: [ARENA1][RELEASE][body] frees the seats; a RELEASE of another
    frame count is dropped whole; the released seat is then unknown to its agent."""
    _, world_peer, agent = pair
    kept, freed = join_and_answer(world_peer, agent, 1), join_and_answer(world_peer, agent, 2)
    world_peer.send(PROTOCOL_FRAME, RELEASE, pack({"seats": [kept.decode()]}), b"extra")
    world_peer.send(PROTOCOL_FRAME, RELEASE)
    world_peer.send(PROTOCOL_FRAME, RELEASE, pack({"seats": [freed.decode()]}))
    seq = iter(range(10, 100))
    wait_for(lambda: status(agent, next(seq))["seats"] == 1, "the RELEASE applied", SHORT)
    agent.request(STEP, freed, 3, [0])
    frames, reply = agent.reply(SHORT)
    assert frames[1:4] == [STEP, freed, seq_bytes(3)] and reply.code is ErrorCode.UNKNOWN_SEAT
    agent.request(STEP, kept, 3, [0])
    assert world_peer.next_request(SHORT)[4:6] == [kept, seq_bytes(3)], "the dropped RELEASEs freed nothing"


# ---------------------------------------------------------------------- STATUS and free seats
def test_status_reports_every_documented_field() -> None:
    """PROTOCOL.md §3.5: worlds (name, tasks, capacity, games, seats, inflight, alive_for to
    the millisecond), tasks, games (seats taken and size per role, their world) and seats."""
    placement = Placement()
    w1, w2 = world("w1", DUEL, SOLO, capacity=4, at=1.0), world("w2", SOLO, capacity=2, at=2.0)
    placement.add_world(w1)
    placement.add_world(w2)
    placement.place_join(b"c1", "duel", "Attacker", "d")
    placement.place_join(b"c2", "duel", "Defender", "d")
    placement.place_join(b"c3", "solo", "Attacker", "s")
    assert placement.games["s"].world == b"w2"
    w2.inflight[(b"x", b"\x01")] = (b"c3", STEP)
    assert placement.status(now=3.34567) == {
        "worlds": [{"world": "w1", "tasks": ["duel", "solo"], "capacity": 4, "games": 1, "seats": 2, "inflight": 0,
                    "alive_for": 2.346},
                   {"world": "w2", "tasks": ["solo"], "capacity": 2, "games": 1, "seats": 1, "inflight": 1,
                    "alive_for": 1.346}],
        "tasks": ["duel", "solo"],
        "games": [{"game": "d", "task": "duel", "world": "w1", "seats": {"Attacker": 1, "Defender": 1},
                   "size": {"Attacker": 1, "Defender": 1}},
                  {"game": "s", "task": "solo", "world": "w2", "seats": {"Attacker": 1}, "size": {"Attacker": 1}}],
        "seats": 3,
    }


def test_a_role_allowed_without_seats_finds_no_free_seat_in_a_game() -> None:
    """PROTOCOL.md §3.1: a task may allow a role it has no seats for (world/task_reader.py);
    a named game that exists has no free seat of that role: GAME_FULL, said in words."""
    placement = Placement()
    placement.add_world(world("w1", WATCHED))
    placement.place_join(b"c1", "watched", "Attacker", "g")
    with pytest.raises(PlacementError) as full:
        placement.place_join(b"c2", "watched", "Benign", "g")
    assert full.value.code is ErrorCode.GAME_FULL
    assert str(full.value) == full.value.message == "Game 'g' has no free Benign seat."
    assert placement.games["g"].taken == {"Attacker": 1}

