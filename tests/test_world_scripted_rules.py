"""world.scripted, rule by rule: a scripted agent's schedule and choice of action, its
seeding, its seat's statuses, histories, trace events and trajectories (the rules in
world/scripted.py's module docstring; reference netsecgame.md §3.4, §3.7; PROTOCOL.md §6)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from agents.utils import sorted_valid_actions
from protocol import PASS, Action, ActionType, AgentRole, AgentStatus, GameState, GameStatus
from world import GameSession, TaskConfig
from world.catalog import catalog_of
from world.game_world import GameWorld
from world.scripted import ScriptedAgent
from world.seats import _Seat
from world.trajectory import Trajectory, trajectory_file_name

from .scripted_samples import periodic, tiny_with

PWT, PLAYING, TIMEOUT = AgentStatus.PlayingWithTimeout, AgentStatus.Playing, AgentStatus.TimeoutReached
DEFENDER_GAME = {"arena.seats": {"Defender": 1}, "arena.start": {"Defender": 1}}


def _agent(kind: str, team: str = "BLUE", **settings: Any) -> dict[str, Any]:
    """An entry of ``kind`` without an action map, acting every tick from tick 1."""
    return {"ref": f"{kind}-{team}", "team": team, "type": kind,
            "agent_settings": {"start_step": 1, "frequency": 1, **settings}}


def _mapped(kind: str, **settings: Any) -> dict[str, Any]:
    """A GREEN entry of ``kind`` with periodic()'s two-entry map (do-nothing, FindData)."""
    return {**periodic(kind), "type": kind, "agent_settings": {"start_step": 1, "frequency": 1, **settings}}


def _session(task: TaskConfig, seat: str = "red", role: AgentRole = AgentRole.Attacker, seed: int = 3) -> GameSession:
    session = GameSession(task, seed=seed)
    [joined] = session.join(seat, seat.title(), role, 0.0, 0)
    assert joined.status is GameStatus.CREATED
    return session


def _turns(agent: ScriptedAgent, entry: _Seat, world: GameWorld, count: int) -> list[Any]:
    return [agent.turn(entry, world) for _ in range(count)]


# ---------------------------------------------------------------------- schedules
def test_a_fresh_agent_is_due_at_its_start_step_and_plays_its_map_from_entry_zero() -> None:
    """A new ScriptedAgent (before any new_episode) starts its schedule at start_step with
    no turn taken: periodic plays entry 0 first, and max_executions counts from there."""
    session = _session(tiny_with([_mapped("periodic", max_executions=2)]))
    entry, world = session.scripted[0], session.world
    agent = ScriptedAgent(entry.script.spec)  # type: ignore[union-attr]
    assert agent.due(1) and not agent.due(0) and not agent.due(2)
    first = agent.turn(entry, world)
    assert first is PASS, "entry 0 (do-nothing) first"
    assert agent.next_turn == 2 and agent.due(2)
    second = agent.turn(entry, world)
    assert isinstance(second, Action) and second.action_type is ActionType.FindData
    assert not agent.due(3), "max_executions 2: no third turn"


def test_a_gap_is_frequency_plus_a_draw_within_variance() -> None:
    """next turn = frequency + randint(-variance, variance) on the agent's own RNG."""
    session = _session(tiny_with([_mapped("periodic", frequency=3, variance=2)]))
    entry, world = session.scripted[0], session.world
    agent = ScriptedAgent(entry.script.spec)  # type: ignore[union-attr]
    agent.new_episode(1234)
    expected, draws = [], random.Random(1234)
    tick = 1
    for _ in range(12):
        tick += 3 + draws.randint(-2, 2)
        expected.append(tick)
    ticks = []
    for _ in range(12):
        agent.turn(entry, world)
        ticks.append(agent.next_turn)
    assert ticks == expected


# ---------------------------------------------------------------------- choosing an action
def test_random_with_a_map_draws_uniform_entries_and_no_gap_draw_without_variance() -> None:
    """``random``: a uniform entry of its map, randrange(size); variance 0 draws nothing else."""
    session = _session(tiny_with([_mapped("random")]))
    entry, world = session.scripted[0], session.world
    spec = entry.script.spec  # type: ignore[union-attr]
    agent = ScriptedAgent(spec)
    agent.new_episode(99)
    reference = random.Random(99)
    indexes = [reference.randrange(2) for _ in range(30)]
    catalog = catalog_of(world)
    assert _turns(agent, entry, world, 30) == [spec.mapped_action(i, catalog) for i in indexes]
    assert len(set(indexes)) == 2


def test_probabilistic_draws_entries_with_their_probabilities() -> None:
    """``probabilistic``: choices(range(size), weights=action_probabilities)."""
    session = _session(tiny_with([_mapped("probabilistic", action_probabilities={0: 0.1, 1: 0.9})]))
    entry, world = session.scripted[0], session.world
    spec = entry.script.spec  # type: ignore[union-attr]
    agent = ScriptedAgent(spec)
    agent.new_episode(7)
    reference = random.Random(7)
    indexes = [reference.choices(range(2), weights=(0.1, 0.9))[0] for _ in range(40)]
    catalog = catalog_of(world)
    assert _turns(agent, entry, world, 40) == [spec.mapped_action(i, catalog) for i in indexes]
    assert indexes.count(1) > indexes.count(0) > 0


def test_random_without_a_map_plays_valid_actions_with_blocks_for_defenders_only() -> None:
    """``random`` without a map: a uniform choice among sorted_valid_actions of its own state,
    BlockIP included for a defender and not for an attacker."""
    session = _session(tiny_with([_agent("random", "BLUE"), _agent("random", "RED")]))
    world = session.world
    for entry, blocks in zip(session.scripted, (True, False), strict=True):
        assert entry.role is (AgentRole.Defender if blocks else AgentRole.Attacker)
        candidates = sorted_valid_actions(entry.state, include_blocks=blocks)
        other = sorted_valid_actions(entry.state, include_blocks=not blocks)
        assert candidates and len(candidates) != len(other)
        agent = ScriptedAgent(entry.script.spec)  # type: ignore[union-attr]
        agent.new_episode(5)
        reference = random.Random(5)
        played = _turns(agent, entry, world, 25)
        assert played == [reference.choice(candidates) for _ in range(25)]
        assert any(a.action_type is ActionType.BlockIP for a in played) is blocks


def test_an_agent_without_any_action_passes() -> None:
    """No valid action (``random``) or no action from the policy: PASS."""
    session = _session(tiny_with([_agent("random", "BLUE"), _agent("blocking-defender", "BLUE")]))
    for scripted in session.scripted:
        empty = _Seat("x", "x", AgentRole.Defender, GameState(), GameState(),
                      Trajectory("x", AgentRole.Defender, GameState()), 0.0)
        agent = ScriptedAgent(scripted.script.spec)  # type: ignore[union-attr]
        agent.new_episode(1)
        assert _turns(agent, empty, session.world, 3) == [PASS, PASS, PASS]


# ---------------------------------------------------------------------- seeding
def test_each_episode_seeds_the_agents_with_64_bits_of_the_game_rng_after_the_start_states() -> None:
    """Seeded with getrandbits(64) of the game's RNG, in agents: order, after every start
    state (and goal) of the episode was built."""
    task = tiny_with([periodic("g", start_step=1, frequency=1), periodic("h", start_step=2, frequency=1)])
    session = _session(task)
    session.step("red", PASS, 0.0, 1)
    [done] = session.reset("red", 0.0, 2, seed=77)
    assert done.status is GameStatus.RESET_DONE
    replay = random.Random(77)
    world = GameWorld(task.scenario, replay, use_firewall=task.use_firewall)
    for role in (AgentRole.Attacker, AgentRole.Benign, AgentRole.Benign):
        world.start_state(task.roles[role].start)
        world.goal_state(task.roles[role].goal)
    for entry in session.scripted:
        assert entry.script is not None
        assert entry.script.rng.getstate() == random.Random(replay.getrandbits(64)).getstate()


# ---------------------------------------------------------------------- rounds
def test_a_seat_holding_a_reset_does_not_hold_up_the_round() -> None:
    """A round waits for every external seat still playing: not ended and no request held."""
    task = tiny_with([periodic("every", start_step=1, frequency=1)],
                     **{"arena.seats": {"Attacker": 2}, "env.required_players": 2})
    session = GameSession(task, seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 1)
    session.join("b", "B", AgentRole.Attacker, 0.0, 2)
    assert session.reset("b", 0.0, 3) == [], "held until a asks too"
    session.step("a", PASS, 0.0, 4)
    assert session.tick_count == 1 and [r.tick for r in session.history("every")] == [1]


# ---------------------------------------------------------------------- histories
def test_history_finds_seat_ids_before_refs_and_names_an_unknown_seat() -> None:
    """history(seat): by seat id first, else by ref (a proxy's seat, a scripted agent);
    an unknown one is a KeyError naming it."""
    proxy = {"ref": "b", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [{"type": "step"}]}}
    task = tiny_with([proxy], **{"arena.seats": {"Attacker": 2}, "env.required_players": 2})
    session = GameSession(task, seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 1)
    session.join("b", "B", AgentRole.Attacker, 0.0, 2)
    assert session.seats["a"].ref == "b" and session.seats["b"].ref is None, "the first seat plays the proxy"
    session.step("a", PASS, 0.0, 3)
    session.step("a", PASS, 0.0, 4)
    session.step("b", PASS, 0.0, 5)
    assert len(session.history("a")) == 2
    assert len(session.history("b")) == 1, "seat b, not the seat that plays ref b"
    try:
        session.history("nobody")
    except KeyError as error:
        assert error.args == ("no seat or agent 'nobody' in this game",)
    else:
        raise AssertionError("no KeyError")


# ---------------------------------------------------------------------- episodes, traces, trajectories
def _read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_unwatched_scripted_attackers_time_out_and_their_records_events_and_trajectories_say_so(tmp_path: Path) -> None:
    """The learner defender times out: scripted attackers end with TimeoutReached (one that
    never took a turn gets its final reward through its reward function); statuses start
    as PlayingWithTimeout (attackers) and Playing (defenders) every episode; trace events
    and saved trajectories name the scripted agents by their refs."""
    red = {**periodic("red"), "team": "RED", "agent_settings": {"start_step": 0, "frequency": 1}}
    late = {**periodic("late"), "team": "RED", "agent_settings": {"start_step": 50},
            "reward_function": {"reward_components": [{"type": "netsecgame"}]}}
    task = tiny_with([red, late], **DEFENDER_GAME, **{"coordinator.agents.Defender.max_steps": 4,
                                                       "env.save_trajectories": True,
                                                       "arena.trajectory_dir": str(tmp_path)})
    session = GameSession(task, seed=4)
    session.events = []
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    request = 1
    for _episode in range(2):
        for _ in range(4):
            [reply] = session.step("blue", PASS, 0.0, request)
            request += 1
        assert reply.observation.end and reply.observation.info["end_reason"] == "AgentStatus.Success"
        records = session.history("red")
        assert [r.tick for r in records] == [0, 1, 2, 3, 4]
        assert [r.status for r in records] == [PWT, PWT, PWT, PWT, TIMEOUT]
        assert [r.status for r in session.history("blue")] == [PLAYING, PLAYING, PLAYING, AgentStatus.Success]
        late_seat = session.scripted[1]
        assert late_seat.status is TIMEOUT and late_seat.reward == -10 and late_seat.breakdown == {"netsecgame": -10}
        assert [s.trajectory.end_reason for s in session.scripted] == [TIMEOUT, TIMEOUT]
        [done] = session.reset("blue", 0.0, request)
        request += 1
        assert done.status is GameStatus.RESET_DONE
    red_file = tmp_path / trajectory_file_name("red", AgentRole.Attacker)
    late_file = tmp_path / trajectory_file_name("late", AgentRole.Attacker)
    for line in _read_lines(red_file):
        assert (line["agent_name"], line["agent_role"], line["end_reason"]) == ("red", "Attacker",
                                                                                  "AgentStatus.TimeoutReached")
        actions = line["trajectory"]["actions"]
        assert len(actions) == 2 and len(line["trajectory"]["states"]) == 3
        assert {a["action_type"] for a in actions} == {"ActionType.FindData"}
    assert len(_read_lines(red_file)) == 2
    assert [line["agent_name"] for line in _read_lines(late_file)] == ["late", "late"]
    events = session.events
    joins = [e for e in events if e["kind"] == "join" and e.get("scripted")]
    assert [(e["seat"], e["name"]) for e in joins] == [("scripted:red", "red"), ("scripted:late", "late")]
    steps = [e for e in events if e["kind"] == "step" and e["seat"] == "scripted:red"]  # 2 episodes, a tick 0
    assert len(steps) == 11 and all(e["end"] is False for e in steps)
    session.quit("blue", 0.0, request)
    quits = [e for e in session.events if e["kind"] == "quit" and e.get("scripted")]
    assert [(e["seat"], e["reason"]) for e in quits] == [("scripted:red", "the last external seat left"),
                                                          ("scripted:late", "the last external seat left")]


def test_a_scripted_turn_that_ends_the_agent_marks_its_trajectory_and_step_event() -> None:
    """A scripted attacker's own turn times it out: its trajectory's end reason and its
    step event (end true) say so; another attacker still plays, so the defender plays on
    (defenders end when every attacker ended)."""
    red = {**periodic("red"), "team": "RED", "agent_settings": {"start_step": 0, "frequency": 1}}
    late = {**periodic("late"), "team": "RED", "agent_settings": {"start_step": 50}}
    task = tiny_with([red, late], **DEFENDER_GAME, **{"coordinator.agents.Attacker.max_steps": 2})
    session = GameSession(task, seed=4)
    session.events = []
    session.join("blue", "Blue", AgentRole.Defender, 0.0, 0)
    [reply] = session.step("blue", PASS, 0.0, 1)
    seat = session.scripted[0]
    assert seat.status is TIMEOUT and seat.trajectory.end_reason is TIMEOUT
    assert len(seat.trajectory) == 1, "do-nothing, then FindData: one upstream-format action"
    assert reply.status is GameStatus.OK and reply.observation.end is False, "late still plays"
    assert not session.seats["blue"].ended and not session.scripted[1].ended
    steps = [e for e in session.events if e["kind"] == "step" and e.get("scripted")]
    assert [(e["step"], e["end"], e["end_reason"]) for e in steps] == [
        (1, False, None), (2, True, "AgentStatus.TimeoutReached")]
