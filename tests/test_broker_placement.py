"""The broker's placement rule (PROTOCOL.md §3.1, DESIGN §2), without sockets."""

from __future__ import annotations

import pytest

from broker.placement import Placement, PlacementError, TaskInfo, WorldRecord, hosted_games
from protocol import ErrorCode

DUEL = TaskInfo("duel", {"Attacker": 1, "Defender": 1}, frozenset({"Attacker", "Defender"}))
SOLO = TaskInfo("solo", {"Attacker": 1}, frozenset({"Attacker"}))


def world(name: str, *tasks: TaskInfo, capacity: int = 10, at: float = 0.0) -> WorldRecord:
    return WorldRecord(name.encode(), name, capacity, {t.name: t for t in tasks}, 1.0, expiry=99.0,
                       registered_at=at)


def test_named_games_are_created_on_the_least_loaded_world_and_filled() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL, at=0.0))
    placement.add_world(world("w2", DUEL, at=1.0))
    red = placement.place_join(b"c1", "duel", "Attacker", "g")
    blue = placement.place_join(b"c2", "duel", "Defender", "g")
    assert red.world == blue.world == b"w1" and red.game == blue.game == "g"
    other = placement.place_join(b"c3", "duel", "Attacker", "h")
    assert other.world == b"w2", "the new game goes to the less loaded world"
    with pytest.raises(PlacementError) as full:
        placement.place_join(b"c4", "duel", "Attacker", "g")
    assert full.value.code is ErrorCode.GAME_FULL


def test_unnamed_joins_fill_waiting_games_before_making_new_ones() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL))
    first = placement.place_join(b"c1", "duel", "Attacker", None)
    second = placement.place_join(b"c2", "duel", "Defender", None)
    assert first.game == second.game
    third = placement.place_join(b"c3", "duel", "Attacker", None)
    assert third.game != first.game
    assert len({first.seat, second.seat, third.seat}) == 3


def test_unknown_task_disallowed_role_and_no_world_are_clear_errors() -> None:
    placement = Placement()
    with pytest.raises(PlacementError) as none:
        placement.place_join(b"c", None, "Attacker", None)
    assert none.value.code is ErrorCode.NO_WORLD
    placement.add_world(world("w1", DUEL, SOLO))
    with pytest.raises(PlacementError) as unknown:
        placement.place_join(b"c", "chess", "Attacker", None)
    assert unknown.value.code is ErrorCode.UNKNOWN_TASK and "duel, solo" in unknown.value.message
    with pytest.raises(PlacementError) as role:
        placement.place_join(b"c", "solo", "Defender", None)
    assert role.value.code is ErrorCode.ROLE_NOT_ALLOWED
    with pytest.raises(PlacementError) as ambiguous:
        placement.place_join(b"c", None, "Attacker", None)
    assert ambiguous.value.code is ErrorCode.UNKNOWN_TASK, "two tasks and none named default"
    placement.place_join(b"c", "duel", "Attacker", "g")
    with pytest.raises(PlacementError) as mismatch:
        placement.place_join(b"c", "solo", "Attacker", "g")
    assert mismatch.value.code is ErrorCode.GAME_TASK_MISMATCH


def test_capacity_and_release() -> None:
    placement = Placement()
    placement.add_world(world("w1", SOLO, capacity=1))
    seat = placement.place_join(b"c", "solo", "Attacker", None)
    with pytest.raises(PlacementError) as full:
        placement.place_join(b"c", "solo", "Attacker", None)
    assert full.value.code is ErrorCode.NO_WORLD
    placement.release(seat.seat)
    again = placement.place_join(b"c", "solo", "Attacker", None)
    assert again.game == seat.game, "a freed seat is filled again"
    placement.close_game(seat.game)
    assert placement.seats == {} and placement.games == {}
    assert placement.place_join(b"c", "solo", "Attacker", None).game != seat.game


def test_worlds_adopt_their_games_and_are_forgotten_whole() -> None:
    placement = Placement()
    games = hosted_games([{"game": "g", "task": "duel", "seats": [["s1", "Attacker", b"c1", b"\x07"]]}])
    placement.add_world(world("w1", DUEL), games)
    assert placement.seats[b"s1"].game == "g" and placement.games["g"].free("Attacker") == 0
    assert placement.seats[b"s1"].client == b"c1", "the adopted seat keeps its owner"
    assert placement.joins == {(b"c1", b"\x07"): b"s1"}, "a resent JOIN will find its seat"
    status = placement.status(now=5.0)
    assert status["seats"] == 1 and status["games"][0]["world"] == "w1"
    removed = placement.remove_world(b"w1", "it missed its heartbeats")
    assert removed is not None and placement.seats == {} and placement.games == {} and placement.joins == {}
    assert placement.lost == {b"s1": "it missed its heartbeats"}, "its agents will hear GAME_LOST"


def test_a_seat_forgets_its_join_at_its_first_other_request() -> None:
    placement = Placement()
    placement.add_world(world("w1", SOLO))
    seat = placement.place_join(b"c", "solo", "Attacker", None, b"\x01")
    assert placement.joins == {(b"c", b"\x01"): seat.seat}
    placement.joined(seat)
    assert placement.joins == {} and seat.join_seq == b""
    other = placement.place_join(b"c", "solo", "Attacker", None, b"\x02")
    placement.release(other.seat)
    assert placement.joins == {}


@pytest.mark.parametrize("games", [
    {"game": "g"}, [{"game": "g", "task": 3}], [{"game": "g", "task": "t", "seats": [["s", "Attacker", "c", b""]]}],
    [{"game": "g", "task": "t", "seats": [["s"]]}], [{"game": "g", "task": "t", "seats": "s"}],
])
def test_a_broken_ready_games_list_is_refused_whole(games: object) -> None:
    with pytest.raises(ValueError, match=r"ready\.games"):
        hosted_games(games)
