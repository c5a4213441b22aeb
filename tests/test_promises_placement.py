"""Placement promises no other test pinned (issue 14, items 3 and 4), on a Placement
object without sockets (broker.placement is the rule; the broker only calls it).

PROTOCOL.md §3.1 and DESIGN §2: a JOIN with a game name goes to that game; one without
goes to a game of the task *waiting for a player of that role* (``broker.placement``:
"the fullest first, so games start sooner"), else to a new game. A named game is an
agent's: strangers' unnamed joins never fill it."""

from __future__ import annotations

from broker.placement import Placement, TaskInfo, WorldRecord

PAIR = TaskInfo("pair", {"Attacker": 1, "Defender": 1}, frozenset({"Attacker", "Defender"}))
TRIO = TaskInfo("trio", {"Attacker": 3}, frozenset({"Attacker"}))


def placement_with(*tasks: TaskInfo) -> Placement:
    placement = Placement()
    placement.add_world(WorldRecord(b"w1", "w1", 100, {t.name: t for t in tasks}, 1.0, expiry=99.0,
                                    registered_at=0.0))
    return placement


def test_an_unnamed_join_never_takes_a_seat_in_a_named_game() -> None:
    """A defender waits in its named game "duel" for an attacker; an unnamed attacker join
    of that task gets a new unnamed game, and "duel" keeps its seat for the named join."""
    placement = placement_with(PAIR)
    defender = placement.place_join(b"blue", "pair", "Defender", "duel")
    assert placement.games["duel"].free("Attacker") == 1, "duel waits for an attacker"
    stranger = placement.place_join(b"random-agent", "pair", "Attacker", None)
    assert stranger.game != "duel", "an unnamed join took the seat of the named game duel"
    assert stranger.game == "pair-1" and not placement.games["pair-1"].named
    assert placement.games["duel"].free("Attacker") == 1, "duel's attacker seat is still free"
    invited = placement.place_join(b"red", "pair", "Attacker", "duel")
    assert invited.game == defender.game == "duel"
    second = placement.place_join(b"another", "pair", "Defender", None)
    assert second.game == "pair-1", "unnamed joins still fill unnamed games"


def _fill(placement: Placement, count: int) -> list[bytes]:
    return [placement.place_join(b"c%d" % index, "trio", "Attacker", None).seat for index in range(count)]


def test_an_unnamed_join_goes_to_the_fullest_waiting_game_ties_to_the_first_created() -> None:
    """Three unnamed games waiting with 1, 2 and 1 of 3 seats taken: the next join goes to
    the one with 2 (the fullest, so it starts soonest); between equally full games, to the
    one created first (the lowest number: the broker numbers ``<task>-N`` in creation
    order, PROTOCOL.md §3.1; the rule itself is ``Placement.place_join``'s)."""
    placement = placement_with(TRIO)
    seats = _fill(placement, 9)
    by_game: dict[str, list[bytes]] = {}
    for seat in seats:
        by_game.setdefault(placement.seats[seat].game, []).append(seat)
    assert sorted(by_game) == ["trio-1", "trio-2", "trio-3"] and all(len(s) == 3 for s in by_game.values())
    for game, leaving in (("trio-1", 2), ("trio-2", 1), ("trio-3", 2)):
        for seat in by_game[game][:leaving]:
            placement.release(seat)
    occupancy = {name: game.occupied for name, game in placement.games.items()}
    assert occupancy == {"trio-1": 1, "trio-2": 2, "trio-3": 1}
    first = placement.place_join(b"n1", "trio", "Attacker", None)
    assert first.game == "trio-2", f"not the fullest waiting game (occupancy {occupancy})"
    tie = placement.place_join(b"n2", "trio", "Attacker", None)
    assert tie.game == "trio-1", "equally full: the game created first"
    again = placement.place_join(b"n3", "trio", "Attacker", None)
    assert again.game == "trio-1", "trio-1 is now the fullest (2 of 3)"


def test_the_tie_break_follows_creation_order_past_nine_games() -> None:
    """Games trio-9 and trio-10 equally full: trio-9, created first, though a name sort
    (trio-10 < trio-9) or a longer-name preference would pick trio-10."""
    placement = placement_with(TRIO)
    seats = _fill(placement, 30)
    games = {placement.seats[seat].game for seat in seats}
    assert len(games) == 10 and "trio-10" in games
    for seat in seats:
        if placement.seats[seat].game in ("trio-9", "trio-10"):
            placement.release(seat)
    assert placement.games["trio-9"].occupied == placement.games["trio-10"].occupied == 0
    first = placement.place_join(b"n1", "trio", "Attacker", None)
    assert first.game == "trio-9"
    assert placement.place_join(b"n2", "trio", "Attacker", None).game == "trio-9", "now the fullest"
