"""The broker's JOIN checks and placement rule in detail (PROTOCOL.md §3.1, §5, §7), without sockets.

The error texts here are what an agent reads: a malformed JOIN is answered MALFORMED with
``str(ProtocolError)`` and a refused placement with ``PlacementError.message``."""

from __future__ import annotations

import pytest

import broker.placement as placement_module
from broker.placement import (
    Placement,
    PlacementError,
    SeatRecord,
    TaskInfo,
    WorldRecord,
    hosted_games,
    join_request,
    world_from_ready,
)
from protocol import ErrorCode, ProtocolError

DUEL = TaskInfo("duel", {"Attacker": 1, "Defender": 1}, frozenset({"Attacker", "Defender"}))
SOLO = TaskInfo("solo", {"Attacker": 1}, frozenset({"Attacker"}))
DEFAULT = TaskInfo("default", {"Attacker": 1}, frozenset({"Attacker"}))
TEXT = "a non-empty string of at most {} characters"


def world(name: str, *tasks: TaskInfo, capacity: int = 10, at: float = 0.0) -> WorldRecord:
    return WorldRecord(name.encode(), name, capacity, {t.name: t for t in tasks}, 1.0, expiry=99.0,
                       registered_at=at)


def join(**fields: object) -> dict[str, object]:
    return {"task": "solo", "role": "Attacker", "game": None, "name": "red", **fields}


def refused(body: object) -> str:
    with pytest.raises(ProtocolError) as error:
        join_request(body)
    return str(error.value)


# ------------------------------------------------------------------ JOIN bodies (§3.1)
def test_a_join_body_is_read_field_by_field() -> None:
    """task, role (normalised), game and name come back as sent; retry only when exactly true."""
    assert join_request(join()) == ("solo", "Attacker", None, "red", False)
    assert join_request(join(task=None, role="defender", game="g-1", retry=True)) == (
        None, "Defender", "g-1", "red", True)
    assert join_request({"role": "Attacker"}) == (None, "Attacker", None, "agent", False), "defaults"
    assert join_request(join(task="t" * 200, game="g" * 200, name="n" * 200, retry=1)) == (
        "t" * 200, "Attacker", "g" * 200, "n" * 200, False), "200 characters are allowed; retry is true only"


def test_a_join_that_is_not_a_map_is_refused_with_the_expected_shape() -> None:
    assert refused([1]) == "join: expected a map {task, role, game, name}, got list [1]"


@pytest.mark.parametrize(("fields", "message"), [
    ({"task": 5}, f"join.task: expected {TEXT.format(200)}, got int 5"),
    ({"task": ""}, f"join.task: expected {TEXT.format(200)}, got str ''"),
    ({"task": "t" * 201}, f"join.task: expected {TEXT.format(200)}, got str '{'t' * 56}..."),
    ({"role": None}, f"join.role: expected {TEXT.format(20)}, got NoneType None"),
    ({"role": 5}, f"join.role: expected {TEXT.format(20)}, got int 5"),
    ({"role": "A" * 21}, f"join.role: expected {TEXT.format(20)}, got str '{'A' * 21}'"),
    ({"role": "Spy"}, "join.role: expected Attacker, Defender or Benign, got str 'Spy'"),
    ({"game": 0}, f"join.game: expected {TEXT.format(200)}, got int 0"),
    ({"game": "g" * 201}, f"join.game: expected {TEXT.format(200)}, got str '{'g' * 56}..."),
    ({"name": None}, f"join.name: expected {TEXT.format(200)}, got NoneType None"),
    ({"name": 5}, f"join.name: expected {TEXT.format(200)}, got int 5"),
    ({"name": ""}, f"join.name: expected {TEXT.format(200)}, got str ''"),
    ({"name": "n" * 201}, f"join.name: expected {TEXT.format(200)}, got str '{'n' * 56}..."),
    ({"catalog": "yes"}, "join.catalog: expected true or false, got str 'yes'"),
])
def test_a_bad_join_field_is_named_with_what_was_expected_and_what_came(fields: dict[str, object],
                                                                          message: str) -> None:
    assert refused(join(**fields)) == message


# ------------------------------------------------------------------ tasks (§3.1)
def test_no_task_named_means_the_only_task_or_the_one_named_default() -> None:
    placement = Placement()
    with pytest.raises(PlacementError) as none:
        placement.resolve_task(None)
    assert none.value.code is ErrorCode.NO_WORLD
    assert none.value.message == "No world is registered with the broker yet."
    placement.add_world(world("w1", SOLO))
    assert placement.resolve_task(None) is SOLO
    placement.add_world(world("w2", DUEL))
    with pytest.raises(PlacementError) as ambiguous:
        placement.resolve_task(None)
    assert ambiguous.value.code is ErrorCode.UNKNOWN_TASK
    assert ambiguous.value.message == "Name a task: this broker serves duel, solo."
    placement.add_world(world("w3", DEFAULT))
    assert placement.resolve_task(None) is DEFAULT
    with pytest.raises(PlacementError) as unknown:
        placement.resolve_task("chess")
    assert unknown.value.message == "Unknown task 'chess': this broker serves default, duel, solo."


def test_refused_placements_say_why() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL, SOLO, capacity=2))
    with pytest.raises(PlacementError) as role:
        placement.place_join(b"c", "solo", "Defender", None)
    assert role.value.code is ErrorCode.ROLE_NOT_ALLOWED
    assert role.value.message == "Role Defender is not allowed in task solo (allowed: Attacker)."
    with pytest.raises(PlacementError) as duel_role:
        placement.place_join(b"c", "duel", "Benign", None)
    assert duel_role.value.message == "Role Benign is not allowed in task duel (allowed: Attacker, Defender)."
    placement.place_join(b"c", "duel", "Attacker", "g")
    with pytest.raises(PlacementError) as mismatch:
        placement.place_join(b"c", "solo", "Attacker", "g")
    assert mismatch.value.code is ErrorCode.GAME_TASK_MISMATCH
    assert mismatch.value.message == "Game 'g' plays task duel, not solo."
    with pytest.raises(PlacementError) as full:
        placement.place_join(b"c", "duel", "Attacker", "g")
    assert full.value.message == "Game 'g' has no free Attacker seat."
    placement.place_join(b"c", "solo", "Attacker", None)
    with pytest.raises(PlacementError) as room:
        placement.place_join(b"c", "solo", "Attacker", None)
    assert room.value.code is ErrorCode.NO_WORLD
    assert room.value.message == "No live world has room for a new solo game."


def test_unnamed_games_are_numbered_per_task() -> None:
    """§3.1: new unnamed games are ``<task>-1``, ``<task>-2``, ... per task, skipping names in use."""
    placement = Placement()
    placement.add_world(world("w1", DUEL, SOLO))
    placement.place_join(b"c", "solo", "Attacker", "solo-2")
    names = [placement.place_join(b"c", task, "Attacker", None).game for task in ("duel", "solo", "duel", "solo")]
    assert names == ["duel-1", "solo-1", "duel-2", "solo-3"]


def test_a_join_without_a_seq_leaves_nothing_for_a_resend_to_find() -> None:
    placement = Placement()
    placement.add_world(world("w1", SOLO))
    seat = placement.place_join(b"c", "solo", "Attacker", None)
    assert seat.join_seq == b"" and placement.joins == {}


def test_two_seats_for_one_join_are_both_forgotten_cleanly() -> None:
    """§7 broker restart: a retried JOIN placed anew after the recovery window, then the world of
    its first seat comes back listing that seat with the same JOIN seq. Both seats leave cleanly."""
    placement = Placement()
    placement.add_world(world("w2", SOLO))
    second = placement.place_join(b"c", "solo", "Attacker", None, b"\x01")
    first = hosted_games([{"game": "old", "task": "solo", "seats": [["s1", "Attacker", b"c", b"\x01"]]}])
    placement.add_world(world("w1", SOLO), first)
    assert placement.joins == {(b"c", b"\x01"): b"s1"}, "the listed seat is the one a resend finds"
    placement.release(second.seat)
    assert placement.remove_world(b"w1", "it disconnected") is not None
    assert placement.seats == {} and placement.joins == {} and placement.lost == {b"s1": "it disconnected"}


# ------------------------------------------------------------------ READY (§3.4)
READY_TASKS = {"duel": {"seats": {"Attacker": 1, "Defender": 2}, "allowed_roles": ["Attacker", "Defender"],
                        "hash": "abc"},
               "solo": {"seats": {"Attacker": 1}, "allowed_roles": ["Attacker"]}}


def test_a_ready_describes_the_world_and_its_tasks() -> None:
    body = {"world": "w-1", "capacity": 3, "heartbeat": 0.5, "tasks": READY_TASKS,
            "games": [{"game": "g", "task": "duel", "seats": [["s1", "Defender"]]}]}
    world, games = world_from_ready(b"id", body, 100.0, 1.0, 3)
    assert (world.identity, world.name, world.capacity, world.heartbeat) == (b"id", "w-1", 3, 0.5)
    assert (world.expiry, world.registered_at, world.games, world.inflight) == (101.5, 100.0, set(), {})
    assert world.tasks == {
        "duel": TaskInfo("duel", {"Attacker": 1, "Defender": 2}, frozenset({"Attacker", "Defender"}), "abc"),
        "solo": TaskInfo("solo", {"Attacker": 1}, frozenset({"Attacker"}), ""),
    }
    assert [(name, task, [(s.seat, s.role, s.client, s.join_seq) for s in seats]) for name, task, seats in games] \
        == [("g", "duel", [(b"s1", "Defender", b"", b"")])]


def test_a_ready_may_leave_out_heartbeat_capacity_and_games() -> None:
    """The broker's heartbeat; a capacity of 1000 games; no games. 60 s is the longest heartbeat."""
    world, games = world_from_ready(b"id", {"world": "w", "tasks": {}}, 10.0, 2.0, 4)
    assert (world.heartbeat, world.expiry, world.capacity, games) == (2.0, 18.0, 1000, [])
    world, _ = world_from_ready(b"id", {"world": "w", "tasks": {}, "heartbeat": 60, "capacity": 1}, 0.0, 1.0, 3)
    assert (world.heartbeat, world.capacity) == (60.0, 1)


@pytest.mark.parametrize(("body", "message"), [
    ([1], "ready: ValueError: ready must be a map, not list"),
    ({"world": "w"}, "ready: KeyError: 'tasks'"),
    ({"tasks": {}}, "ready: KeyError: 'world'"),
    ({"world": "w", "tasks": {"t": {"seats": {"A": "x"}, "allowed_roles": []}}},
     "ready: ValueError: invalid literal for int() with base 10: 'x'"),
    ({"world": "w", "tasks": {"t": {"allowed_roles": []}}}, "ready: KeyError: 'seats'"),
    ({"world": "w", "tasks": {"t": {"seats": {}}}}, "ready: KeyError: 'allowed_roles'"),
    ({"world": "w", "tasks": 5}, "ready: AttributeError: 'int' object has no attribute 'items'"),
    ({"world": "w", "tasks": {}, "heartbeat": "x"}, "ready: ValueError: could not convert string to float: 'x'"),
    ({"world": "w", "tasks": {}, "capacity": None},
     "ready: TypeError: int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"),
    ({"world": "w", "tasks": {}, "heartbeat": 0}, "ready.heartbeat 0.0 s is out of range"),
    ({"world": "w", "tasks": {}, "heartbeat": 60.5}, "ready.heartbeat 60.5 s is out of range"),
    ({"world": "", "tasks": {}}, "ready.world must be a non-empty string and ready.capacity positive"),
    ({"world": 7, "tasks": {}}, "ready.world must be a non-empty string and ready.capacity positive"),
    ({"world": "w", "tasks": {}, "capacity": 0}, "ready.world must be a non-empty string and ready.capacity positive"),
    ({"world": "w", "tasks": {}, "games": {}}, "ready.games must be a list, not dict"),
])
def test_a_broken_ready_is_refused_saying_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        world_from_ready(b"id", body, 0.0, 1.0, 3)
    assert str(error.value) == message


def test_ready_games_carry_their_seats_owners_and_pending_joins() -> None:
    games = hosted_games([{"game": "g", "task": "t", "seats": [["s1", "Attacker", b"c1", b"\x07"],
                                                              [b"s2", "Defender"]]},
                          {"game": "h", "task": "u"}])
    assert [(name, task, [(s.seat, s.client, s.world, s.game, s.role, s.join_seq) for s in seats])
            for name, task, seats in games] == [
        ("g", "t", [(b"s1", b"c1", b"", "g", "Attacker", b"\x07"), (b"s2", b"", b"", "g", "Defender", b"")]),
        ("h", "u", []),
    ]


@pytest.mark.parametrize(("games", "message"), [
    ({"game": "g"}, "ready.games must be a list, not dict"),
    (["g"], "ready.games entries must be maps with string game and task"),
    ([{"task": "t"}], "ready.games entries must be maps with string game and task"),
    ([{"game": "g", "task": 3}], "ready.games entries must be maps with string game and task"),
    ([{"game": "g", "task": "t", "seats": ["s"]}],
     "ready.games seats must be [seat, role] or [seat, role, client, join_seq]"),
    ([{"game": "g", "task": "t", "seats": [["s", "Attacker", b"c"]]}],
     "ready.games seats must be [seat, role] or [seat, role, client, join_seq]"),
    ([{"game": "g", "task": "t", "seats": [["s", "Attacker", "c", b""]]}],
     "ready.games seats: seat, client and join_seq must be bytes, role a string"),
    ([{"game": "g", "task": "t", "seats": [["s", "Attacker", b"c", ""]]}],
     "ready.games seats: seat, client and join_seq must be bytes, role a string"),
    ([{"game": "g", "task": "t", "seats": [[1, "Attacker"]]}],
     "ready.games seats: seat, client and join_seq must be bytes, role a string"),
    ([{"game": "g", "task": "t", "seats": [["s", 1]]}],
     "ready.games seats: seat, client and join_seq must be bytes, role a string"),
])
def test_a_broken_games_list_is_refused_saying_what_is_wrong(games: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        hosted_games(games)
    assert str(error.value) == message


# ------------------------------------------------------------------ adopting games (§3.4, §7)
def seat(name: str, role: str = "Attacker", client: bytes = b"c", join_seq: bytes = b"") -> SeatRecord:
    return SeatRecord(name.encode(), client, b"", "", role, join_seq)


def test_a_ready_conflicts_with_live_games_and_seats_of_other_worlds() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL), [("g", "duel", [seat("s1")])])
    stranger, again = world("w2", DUEL), WorldRecord(b"new-connection", "w1", 10, {"duel": DUEL}, 1.0, 9.0, 0.0)
    assert placement.conflict(stranger, [("g", "duel", [])]) == "game g is hosted by world w1"
    assert placement.conflict(stranger, [("h", "duel", [seat("s1")])]) == "seat b's1' plays in game g"
    assert placement.conflict(stranger, [("h", "duel", [seat("s" * 50)])]) is None
    assert placement.conflict(stranger, [("h", "solo", [])]) == \
        "game h plays task solo, which the world does not serve"
    assert placement.conflict(again, [("g", "duel", [seat("s1")])]) is None, "the same world takes its games back"
    assert placement.conflict(again, [("h", "duel", [seat("s1")])]) == "seat b's1' plays in game g"
    assert placement.conflict(stranger, [("g", "duel", [seat("s1")])]) == "game g is hosted by world w1"
    long = "x" * 50
    placement.add_world(world("w3", DUEL), [("k", "duel", [seat(long)])])
    assert placement.conflict(stranger, [("h", "duel", [seat(long)])]) == f"seat {(b'x' * 40)!r} plays in game k"


def test_adopted_games_are_named_counted_and_found_by_resent_joins() -> None:
    placement = Placement()
    placement.lost[b"s1"] = "it missed its heartbeats"
    w1 = world("w1", DUEL)
    placement.add_world(w1, [("g", "duel", [seat("s1", "Defender", b"c1", b"\x05"), seat("s2", "Defender", b"c2"),
                                            seat("s3", "Attacker", b"c3")])])
    game = placement.games["g"]
    assert (game.name, game.task, game.world, game.seats, game.taken, game.named) == (
        "g", "duel", b"w1", {"Attacker": 1, "Defender": 1}, {"Defender": 2, "Attacker": 1}, True)
    assert w1.games == {"g"} and placement.worlds == {b"w1": w1}
    assert [(s.world, s.game) for s in placement.seats.values()] == [(b"w1", "g")] * 3
    assert placement.joins == {(b"c1", b"\x05"): b"s1"}
    assert placement.lost == {}, "a listed seat is no longer lost"
    assert placement.place_join(b"c", "duel", "Attacker", None).game != "g", "an adopted game is not filled"


def test_a_game_of_a_task_the_world_no_longer_lists_has_no_seats_to_fill() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL), [("g", "chess", [])])
    assert placement.games["g"].seats == {} and placement.games["g"].free("Attacker") == 0


def test_a_world_registering_again_loses_the_seats_it_no_longer_lists() -> None:
    placement = Placement()
    placement.add_world(world("w1", DUEL), [("g", "duel", [seat("s1"), seat("s2", "Defender")])])
    placement.add_world(world("w1", DUEL), [("g", "duel", [seat("s1")])])
    assert set(placement.seats) == {b"s1"} and placement.games["g"].taken == {"Attacker": 1}
    assert placement.lost == {b"s2": "it registered again"}


def test_removing_a_world_forgets_only_its_own_and_keeps_the_newest_lost_seats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """§7: a dead world's seats are remembered (so agents hear GAME_LOST), at most LOST_SEATS_KEPT, oldest dropped."""
    monkeypatch.setattr(placement_module, "LOST_SEATS_KEPT", 2)
    placement = Placement()
    assert placement.remove_world(b"w1", "never registered") is None
    placement.add_world(world("w1", DUEL), [("g", "duel", [seat("s1"), seat("s2", "Defender")])])
    placement.add_world(world("w2", SOLO), [("h", "solo", [seat("s3")])])
    placement.lost[b"old"] = "before"
    w1 = placement.worlds[b"w1"]
    assert placement.remove_world(b"w1", "it disconnected") is w1
    assert list(placement.games) == ["h"] and set(placement.seats) == {b"s3"} and set(placement.worlds) == {b"w2"}
    assert list(placement.lost.items()) == [(b"s1", "it disconnected"), (b"s2", "it disconnected")]


def test_a_restarted_broker_issues_seats_unlike_the_ones_it_adopted() -> None:
    """§7 Broker restart: the seats a world lists were issued by the previous broker; a new seat
    must not take one of their ids (seat ids carry a per-broker nonce)."""
    before = Placement()
    before.add_world(world("w1", SOLO))
    old = before.place_join(b"c", "solo", "Attacker", None)
    after = Placement()
    after.add_world(world("w1", SOLO), [("old", "solo", [seat(old.seat.decode(), client=b"c")])])
    new = after.place_join(b"d", "solo", "Attacker", None)
    assert new.seat != old.seat and set(after.seats) == {old.seat, new.seat}
    assert after.seats[old.seat].client == b"c"
