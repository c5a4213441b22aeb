"""world.session, rule by rule: step()'s routing and validation, held-join leases and
renewals, hold and lease expiry (exact boundaries, every reply of one tick, the texts of
SEAT_RELEASED and HOLD_TIMEOUT), quit and close, and the end of bystanders' episodes
(DESIGN §3 "Held replies", "Seats lease"; PROTOCOL.md §5 error codes; reference
netsecgame.md §2.2, §3.4, §3.6)."""

from __future__ import annotations

import copy
from typing import Any

from protocol import (
    PASS,
    Action,
    AgentRole,
    AgentStatus,
    ErrorCode,
    GameStatus,
    ProtocolError,
)
from world import GameSession, TaskConfig, parse_task

from .conftest import CLIENT, QUIT, TASKS, WINNING_ATTACK, join, scan
from .scripted_samples import periodic, tiny_with
from .world_samples import DEFAULT_TASK, task_with

RELEASED = "The seat was released before this request was answered: "



def defenders_only(**changes: Any) -> TaskConfig:
    """Two defender seats and an attacker seat nobody takes: joins stay held."""
    return task_with(**{"arena.seats": {"Attacker": 1, "Defender": 2}, "arena.start": {"Attacker": 1}, **changes})


ATTACKERS = {"arena.seats": {"Attacker": 3}, "arena.start": {"Attacker": 3}}


def broken_scan() -> Action:
    action = scan(CLIENT, "192.168.1.0/24")
    del action.parameters["source_host"]
    return action


# ---------------------------------------------------------------------- step()
def test_step_routes_actions_that_are_not_game_actions_through_handle() -> None:
    """step() takes compact game actions; a JoinGame, a QuitGame or a non-action given to it
    is dispatched as handle() would (seat, time and request tag kept), never counted as a
    game step."""
    session = GameSession(task_with(), seed=1)
    [created] = session.step("red", join("Red"), 5.0, "r1")
    assert (created.seat, created.request, created.status) == ("red", "r1", GameStatus.CREATED)
    assert session.seats["red"].lease_deadline == 5.0 + 600
    [again] = session.step("red", join("Red"), 6.0, "r2")
    assert (again.request, again.code) == ("r2", ErrorCode.ALREADY_JOINED)
    [garbage] = session.step("red", "not an action", 7.0, "r3")
    assert (garbage.seat, garbage.request, garbage.code) == ("red", "r3", ErrorCode.MALFORMED)
    assert session.seats["red"].steps == 0
    [bye] = session.step("red", QUIT, 8.0, "r4")
    assert (bye.request, bye.status) == ("r4", GameStatus.OK) and session.seats == {}


def test_step_checks_parameters_unless_told_they_were_validated() -> None:
    """An invalid game action given to step() is MALFORMED with the reason, echoing seat and
    request, and changes nothing (DESIGN §3: a bad request changes nothing)."""
    session = GameSession(task_with(), seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    [reply] = session.step("red", broken_scan(), 1.0, "r1")
    assert (reply.seat, reply.request, reply.status, reply.code) == (
        "red", "r1", GameStatus.BAD_REQUEST, ErrorCode.MALFORMED)
    assert reply.message == {"message": "Bad request received: Malformed Action", "reason":
                             "parameters.source_host: expected an IP (required by ScanNetwork), got nothing"}
    assert session.seats["red"].steps == 0


def test_reject_answers_an_unparsed_request_malformed() -> None:
    """reject(): BAD_REQUEST / MALFORMED to that seat and request, with the parse error."""
    session = GameSession(task_with(), seed=1)
    reply = session.reject("s", ProtocolError("action", "an Action", "7"), "r9")
    assert (reply.seat, reply.request, reply.code) == ("s", "r9", ErrorCode.MALFORMED)
    assert reply.message == {"message": "Bad request received: Malformed Action",
                             "reason": str(ProtocolError("action", "an Action", "7"))}


# ---------------------------------------------------------------------- leases of held joins
def test_a_held_join_keeps_its_seat_at_least_held_join_lease_min() -> None:
    """A lease shorter than 5 s is stretched to 5 s while the join is held (a waiting client
    resends its JOIN every 2 s); then the seat is quit, the held join answered SEAT_RELEASED
    (DESIGN §3 "Seats lease"; PROTOCOL.md §5)."""
    session = GameSession(defenders_only(**{"arena.seat_lease": 2}), seed=1)
    assert session.join("blue", "Blue", AgentRole.Defender, 0.0, "j") == []
    assert session.pending() == [("blue", "j")]
    assert session.tick(4.99) == [] and "blue" in session.seats
    [released] = session.tick(5.0)
    assert (released.request, released.code) == ("j", ErrorCode.SEAT_RELEASED)
    assert released.message == {"message": RELEASED + "its lease expired."}
    assert session.seats == {} and session.pending() == []


def test_a_held_join_with_a_long_lease_expires_exactly_at_its_lease() -> None:
    """With a lease of at least 5 s nothing is added: the held join's seat goes at the lease."""
    session = GameSession(defenders_only(**{"arena.seat_lease": 10}), seed=1)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "j")
    assert session.tick(9.99) == []
    assert [r.code for r in session.tick(10.0)] == [ErrorCode.SEAT_RELEASED]


def test_renew_extends_a_held_joins_lease_and_ignores_unknown_seats() -> None:
    """renew() (a resent request that runs nothing) counts as a request for the lease."""
    session = GameSession(defenders_only(**{"arena.seat_lease": 2}), seed=1)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "j")
    session.renew("nobody", 1.0)
    assert "nobody" not in session.seats
    session.renew("blue", 4.0)
    session.renew("blue", 1.0)  # an older time never shortens it
    assert session.tick(8.99) == []
    assert [r.code for r in session.tick(9.0)] == [ErrorCode.SEAT_RELEASED]


def test_pending_lists_only_held_requests() -> None:
    session = GameSession(task_with(**{"arena.start": {"Attacker": 1, "Defender": 1}}), seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, "a")
    assert session.pending() == [("red", "a")]
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "b")
    assert session.pending() == []


# ---------------------------------------------------------------------- hold expiry
def test_a_held_join_expires_exactly_at_the_hold_timeout_with_its_text() -> None:
    """DESIGN §3: on expiry BAD_REQUEST / HOLD_TIMEOUT and the join frees its seat."""
    session = GameSession(defenders_only(), seed=1)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "j")
    assert session.tick(59.999) == []
    [expired] = session.tick(60.0)
    assert (expired.seat, expired.request, expired.code) == ("blue", "j", ErrorCode.HOLD_TIMEOUT)
    assert expired.message == {"message": "The game did not start within 60 s; the seat was freed."}
    assert session.seats == {} and session.released == ["blue"]


def test_one_tick_answers_every_expiry_that_is_due() -> None:
    """Two held joins expiring together are both answered; a hold expiry and a lease expiry
    in the same tick are both answered."""
    session = GameSession(defenders_only(), seed=1)
    session.join("a", "A", AgentRole.Defender, 0.0, "a")
    session.join("b", "B", AgentRole.Defender, 0.0, "b")
    assert sorted(r.request for r in session.tick(60.0)) == ["a", "b"]
    mixed = GameSession(defenders_only(**{"arena.hold_timeout": 10, "arena.seat_lease": 5}), seed=1)
    mixed.join("a", "A", AgentRole.Defender, 0.0, "a")
    mixed.join("b", "B", AgentRole.Defender, 6.0, "b")
    replies = mixed.tick(11.0)
    assert [(r.request, r.code) for r in replies] == [("a", ErrorCode.HOLD_TIMEOUT), ("b", ErrorCode.SEAT_RELEASED)]
    assert mixed.seats == {}


def test_reset_hold_expiry_text() -> None:
    """DESIGN §3: a reset hold that expires drops its vote; the reply says so."""
    session = GameSession(task_with(**ATTACKERS), seed=1)
    for seat in "abc":
        session.join(seat, seat.upper(), AgentRole.Attacker, 0.0, seat)
    assert session.reset("a", 1.0, "r") == []
    [expired] = session.tick(61.0)
    assert (expired.request, expired.code) == ("r", ErrorCode.HOLD_TIMEOUT)
    assert expired.message == {"message": "Not every agent asked for a reset within 60 s; "
                                          "the reset request was dropped."}


def test_a_reset_request_renews_the_lease() -> None:
    """A reset is a request, and its HOLD_TIMEOUT an answer: afterwards the seat still has a
    full lease (DESIGN §3 "Seats lease")."""
    session = GameSession(task_with(**ATTACKERS, **{"arena.hold_timeout": 10, "arena.seat_lease": 100}), seed=1)
    for seat in "abc":
        session.join(seat, seat.upper(), AgentRole.Attacker, 0.0, seat)
    session.reset("a", 50.0, "r")
    session.step("b", scan(CLIENT, "192.168.1.0/24"), 50.0, "s1")
    session.step("c", scan(CLIENT, "192.168.1.0/24"), 50.0, "s2")
    assert [r.code for r in session.tick(60.0)] == [ErrorCode.HOLD_TIMEOUT]
    assert session.tick(149.0) == [] and set(session.seats) == {"a", "b", "c"}


def test_an_episode_end_hold_expiry_releases_the_waiting_seats_with_its_reason() -> None:
    """DESIGN §3: an episode-end hold that expires releases as if the missing agents quit:
    each unfinished seat is quit, a held request of one answered SEAT_RELEASED with the
    reason, and the waiting agent gets its final reply (reference §3.4, §3.6)."""
    session = GameSession(task_with(**ATTACKERS), seed=1)
    for seat in "abc":
        session.join(seat, seat.upper(), AgentRole.Attacker, 0.0, seat)
    for number, action in enumerate(WINNING_ATTACK):
        replies = session.step("a", action, 0.0, f"a{number}")
    assert replies == []
    assert session.reset("b", 0.0, "b-reset") == []
    replies = session.tick(61.0)
    by_request = {r.request: r for r in replies}
    assert set(by_request) == {"b-reset", "a4"}
    assert by_request["b-reset"].code is ErrorCode.SEAT_RELEASED
    assert by_request["b-reset"].message == {
        "message": RELEASED + "the episode-end hold timed out waiting for it."}
    assert by_request["a4"].observation.reward == 99 and by_request["a4"].observation.end is True
    assert set(session.seats) == {"a"}


def test_a_seat_answered_by_an_expiry_keeps_its_lease() -> None:
    """DESIGN §3 "Seats lease" and GameSession._renewed: a lease counts from the seat's last
    request or the last answer to it, so a long hold never costs an agent its seat. A seat
    whose episode-end reply another seat's hold expiry releases keeps its seat in that tick."""
    session = GameSession(task_with(**ATTACKERS, **{"arena.seat_lease": 30}), seed=1)
    for seat in "abc":
        session.join(seat, seat.upper(), AgentRole.Attacker, 0.0, seat)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("a", action, 0.0, f"a{number}")
    session.tick(20.0)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("c", action, 20.0, f"c{number}")  # c's lease now runs to 50 s
    replies = session.tick(61.0)  # a's hold expires: b is quit, a's and c's replies released
    assert sorted(r.request for r in replies) == ["a4", "c4"]
    assert set(session.seats) == {"a", "c"}, "both were just answered: their leases start again"
    assert session.released == ["b"]
    two = GameSession(task_with(**{"arena.seats": {"Attacker": 2}, "arena.start": {"Attacker": 2},
                                   "arena.seat_lease": 30}), seed=1)
    two.join("a", "A", AgentRole.Attacker, 0.0, "a")
    two.join("c", "C", AgentRole.Attacker, 0.0, "c")
    for number, action in enumerate(WINNING_ATTACK):
        two.step("c", action, 0.0, f"c{number}")
    released = two.tick(30.0)  # a's lease ends: c's episode-end reply is released
    assert [r.request for r in released] == ["c4"] and set(two.seats) == {"c"}


# ---------------------------------------------------------------------- quit and close
def test_quit_answers_a_held_join_with_the_quit_reason_and_traces_it() -> None:
    """DESIGN §3: QuitGame is answered and frees the seat; a held request of that seat is
    answered SEAT_RELEASED with the reason (PROTOCOL.md §5); the trace's quit event names it."""
    session = GameSession(defenders_only(), seed=1)
    session.events = []
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "j")
    replies = session.quit("blue", 1.0, "q")
    assert [(r.request, r.code) for r in replies] == [("j", ErrorCode.SEAT_RELEASED), ("q", None)]
    assert replies[0].message == {"message": RELEASED + "the agent quit."}
    assert replies[1].message == {"message": "Agent Blue quit the game."}
    quit_event = session.events[-1]
    assert (quit_event["kind"], quit_event["seat"], quit_event["reason"]) == ("quit", "blue", "the agent quit")


def test_close_answers_every_held_request() -> None:
    """close(): every held request is answered SEAT_RELEASED and every seat dropped."""
    session = GameSession(defenders_only(), seed=1)
    session.join("a", "A", AgentRole.Defender, 0.0, "a")
    session.join("b", "B", AgentRole.Defender, 0.0, "b")
    replies = session.close()
    assert [(r.request, r.code) for r in replies] == [("a", ErrorCode.SEAT_RELEASED), ("b", ErrorCode.SEAT_RELEASED)]
    assert all(r.message == {"message": RELEASED + "the game closed."} for r in replies)
    assert session.seats == {} and session.released == ["a", "b"]
    assert [r.message for r in GameSession(defenders_only(), seed=1).close("stop")] == []


# ---------------------------------------------------------------------- leaving and bystanders
def test_the_next_session_after_everyone_left_assigns_final_rewards_again() -> None:
    """DESIGN §3: the last agent leaving starts a fresh session; its episode's end gets the
    final rewards (reference §3.4: 99 = step -1 + success 100)."""
    session = GameSession(task_with(), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("a", action, 0.0, number)
    session.quit("a", 0.0, "q")
    session.join("b", "B", AgentRole.Attacker, 0.0, 10)
    for number, action in enumerate(WINNING_ATTACK):
        [last] = session.step("b", action, 0.0, 11 + number)
    assert last.observation.reward == 99 and last.observation.end is True


def test_the_attacker_quitting_ends_the_defenders_episode() -> None:
    """DESIGN §3: a defender's episode ends when every attacker's has; an attacker that
    quits counts. The defender is told on its next request (reference §3.4: no attacker
    succeeded, so success 100)."""
    session = GameSession(task_with(), seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 1)
    session.step("blue", scan("192.168.1.1", "192.168.1.0/24"), 0.0, 2)
    session.quit("red", 0.0, 3)
    [told] = session.step("blue", scan("192.168.1.1", "192.168.1.0/24"), 0.0, 4)
    assert told.status is GameStatus.OK and told.observation.end is True
    assert told.observation.reward == 100
    assert told.observation.info == {"end_reason": "AgentStatus.Success"}


def test_a_pass_that_ends_the_episode_adds_the_final_reward_to_the_last_trajectory_step() -> None:
    """A PASS is not in the upstream-format trajectory; when it ends the episode (max_steps)
    the end-of-episode reward goes onto the last recorded step (reference §3.4, §3.7)."""
    session = GameSession(task_with(**{"coordinator.agents.Attacker.max_steps": 2}), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.step("a", WINNING_ATTACK[0], 0.0, 1)
    [last] = session.handle("a", PASS, 0.0, 2)
    assert last.observation.reward == -11
    assert last.observation.info == {"end_reason": "AgentStatus.TimeoutReached"}
    assert session.seats["a"].trajectory.rewards == [-11]


def test_a_late_defender_is_told_with_a_zero_breakdown_when_the_attacker_leaves() -> None:
    """A defender that joined after the attacker's episode ended (final rewards already
    assigned) ends with the attacker leaving: its next request is told the end, reward 0,
    its reward function's zero breakdown, and no end_reason since its status is not
    terminal (reference §2.2: end_reason only for a terminal status)."""
    proxy = {"ref": "b", "team": "BLUE", "type": "proxy",
             "reward_function": {"reward_components": [{"type": "step"}, {"type": "success"}]}}
    document = copy.deepcopy(DEFAULT_TASK)
    document["agents"] = [proxy]
    session = GameSession(parse_task(document, "late-defender.yaml", TASKS), seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("red", action, 0.0, 1 + number)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 10)
    session.quit("red", 0.0, 11)
    [told] = session.step("blue", scan("192.168.1.1", "192.168.1.0/24"), 0.0, 12)
    assert told.status is GameStatus.OK and told.observation.end is True
    assert told.observation.reward == 0
    assert told.observation.info == {"reward_breakdown": {"step": 0.0, "success": 0.0}}
    assert session.seats["blue"].status is AgentStatus.Playing


def test_a_scripted_attacker_ending_during_a_defenders_step_ends_every_bystander() -> None:
    """A scripted attacker's turn (world.scripted) that ends the last attacker's episode
    during a defender's step ends that defender (its own reply tells it) and every other
    non-attacker too, so the step's reply is released at once (DESIGN §3)."""
    red = {**periodic("red"), "team": "RED", "agent_settings": {"start_step": 1, "frequency": 1}}
    task = tiny_with([red], **{"arena.seats": {"Defender": 1, "Benign": 1},
                               "arena.start": {"Defender": 1, "Benign": 1},
                               "coordinator.agents.Attacker.max_steps": 1})
    session = GameSession(task, seed=4)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    session.join("green", "Green", AgentRole.Benign, 0.0, 1)
    [green_step] = session.step("green", PASS, 0.0, 2)
    assert green_step.observation.end is False
    [blue_step] = session.step("blue", PASS, 0.0, 3)  # the round ends: red's turn times it out
    assert session.scripted[0].status is AgentStatus.TimeoutReached
    assert blue_step.observation.end is True
    assert blue_step.observation.info["end_reason"] == "AgentStatus.Success"
    [green_told] = session.step("green", PASS, 0.0, 4)
    assert green_told.status is GameStatus.OK and green_told.observation.end is True


def test_the_last_external_seat_leaving_drops_the_scripted_seats() -> None:
    """DESIGN §3: nobody left starts a fresh session; the scripted seats leave with a quit
    trace event naming why (PROTOCOL.md trace events)."""
    red = {**periodic("red"), "team": "RED", "agent_settings": {"start_step": 1, "frequency": 1}}
    session = GameSession(tiny_with([red], **{"arena.seats": {"Defender": 1}, "arena.start": {"Defender": 1}}),
                          seed=4)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    session.events = []
    session.quit("blue", 0.0, 1)
    assert [(e["seat"], e["reason"]) for e in session.events] == [
        ("blue", "the agent quit"), ("scripted:red", "the last external seat left")]
    assert session.scripted == []
