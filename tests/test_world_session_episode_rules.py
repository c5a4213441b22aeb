"""world.session, an episode's end: a bystander (a defender or benign agent whose episode
ended because every attacker's did) gets its end-of-episode reward on its return, its
trajectory and an ``episode`` trace event exactly once, whatever its next request is; the
goal check's first step; step events; busy seats; the next deadline; the tick of a game
without scripted agents (reference netsecgame.md §3.2-§3.4, §3.7; DESIGN §3; PROTOCOL.md
§4-§6)."""

from __future__ import annotations

from typing import Any

from protocol import PASS, AgentRole, AgentStatus, ErrorCode, GameStatus
from world import GameSession

from .conftest import CLIENT, WINNING_ATTACK, scan
from .world_samples import task_with

ROUTER = "192.168.1.1"


def episodes(session: GameSession) -> list[tuple[Any, Any]]:
    assert session.events is not None
    return [(e["seat"], e["return"]) for e in session.events if e["kind"] == "episode"]


def attacker_wins_against_a_defender(*, defender_resets_first: bool) -> GameSession:
    """Red wins (95 = five steps of -1 and success 100); Blue made one step (-1) and, if told
    so, asked for a reset (with its trajectory) before Red's last step."""
    session = GameSession(task_with(), seed=1)
    session.events = []
    session.join("red", "Red", AgentRole.Attacker, 0.0, "j1")
    session.join("blue", "Blue", AgentRole.Defender, 0.0, "j2")
    session.step("blue", scan(ROUTER, "192.168.1.0/24"), 0.0, "b1")
    if defender_resets_first:
        assert session.reset("blue", 0.0, "b2", request_trajectory=True) == []
    for number, action in enumerate(WINNING_ATTACK):
        replies = session.step("red", action, 0.0, f"r{number}")
    assert [(r.seat, r.observation.reward, r.observation.end) for r in replies] == [("red", 99, True)]
    return session


def test_a_bystander_holding_a_reset_gets_its_final_reward_when_it_is_assigned() -> None:
    """reference §3.4: the defender's final reward (fail -10, an attacker won) sits on top of
    its last step reward (-1); it reaches the defender's return, the last step of the
    trajectory its reset returns (reference §3.7: the rewards add up to what it got, as its
    action history's last record has it) and an ``episode`` event (PROTOCOL.md §6), once,
    when the attacker's last step assigns it. A defect fixed here: a seat holding a reset
    was marked told and lost all three."""
    session = attacker_wins_against_a_defender(defender_resets_first=True)
    blue = session.seats["blue"]
    assert (blue.episode_return, blue.trajectory.rewards, blue.status) == (-11, [-11], AgentStatus.Fail)
    assert episodes(session) == [("blue", -11), ("red", 95)]
    [_, blue_done] = session.reset("red", 0.0, "r9")
    assert (blue_done.seat, blue_done.request, blue_done.status) == ("blue", "b2", GameStatus.RESET_DONE)
    assert blue_done.message["last_trajectory"].rewards == [-11]
    assert [r.reward for r in session.history("blue", last=True)] == [-11]
    assert episodes(session) == [("blue", -11), ("red", 95)]


def test_a_bystander_whose_next_request_is_a_reset_gets_its_final_reward_then() -> None:
    """DESIGN §3: a bystander is told its episode's end on its next request; when that
    request is a reset, its final reward still reaches its return, its trajectory and an
    ``episode`` event (reference §3.4, §3.7; PROTOCOL.md §6) before the reset runs."""
    session = attacker_wins_against_a_defender(defender_resets_first=False)
    assert episodes(session) == [("red", 95)]
    assert session.reset("blue", 0.0, "b2", request_trajectory=True) == []
    assert session.seats["blue"].episode_return == -11
    assert episodes(session) == [("red", 95), ("blue", -11)]
    [_, blue_done] = session.reset("red", 0.0, "r9")
    assert blue_done.message["last_trajectory"].rewards == [-11]
    assert episodes(session) == [("red", 95), ("blue", -11)]


def test_a_bystander_told_while_holding_a_reset_is_not_told_again() -> None:
    """Told once: when that held reset is dropped (hold timeout), the bystander's next step
    is FORBIDDEN / EPISODE_ENDED repeating the reward (reference §3.4: "A later FORBIDDEN
    reply repeats this reward"), with no second ``episode`` event and its return unchanged."""
    session = attacker_wins_against_a_defender(defender_resets_first=True)
    [dropped] = session.tick(60.0)
    assert (dropped.seat, dropped.request, dropped.code) == ("blue", "b2", ErrorCode.HOLD_TIMEOUT)
    [again] = session.step("blue", scan(ROUTER, "192.168.1.0/24"), 61.0, "b3")
    assert (again.status, again.code) == (GameStatus.FORBIDDEN, ErrorCode.EPISODE_ENDED)
    assert (again.observation.reward, again.observation.end) == (-10, True)
    assert session.seats["blue"].episode_return == -11
    assert episodes(session) == [("blue", -11), ("red", 95)]


def test_a_bystander_told_on_its_next_step_gets_an_episode_event() -> None:
    """DESIGN §3: a bystander is told on its next step (OK, end, its final reward alone:
    its last step's reward was already given); that step also gives its ``episode`` event
    with the return (PROTOCOL.md §6)."""
    session = attacker_wins_against_a_defender(defender_resets_first=False)
    [told] = session.step("blue", scan(ROUTER, "192.168.1.0/24"), 0.0, "b2")
    assert (told.status, told.observation.reward, told.observation.end) == (GameStatus.OK, -10, True)
    assert session.events is not None
    assert session.events[-1] == {"kind": "episode", "task": "default", "game": "game", "seat": "blue",
                                  "role": "Defender", "episode": 0, "steps": 1, "end_reason": "AgentStatus.Fail",
                                  "return": -11}


def test_an_empty_goal_is_reached_on_the_first_step_even_if_nothing_changed() -> None:
    """reference §3.3: an empty goal is reached immediately, on the agent's first step; a
    PASS (nothing changes) counts as that step (PROTOCOL.md §3.2)."""
    session = GameSession(task_with(**{"coordinator.agents.Attacker.goal.known_data": {}}), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    [reply] = session.step("a", PASS, 0.0, 1)
    assert (reply.observation.reward, reply.observation.end) == (99, True)
    assert reply.observation.info == {"end_reason": "AgentStatus.Success"}


def test_a_step_event_of_a_step_that_ends_nothing() -> None:
    """PROTOCOL.md §6: a step event names the step, its action (compact), reward, end false
    and no end_reason."""
    session = GameSession(task_with(), seed=1, name="g3")
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.events = []
    session.step("a", PASS, 0.0, 1)
    assert session.events == [{"kind": "step", "task": "default", "game": "g3", "seat": "a", "role": "Attacker",
                               "episode": 0, "step": 1, "action": None, "reward": -1, "end": False,
                               "end_reason": None}]


def test_a_step_from_a_seat_with_a_held_request_is_busy() -> None:
    """PROTOCOL.md §5 BUSY: to that seat and request, naming the held request's kind; the
    step is not played."""
    session = GameSession(task_with(), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.join("b", "B", AgentRole.Defender, 0.0, 1)
    session.reset("a", 0.0, 2)
    [busy] = session.step("a", PASS, 0.0, 3)
    assert (busy.seat, busy.request, busy.status, busy.code) == ("a", 3, GameStatus.BAD_REQUEST, ErrorCode.BUSY)
    assert busy.message == {"message": "A reset request of this seat is still waiting for its reply."}
    assert session.seats["a"].steps == 0


def test_the_next_deadline_of_a_held_reset_is_its_hold_timeout_not_the_lease() -> None:
    """DESIGN §3: a seat's lease runs only while it has no held request (a held join
    excepted); a held reset waits for its hold_timeout, so that is the next thing tick()
    has to do, even when the lease is shorter."""
    session = GameSession(task_with(**{"arena.seat_lease": 10, "arena.hold_timeout": 60}), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.join("b", "B", AgentRole.Defender, 0.0, 1)
    session.reset("a", 0.0, 2)  # held until 60; a's lease would end at 10
    session.step("b", PASS, 20.0, 3)  # b's lease now ends at 30
    assert session.next_deadline() == 30.0
    assert session.tick(25.0) == [] and "a" in session.seats


def test_a_game_without_scripted_agents_stays_at_tick_0() -> None:
    """HistoryRecord.tick (rl-environments.md §2.6) is the game's tick, which only scripted
    agents' rounds advance (world.scripted): 0 for every step of a game without them."""
    session = GameSession(task_with(), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.step("a", scan(CLIENT, "192.168.1.0/24"), 0.0, 1)
    session.step("a", PASS, 0.0, 2)
    assert [r.tick for r in session.history("a")] == [0, 0]


def test_a_late_non_attackers_own_end_does_not_end_another_agents_episode() -> None:
    """DESIGN §3: a defender's or benign agent's episode ends when every attacker's episode
    ends, or at its own max_steps. Seats that join after the attacker's episode ended miss
    the first; a late defender reaching its max_steps waits for the late benign agent (its
    reply held, reference §3.2 step 8), whose episode goes on."""
    task = task_with(**{"arena.seats": {"Attacker": 1, "Defender": 1, "Benign": 1}, "arena.start": {"Attacker": 1},
                        "coordinator.agents.Defender.max_steps": 1})
    session = GameSession(task, seed=1)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("red", action, 0.0, 10 + number)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 1)
    session.join("green", "Green", AgentRole.Benign, 0.0, 2)
    assert session.step("blue", PASS, 0.0, 3) == []
    assert session.seats["green"].ended is False
    [green_step] = session.step("green", PASS, 0.0, 4)
    assert (green_step.status, green_step.observation.end) == (GameStatus.OK, False)
