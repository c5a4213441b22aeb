"""world.session, joining: how a role is read, the refusals' exact texts (MALFORMED,
ROLE_NOT_ALLOWED, GAME_FULL), the fallback name, the start status, the join trace event,
and the session's own settings (seed, firewall) (reference netsecgame.md §3.1; PROTOCOL.md
§3.3, §5, §6; DESIGN §3)."""

from __future__ import annotations

import random

from protocol import PASS, AgentRole, AgentStatus, ErrorCode, GameStatus
from world import GameSession

from .conftest import CLIENT, scan
from .world_samples import task_with

MALFORMED = "Bad request received: Malformed Action"
EVERY_ROLE = {"arena.seats": {"Attacker": 1, "Defender": 2}, "arena.start": {"Attacker": 1}}


def test_a_role_is_read_by_name_in_any_case_or_as_an_agent_role() -> None:
    """reference §1.7/§3.1: a role name in any case, with or without the ``AgentRole.``
    prefix, or an AgentRole itself, takes a seat of that role."""
    session = GameSession(task_with(**EVERY_ROLE), seed=1)
    [red] = session.join("red", "Red", "attacker", 0.0, 0)
    [blue] = session.join("blue", "Blue", "AgentRole.Defender", 0.0, 1)
    [navy] = session.join("navy", "Navy", AgentRole.Defender, 0.0, 2)
    assert [r.status for r in (red, blue, navy)] == [GameStatus.CREATED] * 3
    assert {seat: entry.role for seat, entry in session.seats.items()} == {
        "red": AgentRole.Attacker, "blue": AgentRole.Defender, "navy": AgentRole.Defender}


def test_an_unknown_role_is_malformed_naming_the_field_and_what_came() -> None:
    """PROTOCOL.md §3.3: a MALFORMED reply names the field, what was expected and what came;
    the seat and request are echoed and nothing is seated."""
    session = GameSession(task_with(**EVERY_ROLE), seed=1)
    [pirate] = session.join("s1", "P", "Pirate", 0.0, "r1")
    [number] = session.join("s2", "N", 7, 0.0, "r2")  # type: ignore[arg-type]
    assert (pirate.seat, pirate.request, pirate.status, pirate.code) == (
        "s1", "r1", GameStatus.BAD_REQUEST, ErrorCode.MALFORMED)
    assert pirate.message == {"message": MALFORMED, "reason": "agent_info.role: expected Attacker, Defender "
                              "or Benign, got Invalid AgentRole: Pirate"}
    assert (number.seat, number.request, number.code) == ("s2", "r2", ErrorCode.MALFORMED)
    assert number.message == {"message": MALFORMED, "reason": "agent_info.role: expected Attacker, Defender "
                              "or Benign, got 7 is not a valid AgentRole"}
    assert session.seats == {}


def test_a_role_the_task_does_not_allow_is_refused_naming_the_allowed_roles() -> None:
    """PROTOCOL.md §5 ROLE_NOT_ALLOWED: the text names the role, the task and the allowed
    roles (sorted, comma-separated)."""
    session = GameSession(task_with(), seed=1)
    [reply] = session.join("g", "Green", "Benign", 0.0, "r")
    assert (reply.seat, reply.request, reply.status, reply.code) == (
        "g", "r", GameStatus.BAD_REQUEST, ErrorCode.ROLE_NOT_ALLOWED)
    assert reply.message == {"message": "Role Benign is not allowed in task default (allowed: Attacker, Defender)"}
    assert session.seats == {}


def test_an_allowed_role_without_seats_finds_the_game_full() -> None:
    """arena.allowed_roles may name a role that has no seats (world/task.py): such a game
    has no free seat of it (GAME_FULL, PROTOCOL.md §5), and free_seats() says 0."""
    session = GameSession(task_with(**{"arena.allowed_roles": ["Attacker", "Defender", "Benign"]}),
                          seed=1, name="g1")
    assert session.free_seats(AgentRole.Benign) == 0
    assert session.free_seats(AgentRole.Defender) == 1
    [reply] = session.join("g", "Green", "Benign", 0.0, "r")
    assert (reply.seat, reply.request, reply.code) == ("g", "r", ErrorCode.GAME_FULL)
    assert reply.message == {"message": "Game g1 has no free Benign seat"}
    assert session.seats == {}


def test_a_name_with_nothing_left_after_sanitising_becomes_agent_and_8_hex_of_the_seat() -> None:
    """reference §3.1: an empty sanitised name becomes ``agent_<8 hex>`` (here of the seat's
    hash, taken modulo 16**8); the join trace event carries the name the seat got
    (PROTOCOL.md §6: join events name the task, game, seat and role)."""
    session = GameSession(task_with(**EVERY_ROLE), seed=1, name="g7")
    session.events = []
    seat = 16**8 + 0x1234  # an int hashes to itself: 0x1_0000_1234
    session.join(seat, "!!!", AgentRole.Attacker, 0.0, 0)
    session.join("blue", "Alice & Bob!", AgentRole.Defender, 0.0, 1)
    assert session.seats[seat].name == "agent_00001234"
    assert session.seats[seat].trajectory.as_dict()["agent_name"] == "agent_00001234"
    assert session.events == [
        {"kind": "join", "task": "default", "game": "g7", "seat": seat, "role": "Attacker", "episode": 0,
         "name": "agent_00001234"},
        {"kind": "join", "task": "default", "game": "g7", "seat": "blue", "role": "Defender", "episode": 0,
         "name": "Alice_Bob"},
    ]


def test_attackers_play_with_timeout_and_every_other_role_plays() -> None:
    """reference §3.1: status PlayingWithTimeout for an attacker and Playing for every other
    role, as a seat's action history records it (rl-environments.md §2.6)."""
    session = GameSession(task_with(**EVERY_ROLE), seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 1)
    session.step("red", scan(CLIENT, "192.168.1.0/24"), 0.0, 2)
    session.step("blue", PASS, 0.0, 3)
    assert [r.status for r in session.history("red")] == [AgentStatus.PlayingWithTimeout]
    assert [r.status for r in session.history("blue")] == [AgentStatus.Playing]


def test_a_session_without_a_seed_uses_42() -> None:
    """DESIGN §3 Randomness: a game's random starts from the server's seed, default 42."""
    assert GameSession(task_with()).rng.getstate() == random.Random(42).getstate()


def test_the_tasks_firewall_setting_reaches_the_world() -> None:
    """env.use_firewall (reference §4.2, §5.1): with the firewall, a scan from the client
    finds only the hosts the firewall lets it reach; without, every host of the network."""
    found = {}
    for firewall in (True, False):
        session = GameSession(task_with(**{"env.use_firewall": firewall}), seed=1)
        session.join("a", "A", AgentRole.Attacker, 0.0, 0)
        session.step("a", scan(CLIENT, "192.168.1.0/24"), 0.0, 1)
        found[firewall] = sorted(h.ip for h in session.seats["a"].state.known_hosts if h.ip.startswith("192.168.1."))
    assert found == {True: ["192.168.1.2", "192.168.1.3", "192.168.1.4"],
                     False: [f"192.168.1.{i}" for i in range(1, 7)]}
