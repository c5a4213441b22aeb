"""Reward functions (world.rewards): the default is NetSecGame's arithmetic exactly; every
component does what its table says; breakdowns add up to the reward, the final one too."""

from __future__ import annotations

import math
import random
from typing import Any

from agents import generate_valid_actions
from agents.local import LocalMatch
from agents.policies import blocking_defender, random_attacker
from protocol import PASS, AgentRole, AgentStatus, Data, GameStatus
from world import GameSession

from .conftest import CLIENT, CNC, QUIT, SMB, WINNING_ATTACK, block, join, reset, scan
from .scripted_samples import DEFAULT, breakdown_adds_up, task_of

ALL_STEP_PARTS = [{"type": kind} for kind in ("netsecgame", "step", "new-controlled-host", "new-data",
                                                 "data-exfiltrated", "detected")]


def proxy(ref: str, team: str, components: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ref": ref, "team": team, "type": "proxy", "reward_function": {"reward_components": components}}


def defended(agents: list[dict[str, Any]] | None, **changes: Any) -> Any:
    """The default task (attacker and defender seats, both needed to start)."""
    return task_of(DEFAULT, agents, **{"arena.start": {"Attacker": 1, "Defender": 1}, **changes})


# Totals of seeded LocalMatch runs (a uniform attacker vs the blocking defender, global
# defender on), recorded with the code before reward functions existed: (red, blue) returns.
RECORDED = {
    1: [(-21.0, 90.0), (-27.0, 93.0), (-26.0, 85.0), (-39.0, 72.0)],
    7: [(-21.0, 90.0), (-24.0, 87.0), (-37.0, 74.0), (-29.0, 82.0)],
    12: [(-18.0, 93.0), (-26.0, 85.0), (-58.0, 53.0), (-18.0, 93.0)],
}


def _key(action: Any) -> tuple[Any, ...]:
    """An order of actions by what makes them equal (a datum's owner, id and type)."""
    return (action.action_type.value, tuple(sorted(
        (name, (v.owner, v.id, v.type) if isinstance(v, Data) else str(v)) for name, v in action.parameters.items())))


def uniform_attacker(observation: Any, rng: random.Random) -> Any:
    return rng.choice(sorted(generate_valid_actions(observation.state), key=_key))


def _returns(task: Any, seed: int) -> list[tuple[float, float]]:
    match = LocalMatch(task, [("red", AgentRole.Attacker, uniform_attacker),
                              ("blue", AgentRole.Defender, blocking_defender)], seed=seed)
    return [tuple(p.episode_return for p in result.players) for result in match.play(4)]  # type: ignore[misc]


def test_the_default_reward_reproduces_the_recorded_totals() -> None:
    """No agents: section, and an explicit netsecgame x 1 function for both seats: the same
    seeded runs give exactly the totals recorded before reward functions existed."""
    changes = {"env.use_global_defender": True, "arena.start": {"Attacker": 1}}
    plain = task_of(DEFAULT, None, **changes)
    explicit = task_of(DEFAULT, [proxy("r", "RED", [{"type": "netsecgame"}]),
                                 proxy("b", "BLUE", [{"type": "netsecgame", "weight": 1}])], **changes)
    for seed, recorded in RECORDED.items():
        assert _returns(plain, seed) == recorded
        assert _returns(explicit, seed) == recorded


def test_explicit_netsecgame_matches_the_default_step_by_step_with_a_breakdown(games: Any) -> None:
    plain, explicit = games(defended(None)), games(defended([proxy("r", "RED", [{"type": "netsecgame"}])]))
    for game in (plain, explicit):
        game.send("red", join("Red"))
        game.call("blue", join("Blue", "Defender"))
    for action in WINNING_ATTACK:
        a, b = plain.call("red", action).observation, explicit.call("red", action).observation
        assert a.reward == b.reward and a.state == b.state
        assert "reward_breakdown" not in a.info and b.info["reward_breakdown"] == {"netsecgame": b.reward}
    assert b.reward == 99 and b.info["end_reason"] == "AgentStatus.Success"
    for game in (plain, explicit):
        told = game.call("blue", scan("192.168.1.1", "192.168.1.0/24")).observation
        assert told.reward == -10 and "reward_breakdown" not in told.info, "the defender keeps the default"
        game.send("red", QUIT)
        game.send("blue", QUIT)


def test_shaping_components_on_the_winning_attack(games: Any) -> None:
    components = [*ALL_STEP_PARTS, {"type": "new-controlled-host", "weight": 0.5},
                  {"type": "success", "weight": 2}, {"type": "fail"}]
    game = games(defended([proxy("r", "RED", components)], **{"arena.start": {"Attacker": 1}}))
    game.call("red", join("Red"))
    parts = []
    for action in WINNING_ATTACK:
        observation = game.call("red", action).observation
        assert breakdown_adds_up(observation)
        parts.append(observation.info["reward_breakdown"])
    keys = {"netsecgame", "step", "new-controlled-host", "new-data", "data-exfiltrated", "detected",
            "new-controlled-host#2", "success", "fail"}
    assert all(set(p) == keys for p in parts)
    scanned, found, exploited, data, exfiltrated = parts
    assert scanned["new-controlled-host"] == 0 and scanned["netsecgame"] == scanned["step"] == -1
    assert exploited["new-controlled-host"] == 1 and exploited["new-controlled-host#2"] == 0.5
    assert data["new-data"] == 4 and data["data-exfiltrated"] == 0, "the SMB server's three data and its log"
    assert exfiltrated["new-data"] == 1 and exfiltrated["data-exfiltrated"] == 1
    assert exfiltrated["netsecgame"] == 99 and exfiltrated["success"] == 200 and exfiltrated["fail"] == 0
    assert found["new-data"] == 0 and all(p["detected"] == 0 for p in parts)


def test_detected_and_fail_with_the_global_defender(games: Any) -> None:
    components = [{"type": "netsecgame"}, {"type": "detected", "weight": -7}, {"type": "fail", "weight": 0.5}]
    task = defended([proxy("r", "RED", components)], **{"env.use_global_defender": True,
                                                        "arena.seats": {"Attacker": 1},
                                                        "arena.start": {"Attacker": 1}})
    for seed in range(1, 40):  # detection is a roll: the first seed whose game ends in one
        game = games(task, seed=seed)
        game.call("red", join("Red"))
        for _ in range(50):
            observation = game.call("red", scan(CLIENT, "192.168.1.0/24")).observation
            assert breakdown_adds_up(observation)
            if observation.end:
                break
        assert observation.end
        if observation.info["end_reason"] == "AgentStatus.Fail":
            break
        assert observation.info["reward_breakdown"]["detected"] == 0
    assert observation.info["end_reason"] == "AgentStatus.Fail"
    assert observation.info["reward_breakdown"] == {"netsecgame": -11, "detected": -7, "fail": -5}
    assert observation.reward == -23


def test_attacker_blocked_and_false_positive_for_a_defender(games: Any) -> None:
    components = [{"type": "netsecgame"}, {"type": "attacker-blocked", "weight": 3}, {"type": "false-positive"},
                  {"type": "success"}]
    game = games(defended([proxy("b", "BLUE", components)], **{"coordinator.agents.Attacker.max_steps": 3}))
    game.send("red", join("Red"))
    game.call("blue", join("Blue", "Defender"))
    first = game.call("blue", block("192.168.2.1", CLIENT, CNC)).observation  # the attacker controls the C&C
    assert first.info["reward_breakdown"]["attacker-blocked"] == 3
    again = game.call("blue", block("192.168.2.1", CLIENT, CNC)).observation
    assert again.info["reward_breakdown"]["attacker-blocked"] == 0, "nothing new was blocked"
    other = game.call("blue", block("192.168.2.1", CLIENT, SMB)).observation
    assert other.info["reward_breakdown"]["attacker-blocked"] == 0, "the attacker does not control the SMB server"
    refused = game.call("blue", scan(CLIENT, "192.168.1.0/24")).observation  # its own block refuses it
    assert refused.reward == -1
    for _ in range(3):
        game.call("red", scan(CLIENT, "192.168.1.0/24"))  # the attacker times out
    told = game.call("blue", scan("192.168.1.1", "192.168.1.0/24")).observation
    assert told.end and told.info["end_reason"] == "AgentStatus.Success"
    false_positives = game.session.world.false_positives["blue"]
    assert false_positives >= 1
    assert told.info["reward_breakdown"] == {"netsecgame": 100 - 5 * false_positives, "attacker-blocked": 0,
                                             "false-positive": -5 * false_positives, "success": 100}
    assert breakdown_adds_up(told)
    history = game.session.history("blue")
    assert math.isclose(sum(r.reward for r in history), game.session.seats["blue"].episode_return)
    assert history[-1].status is AgentStatus.Success
    game.send("red", QUIT)
    game.send("blue", QUIT)


def test_shared_reward_takes_the_other_agents_latest_reward() -> None:
    agents = [proxy("red", "RED", [{"type": "netsecgame"}, {"type": "shared-reward", "weight": 0.5,
                                                             "options": {"agent": "green"}}]),
              {"ref": "green", "team": "GREEN", "type": "benign", "agent_settings": {"start_step": 1, "frequency": 1},
               "reward_function": {"reward_components": [{"type": "step", "weight": 4}]}}]
    task = task_of(DEFAULT, agents, **{"arena.seats": {"Attacker": 1}, "arena.start": {"Attacker": 1}})
    session = GameSession(task, seed=2)
    session.join("me", "Me", AgentRole.Attacker, 0.0, 0)
    [first] = session.step("me", PASS, 0.0, 1)
    assert first.observation.info["reward_breakdown"] == {"netsecgame": -1, "shared-reward": 0.0}, \
        "green has not acted yet"
    [second] = session.step("me", PASS, 0.0, 2)
    assert second.observation.info["reward_breakdown"] == {"netsecgame": -1, "shared-reward": 0.5 * -4}
    assert session.history("green")[0].breakdown == {"step": -4}


def test_every_reply_of_a_seeded_game_adds_up(games: Any) -> None:
    """Random play with every component over three episodes: breakdowns always add up."""
    components = [*ALL_STEP_PARTS, {"type": "success"}, {"type": "fail", "weight": 0.3},
                  {"type": "attacker-blocked"}, {"type": "false-positive", "weight": 1.5}]
    game = games(defended([proxy("r", "RED", components), proxy("b", "BLUE", components)]))
    red_join = game.send("red", join("Red"))
    observations = {"blue": game.call("blue", join("Blue", "Defender")).observation,
                    "red": game.reply(red_join).observation}
    policies = {"red": random_attacker, "blue": blocking_defender}
    rng = random.Random(3)
    checked = 0
    for _ in range(3):
        ended: set[str] = set()
        waiting: dict[str, int] = {}
        for _ in range(300):
            if len(ended) == 2:
                break
            for seat, policy in policies.items():
                if seat not in ended and seat not in waiting:
                    waiting[seat] = game.send(seat, policy(observations[seat], rng))
            for seat, request in list(waiting.items()):
                reply = game.reply(request)
                if reply is None:
                    continue
                del waiting[seat]
                assert reply.status is GameStatus.OK
                observations[seat] = reply.observation
                assert breakdown_adds_up(reply.observation)
                checked += 1
                if reply.observation.end:
                    ended.add(seat)
        assert len(ended) == 2 and not waiting
        first = game.send("red", reset())
        observations["blue"] = game.call("blue", reset()).observation
        observations["red"] = game.reply(first).observation
    assert checked > 30
    game.send("red", QUIT)
    game.send("blue", QUIT)
