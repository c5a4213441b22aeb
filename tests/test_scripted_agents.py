"""PASS and scripted agents in process (world.session, world.scripted): PASS is a counted
no-op step; scripted agents act on the documented ticks, reproducibly, in their own seats;
an external seat's reply says when the scripted agents ended its episode; histories."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

from agents.policies import kill_chain_attacker
from protocol import PASS, ActionType, AgentRole, AgentStatus, GameStatus, action_from_compact
from world import GameSession, HistoryRecord, load_task
from world.catalog import catalog_of
from world.game_host import GameHost

from .conftest import CLIENT, QUIT, TASKS, join, reset, scan
from .scripted_samples import DEFAULT, breakdown_adds_up, periodic, play_attacker, task_of, tiny_with

TINY_TASK = TASKS / "two_networks_tiny_attacker.yaml"
DEFENDED_TASK = TASKS / "defended_tiny.yaml"


# ---------------------------------------------------------------------- PASS
def test_pass_counts_towards_max_steps_and_changes_nothing(games: Any) -> None:
    """A PASS is a step: steps, step reward, the max_steps timeout; the state, the world's
    data, logs and firewall stay as they were; not in the trajectory; traced with action None."""
    game = games(load_task(TINY_TASK))
    game.session.events = []
    start = game.call("red", join("Red")).observation.state
    world = game.session.world
    for step in range(1, 30):
        reply = game.call("red", PASS)
        assert (reply.status, reply.observation.reward, reply.observation.end) == (GameStatus.OK, -1, False)
        assert reply.observation.state is start and reply.observation.info == {}
        assert game.session.seats["red"].steps == step
    last = game.call("red", PASS)
    assert last.observation.end is True and last.observation.reward == -1 - 10
    assert last.observation.info == {"end_reason": "AgentStatus.TimeoutReached"}
    assert world._logs == {} and world.fw_blocks == {} and world._data == dict(world.scenario.node_data)
    seat = game.session.seats["red"]
    assert len(seat.trajectory) == 0, "PASS is not part of the upstream-format trajectory"
    history = game.session.history("red")
    assert len(history) == 30 and all(r.passed and not r.changed for r in history)
    assert history[-1].status is AgentStatus.TimeoutReached and sum(r.reward for r in history) == -40
    steps = [e for e in game.session.events if e["kind"] == "step"]
    assert len(steps) == 30 and {e["action"] for e in steps} == {None}
    assert game.call("red", PASS).status is GameStatus.FORBIDDEN


def test_pass_is_never_detected_by_the_global_defender(games: Any) -> None:
    """No action was taken, so the global defender has nothing to judge."""
    game = games(task_of(DEFAULT, None, **{"env.use_global_defender": True, "arena.seats": {"Attacker": 1},
                                           "arena.start": {"Attacker": 1}}))
    game.call("red", join("Red"))
    replies = [game.call("red", PASS) for _ in range(50)]
    assert replies[-1].observation.info == {"end_reason": "AgentStatus.TimeoutReached"}
    assert game.session.seats["red"].history == []


def test_pass_through_the_world_host_is_a_nil_step_body() -> None:
    from protocol import PROTOCOL_FRAME, Command, decode_reply, pack, seq_bytes

    host = GameHost({"t": load_task(TINY_TASK)}, "w")
    frames = [PROTOCOL_FRAME, Command.REQUEST.frame, b"c", Command.JOIN.frame, b"s1", seq_bytes(1),
              pack({"task": "t", "role": "Attacker", "game": "g"})]
    host.request(frames, now=0.0)
    [out] = host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"c", Command.STEP.frame, b"s1", seq_bytes(2),
                          b"\xc0"], now=0.0)
    reply = decode_reply(out[6])
    assert reply.status is GameStatus.OK and reply.observation.reward == -1
    assert host.games["g"].session.seats["s1"].steps == 1
    assert action_from_compact(None) is PASS


# ---------------------------------------------------------------------- schedules and ticks
def _pass_ticks(session: GameSession, seat: str, count: int, start: int = 1) -> list[Any]:
    return [session.step(seat, PASS, 0.0, start + i)[0] for i in range(count)]


def test_schedules_fire_on_the_documented_ticks() -> None:
    """First turn at tick start_step, then every frequency ticks; a round is one external
    action; periodic agents cycle through their map; max_executions stops them."""
    task = tiny_with([periodic("every3", start_step=2, frequency=3),
                      periodic("twice", start_step=1, frequency=1, max_executions=2),
                      periodic("first", start_step=0, frequency=4)])
    session = GameSession(task, seed=5)
    [joined] = session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    assert joined.status is GameStatus.CREATED
    assert [r.tick for r in session.history("first")] == [0], "tick 0: the episode's start"
    replies = _pass_ticks(session, "red", 9)
    assert session.tick_count == 9
    assert [r.tick for r in session.history("every3")] == [2, 5, 8]
    assert [r.tick for r in session.history("twice")] == [1, 2]
    assert [r.tick for r in session.history("first")] == [0, 4, 8]
    assert [r.tick for r in session.history("red")] == list(range(9)), "external actions: the tick in force"
    kinds = [r.action if r.passed else r.action.action_type for r in session.history("every3")]
    assert kinds == [PASS, ActionType.FindData, PASS]
    first_info = replies[0].observation.info["scripted"]
    assert [entry[0] for entry in first_info] == ["first", "twice"], "tick 0 and tick 1, in agents: order"
    assert first_info[0][2] is None and first_info[1][2] is None, "PASS is nil"
    assert replies[1].observation.info["scripted"] == [["every3", 1, None, -1], ["twice", 2, [2, CLIENT, CLIENT], -1]]
    assert replies[2].observation.info["scripted"] == []


def test_variance_keeps_every_gap_within_bounds_and_the_schedule_restarts_each_episode() -> None:
    task = tiny_with([periodic("jitter", start_step=1, frequency=3, variance=2)])
    session = GameSession(task, seed=11)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    _pass_ticks(session, "red", 29)
    ticks = [r.tick for r in session.history("jitter")]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert ticks[0] == 1 and all(1 <= gap <= 5 for gap in gaps) and len(set(gaps)) > 1
    session.step("red", PASS, 0.0, 99)  # the 30th step: timeout
    [done] = session.reset("red", 0.0, 100)
    assert done.status is GameStatus.RESET_DONE and session.tick_count == 0
    assert [r.tick for r in session.history("jitter", last=True)] == ticks
    _pass_ticks(session, "red", 3, start=200)
    assert session.history("jitter")[0].tick == 1


def test_a_round_waits_for_every_external_seat_still_playing() -> None:
    task = tiny_with([periodic("every", start_step=1, frequency=1)],
                     **{"arena.seats": {"Attacker": 2}, "env.required_players": 2})
    session = GameSession(task, seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 1)
    session.join("b", "B", AgentRole.Attacker, 0.0, 2)
    session.step("a", PASS, 0.0, 3)
    session.step("a", PASS, 0.0, 4)
    assert session.tick_count == 0, "b has not acted yet"
    [reply] = session.step("b", PASS, 0.0, 5)
    assert session.tick_count == 1 and [e[0] for e in reply.observation.info["scripted"]] == ["every"]
    [later] = session.step("a", PASS, 0.0, 6)
    assert later.observation.info["scripted"] == [["every", 1, None, -1]], "a sees the turn at its next reply"
    session.quit("b", 0.0, 7)
    assert session.tick_count == 2, "b left: a's action completed the round"
    session.quit("a", 0.0, 8)
    assert session.scripted == [] and session.seats == {}


# ---------------------------------------------------------------------- episodes
def scripted_attacker_task(**settings: Any) -> Any:
    return task_of(DEFAULT, [{"ref": "red", "team": "RED", "type": "kill-chain",
                              "agent_settings": {"start_step": 0, "frequency": 1, **settings}}],
                   **{"arena.seats": {"Defender": 1}, "arena.start": {"Defender": 1}})


def test_a_scripted_attacker_lets_a_learner_defender_play_and_its_win_ends_the_defender_in_that_reply() -> None:
    session = GameSession(scripted_attacker_task(), seed=3)
    [joined] = session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    assert joined.status is GameStatus.CREATED, "a scripted attacker is present: the game starts"
    request = 1
    while True:
        replies = session.step("blue", PASS, 0.0, request)
        request += 1
        assert len(replies) == 1 and replies[0].status is GameStatus.OK
        if replies[0].observation.end:
            break
        assert request < 60
    final = replies[0].observation
    red = session.history("red")
    assert red[-1].status is AgentStatus.Success, "the kill chain reached its goal"
    assert final.info["end_reason"] == "AgentStatus.Fail" and final.reward == -1 + -10
    assert final.info["scripted"][-1][0] == "red", "the winning turn is reported in the same reply"
    assert session.step("blue", PASS, 0.0, request)[0].status is GameStatus.FORBIDDEN
    assert sum(r.reward for r in red) == session.scripted[0].episode_return == 100 - len(red)
    [again] = session.reset("blue", 0.0, request + 1)
    assert again.status is GameStatus.RESET_DONE and session.history("red", last=True) == red


def test_scripted_attackers_end_when_no_external_seat_plays_on() -> None:
    """The learner defender times out: the scripted attacker's game is over (TimeoutReached)."""
    task = task_of(DEFAULT, [{"ref": "red", "team": "RED", "type": "periodic", "agent_settings": {
        "start_step": 1, "frequency": 1}, "action_space": {"action_map": {0: {"action": "do-nothing"}}}}],
                   **{"arena.seats": {"Defender": 1}, "arena.start": {"Defender": 1},
                      "coordinator.agents.Defender.max_steps": 5})
    session = GameSession(task, seed=3)
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    replies = [session.step("blue", PASS, 0.0, i)[0] for i in range(1, 6)]
    assert replies[-1].observation.end is True
    assert replies[-1].observation.info["end_reason"] == "AgentStatus.Success"
    assert replies[-1].observation.reward == -1 + 100
    assert session.scripted[0].status is AgentStatus.TimeoutReached
    assert session.history("red")[-1].reward == -1 - 10


def test_same_seed_same_game_and_histories_record_the_scripted_actions() -> None:
    def run(seed: int) -> dict[str, tuple[HistoryRecord, ...]]:
        session = GameSession(load_task(DEFENDED_TASK), seed=seed)
        play_attacker(session, kill_chain_attacker, random.Random(4), episodes=3)
        return {ref: session.history(ref, last=last) for ref in ("red", "blue_defender", "green_user")
                for last in (False,)} | {"red-last": session.history("red", last=True)}

    first, second = run(8), run(8)
    assert first == second
    assert run(9) != first
    blue, green = first["blue_defender"], first["green_user"]
    assert blue and green
    assert {r.action.action_type for r in blue if not r.passed} <= {ActionType.FindData, ActionType.BlockIP}
    assert [r.tick for r in blue] == list(range(1, 2 * len(blue), 2)), "start_step 1, frequency 2"
    assert any(r.passed for r in green) and any(not r.passed for r in green)


def test_scripted_seats_are_not_hosted_seats() -> None:
    """READY lists only external seats; RELEASE never names a scripted one; no replies."""
    from protocol import PROTOCOL_FRAME, Command, pack, seq_bytes

    host = GameHost({"defended_tiny": load_task(DEFENDED_TASK)}, "w", trace=True)
    host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"c", Command.JOIN.frame, b"s1", seq_bytes(1),
                  pack({"task": "defended_tiny", "role": "Attacker", "game": "g"})], now=0.0)
    [game] = host.hosted()
    assert [seat[0] for seat in game["seats"]] == ["s1"]
    session = host.games["g"].session
    assert [s.seat for s in session.scripted] == ["scripted:blue_defender", "scripted:green_user"]
    out = host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"c", Command.STEP.frame, b"s1", seq_bytes(2),
                        b"\xc0"], now=0.0)
    assert [frames[4] for frames in out] == [b"s1"]
    host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"c", Command.QUIT.frame, b"s1", seq_bytes(3),
                  b"\xc0"], now=0.0)
    assert host.released == ["s1"] and host.closed == ["g"]
    events = [event for _, batch in host.take_events() for event in batch]
    scripted = {e["seat"] for e in events if e.get("scripted")}
    assert scripted == {"scripted:blue_defender", "scripted:green_user"}
    assert {e["kind"] for e in events if e.get("scripted")} >= {"join", "step", "quit"}


def test_defended_tiny_in_process_scripted_agents_act_and_breakdowns_add_up() -> None:
    """Acceptance, in process: the YAML alone gives a blocking defender and a benign user
    that act (history, trace), and every step reply's breakdown adds up to its reward."""
    session = GameSession(load_task(DEFENDED_TASK), seed=21)
    session.events = []
    episodes = play_attacker(session, kill_chain_attacker, random.Random(2), episodes=4)
    outcomes = set()
    for steps in episodes:
        for observation in steps:
            assert breakdown_adds_up(observation), observation.info
            assert set(observation.info) >= {"reward_breakdown", "scripted"}
        outcomes.add(steps[-1].info["end_reason"])
        assert set(steps[-1].info["reward_breakdown"]) == {"netsecgame", "new-controlled-host", "data-exfiltrated"}
    assert outcomes <= {"AgentStatus.Success", "AgentStatus.TimeoutReached"}
    traced = [e for e in session.events if e["kind"] == "step" and e.get("scripted")]
    assert {e["seat"] for e in traced} == {"scripted:blue_defender", "scripted:green_user"}
    episodes_traced = [e for e in session.events if e["kind"] == "episode"]
    assert {e["seat"] for e in episodes_traced} == {"red", "scripted:blue_defender", "scripted:green_user"}
    red = session.history("red")
    assert math.isclose(sum(r.reward for r in red), session.seats["red"].episode_return, abs_tol=1e-9)
    assert session.history("blue_defender") and session.history("green_user")


def test_tasks_without_scripted_agents_keep_their_info(games: Any) -> None:
    game = games(load_task(TINY_TASK))
    game.call("red", join("Red"))
    assert game.call("red", scan(CLIENT, "192.168.1.0/24")).observation.info == {}
    game.send("red", QUIT)
    game2 = games(load_task(TINY_TASK))
    game2.call("r", join("R"))
    for _ in range(30):
        last = game2.call("r", PASS)
    assert last.observation.info == {"end_reason": "AgentStatus.TimeoutReached"}
    assert game2.call("r", reset()).status is GameStatus.RESET_DONE


def test_map_entries_follow_a_topology_remapping_and_random_agents_play_valid_actions() -> None:
    """Names bind to the current addresses when the agent acts; ``random`` without a map
    draws among NetSecGame's valid actions of its own state."""
    task = tiny_with([periodic("green", start_step=1, frequency=1),
                      {"ref": "blue", "team": "BLUE", "type": "random", "agent_settings": {"start_step": 1,
                                                                                          "frequency": 1}}],
                     **{"env.use_dynamic_addresses": True})
    session = GameSession(task, seed=2)
    session.join("red", "Red", AgentRole.Attacker, 0.0, 0)
    _pass_ticks(session, "red", 2)
    before = session.history("green")[1].action.parameters["source_host"]
    assert str(before) == CLIENT
    [done] = session.reset("red", 0.0, 10, randomize_topology=True, seed=5)
    assert done.status is GameStatus.RESET_DONE
    _pass_ticks(session, "red", 2, start=11)
    catalog = catalog_of(session.world)
    now = catalog.host_ips[catalog.slot_named("client_1")]
    assert now != before and session.history("green")[1].action.parameters["source_host"] == now
    assert session.history("green")[1].changed, "the remapped FindData still reads client_1's data"
    blue_seat = session.scripted[1]
    assert blue_seat.ref == "blue"
    played = [r.action for r in session.history("blue")]
    assert len(played) == 2 and all(not r.passed for r in session.history("blue"))
    assert all(a.parameters["source_host"] in blue_seat.state.controlled_hosts for a in played), \
        "valid actions of its own (remapped) state"
