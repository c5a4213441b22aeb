"""world.session_reset, rule by rule: reset consensus (seed and topology votes, the
conflict replies' texts), reseeding, when the topology changes, the episode counter, and
the reset parameters' defaults (reference netsecgame.md §3.5, §6.10-§6.12; DESIGN §3
"Randomness", "Upstream's main branch")."""

from __future__ import annotations

import copy
from typing import Any

from protocol import Action, ActionType, AgentRole, ErrorCode, GameState, GameStatus
from world import GameSession, TaskConfig, parse_task

from .conftest import CNC, WINNING_ATTACK, reset
from .world_samples import DEFAULT_TASK, task_with

TWO = {"arena.seats": {"Attacker": 2}, "arena.start": {"Attacker": 2}}
ONE = {"arena.seats": {"Attacker": 1}, "arena.start": {"Attacker": 1}}



def pair(**changes: Any) -> GameSession:
    session = GameSession(task_with(**TWO, **changes), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, "ja")
    session.join("b", "B", AgentRole.Attacker, 0.0, "jb")
    return session


def test_topology_votes_count_only_from_agents_that_gave_a_seed() -> None:
    """Reference §3.5 step 2: a seedless agent's randomize_topology is not a vote, so it
    cannot conflict with a seeded agent's."""
    session = pair()
    assert session.handle("a", reset(None, randomize=True), 1.0, "ra") == []
    replies = session.handle("b", reset(5, randomize=False), 1.0, "rb")
    assert [(r.request, r.status) for r in replies] == [("ra", GameStatus.RESET_DONE), ("rb", GameStatus.RESET_DONE)]


def test_conflicting_votes_answer_every_agent_with_the_reason() -> None:
    """Reference §3.5 (without upstream's stop, DESIGN §3): distinct seeds or topology votes
    answer every waiting reset BAD_REQUEST with a reason naming the conflict."""
    session = pair()
    session.handle("a", reset(2), 1.0, "ra")
    replies = session.handle("b", reset(1), 1.0, "rb")
    assert [(r.request, r.code) for r in replies] == [("ra", ErrorCode.SEED_CONFLICT), ("rb", ErrorCode.SEED_CONFLICT)]
    assert all(r.message == {"message": "Agents disagree on the seed (1, 2); nothing was reset."} for r in replies)
    session.handle("a", reset(3, randomize=True), 2.0, "ta")
    replies = session.handle("b", reset(3), 2.0, "tb")
    assert [r.code for r in replies] == [ErrorCode.TOPOLOGY_CONFLICT] * 2
    assert all(r.message == {"message": "Agents disagree on the topology change; nothing was reset."}
               for r in replies)
    assert session.episode == 0


def _random_task() -> TaskConfig:
    document = copy.deepcopy(DEFAULT_TASK)
    document["coordinator"]["agents"]["Attacker"]["start_position"]["controlled_hosts"] = ["random"]
    document["coordinator"]["agents"]["Attacker"]["goal"]["known_data"] = {CNC: ["random"]}
    document["arena"]["seats"] = document["arena"]["start"] = {"Attacker": 1}
    return parse_task(document, "random.yaml")


def test_an_agreed_seed_reseeds_the_games_random() -> None:
    """DESIGN §3 "Randomness" / reference §6.12: an agreed reset seed reseeds the game's one
    Random, so games built from different seeds draw the same next episode."""
    task = _random_task()
    drawn = []
    for seed in (1, 2, 3):
        session = GameSession(task, seed=seed)
        session.join("a", "A", AgentRole.Attacker, 0.0, 0)
        [done] = session.reset("a", 0.0, 1, seed=7)
        drawn.append((done.observation.state, session.seats["a"].goal, session.rng.random()))
    assert drawn[0] == drawn[1] == drawn[2]


def _addresses(state: GameState) -> frozenset[Any]:
    return frozenset(state.controlled_hosts)


def test_the_topology_changes_only_on_an_agreed_true_vote_with_dynamic_addresses() -> None:
    """Reference §3.5 table: new addresses only when env.use_dynamic_addresses is true and
    the agreed vote is true; a reset without seed gives no vote (no change); the reset
    parameters default to no trajectory and no topology change."""
    session = GameSession(task_with(**ONE, **{"env.use_dynamic_addresses": True}), seed=1)
    [joined] = session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    start = _addresses(joined.observation.state)
    [seedless] = session.reset("a", 0.0, 1, randomize_topology=True)
    assert _addresses(seedless.observation.state) == start
    [defaults] = session.reset("a", 0.0, 2, seed=3)
    assert _addresses(defaults.observation.state) == start
    [wire_defaults] = session.handle("a", Action(ActionType.ResetGame, {"seed": 3}), 0.0, 3)
    assert _addresses(wire_defaults.observation.state) == start
    [voted_false] = session.reset("a", 0.0, 4, seed=3, randomize_topology=False)
    assert _addresses(voted_false.observation.state) == start
    [changed] = session.reset("a", 0.0, 5, seed=3, randomize_topology=True)
    assert _addresses(changed.observation.state) != start
    fixed = GameSession(task_with(**ONE), seed=1)
    [joined] = fixed.join("a", "A", AgentRole.Attacker, 0.0, 0)
    [kept] = fixed.reset("a", 0.0, 1, seed=3, randomize_topology=True)
    assert _addresses(kept.observation.state) == _addresses(joined.observation.state)


def test_a_trajectory_is_returned_only_when_asked() -> None:
    """Reference §2.2 / §3.5 step 5: last_trajectory only with request_trajectory true; the
    parameter defaults to false, both on the wire and in GameSession.reset()."""
    session = GameSession(task_with(**ONE), seed=1)
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    for number, action in enumerate(WINNING_ATTACK):
        session.step("a", action, 0.0, 1 + number)
    [direct] = session.reset("a", 0.0, 10)
    assert direct.status is GameStatus.RESET_DONE and "last_trajectory" not in direct.message
    [wire] = session.handle("a", Action(ActionType.ResetGame, {}), 0.0, 11)
    assert wire.status is GameStatus.RESET_DONE and "last_trajectory" not in wire.message


def test_each_reset_counts_a_new_episode() -> None:
    """Trace events carry the episode number: 0 before any reset, then 1, 2 (PROTOCOL.md
    trace events)."""
    session = GameSession(task_with(**ONE), seed=1)
    session.events = []
    session.join("a", "A", AgentRole.Attacker, 0.0, 0)
    session.reset("a", 0.0, 1)
    session.reset("a", 0.0, 2)
    assert [(e["kind"], e["episode"]) for e in session.events] == [("join", 0), ("reset", 1), ("reset", 2)]
    assert session.episode == 2


def test_a_reset_from_a_seat_that_has_not_joined() -> None:
    """DESIGN §3: a bad request gets BAD_REQUEST with a reason; the reply goes to that seat
    and request."""
    session = GameSession(task_with(**ONE), seed=1)
    [reply] = session.reset("ghost", 0.0, "r")
    assert (reply.seat, reply.request, reply.code) == ("ghost", "r", ErrorCode.NOT_JOINED)
    assert reply.message == {"message": "This seat has not joined the game (or has left it); send JoinGame first."}
