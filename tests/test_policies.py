"""Scripted policies and in-process matches: valid actions, reproducible with a seed."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from agents import POLICIES, action_sort_key, generate_valid_actions
from agents.local import LocalMatch
from protocol import IP, Action, ActionType, AgentRole, GameState, Network, Observation, validate_action
from world import load_task

from .conftest import TASKS

ROOT = Path(__file__).resolve().parents[1]
START = GameState(controlled_hosts={IP("192.168.2.2"), IP("213.47.23.195")},
                  known_hosts={IP("192.168.2.2"), IP("213.47.23.195")},
                  known_networks={Network("192.168.1.0", 24), Network("192.168.2.0", 24)})


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policies_return_valid_actions_reproducibly(name: str) -> None:
    policy = POLICIES[name]
    observation = Observation(START, 0, False, {})
    first = [policy(observation, random.Random(5)) for _ in range(3)]
    again = [policy(observation, random.Random(5)) for _ in range(3)]
    assert first == again
    for action in first:
        validate_action(action)
    assert policy(None, random.Random(0)) is None


def test_random_attacker_picks_among_valid_actions() -> None:
    valid = generate_valid_actions(START)
    chosen = {POLICIES["random"](Observation(START, 0, False, {}), random.Random(seed)) for seed in range(200)}
    assert chosen <= valid and len(chosen) > len(valid) // 2


def test_action_sort_key_orders_independently_of_hashing() -> None:
    actions = sorted(generate_valid_actions(START), key=action_sort_key)
    assert sorted(reversed(actions), key=action_sort_key) == actions


def test_kill_chain_attacker_wins_alone_and_matches_repeat() -> None:
    task = load_task(TASKS / "scenario1_small_attacker.yaml")
    players = [("red", AgentRole.Attacker, POLICIES["kill-chain"])]
    results = [list(LocalMatch(task, players, seed=11).play(5)) for _ in range(2)]
    assert [r.players for r in results[0]] == [r.players for r in results[1]], "same seed, same games"
    assert sum(r.attacker_won for r in results[0]) >= 3
    for result in results[0]:
        (red,) = result.players
        assert red.end_reason in ("AgentStatus.Success", "AgentStatus.TimeoutReached")
        expected = -red.steps + (100 if result.attacker_won else -10)
        assert red.episode_return == expected, "step rewards plus the final reward (reference §3.4)"


def test_match_of_attacker_and_defender_ends_every_episode() -> None:
    players = [("red", AgentRole.Attacker, POLICIES["kill-chain"]),
               ("blue", AgentRole.Defender, POLICIES["defender"])]
    match = LocalMatch(load_task(), players, seed=4)
    results = list(match.play(4))
    assert len(results) == 4
    for result in results:
        red, blue = result.players
        assert red.end_reason is not None and blue.end_reason in ("AgentStatus.Success", "AgentStatus.Fail")
        assert (blue.end_reason == "AgentStatus.Fail") == result.attacker_won
    assert match.session.seats == {}, "every player quit at the end"


def test_arena_demo_rejects_a_broken_task(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("env: {scenario: nowhere}\n")
    done = subprocess.run([sys.executable, "-m", "bin", "demo", "--task", str(tmp_path / "broken.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0 and "env.scenario" in done.stderr


def test_protocol_actions_are_not_policies_output() -> None:
    for name, policy in POLICIES.items():
        action = policy(Observation(START, 0, False, {}), random.Random(1))
        assert isinstance(action, Action) and action.action_type not in (
            ActionType.JoinGame, ActionType.QuitGame, ActionType.ResetGame), name
