"""ArenaParallelEnv in process: PettingZoo's parallel API test, agents leaving as they
finish, masks in infos, and an agent whose episode ended waiting for the game's held
reply (with its final reward) while the others play on."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from agents.pettingzoo_env import ArenaParallelEnv
from protocol import AgentStatus

from .env_samples import DEFAULT, short_defender


def api_tested(env: ArenaParallelEnv, cycles: int = 200) -> None:
    """parallel_api_test, failing on any warning it gives (a live agent without an entry,
    an entry for a dead one, no agents left while some had not finished)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=cycles)
    assert [str(w.message) for w in caught] == []


def test_parallel_api_test_passes_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    env = ArenaParallelEnv(DEFAULT)
    try:
        api_tested(env)
    finally:
        env.close()
    assert "Passed Parallel API test" in capsys.readouterr().out


def test_agents_leave_as_they_finish_and_infos_carry_masks() -> None:
    env = ArenaParallelEnv(DEFAULT, roles={"Attacker": 1, "Defender": 1})
    rng = np.random.default_rng(2)
    try:
        assert env.possible_agents == ["attacker_0", "defender_0"]
        spaces = {agent: (env.observation_space(agent), env.action_space(agent)) for agent in env.possible_agents}
        assert env.action_space("defender_0").n > env.action_space("attacker_0").n  # BlockIP entries
        observations, infos = env.reset(seed=4)
        steps = 0
        while env.agents:
            before = list(env.agents)
            actions = {agent: int(rng.choice(np.flatnonzero(infos[agent]["action_mask"]))) for agent in before}
            observations, rewards, terminations, truncations, infos = env.step(actions)
            steps += 1
            assert set(observations) == set(rewards) == set(infos) == set(before)
            for agent in before:
                assert env.observation_space(agent).contains(observations[agent])
                assert infos[agent]["masked"] is False
                assert (env.observation_space(agent), env.action_space(agent)) == spaces[agent]
            assert env.agents == [a for a in before if not (terminations[a] or truncations[a])]
        # One attacker: its last step ends the defender's episode in the same step.
        assert steps <= 50 and terminations["defender_0"]
        assert infos["defender_0"]["end_reason"] in (str(AgentStatus.Success), str(AgentStatus.Fail))
    finally:
        env.close()


def test_an_agent_whose_episode_ended_waits_for_its_final_reward(tmp_path: Path) -> None:
    """The defender's episode ends after 3 steps; the game holds that step's reply until the
    attacker's episode ends (at step 8), then releases it with the defender's final reward."""
    env = ArenaParallelEnv(short_defender(tmp_path))
    try:
        _, infos = env.reset(seed=0)
        history = []
        while env.agents:
            actions = {agent: int(np.flatnonzero(infos[agent]["action_mask"])[0]) for agent in env.agents}
            _, rewards, terminations, truncations, infos = env.step(actions)
            history.append((dict(rewards), dict(terminations), dict(truncations), dict(infos)))
        assert len(history) == 8
        for step, (rewards, terminations, truncations, infos) in enumerate(history, start=1):
            waiting = infos["defender_0"].get("waiting", False)
            assert waiting is (3 <= step < 8)
            if waiting:
                assert rewards["defender_0"] == 0.0 and not terminations["defender_0"]
                assert not truncations["defender_0"]
        rewards, terminations, truncations, infos = history[-1]
        assert truncations["attacker_0"] and infos["attacker_0"]["end_reason"] == str(AgentStatus.TimeoutReached)
        # The attack failed: the defender wins (+100) on top of its last step's -1.
        assert terminations["defender_0"] and rewards["defender_0"] == 99.0
        assert infos["defender_0"]["end_reason"] == str(AgentStatus.Success)
        # A reset while the defender waits: it cannot vote, so the env sits down again.
        _, infos = env.reset(seed=1)
        for _ in range(4):
            _, _, _, _, infos = env.step({agent: 0 for agent in env.agents})
        assert infos["defender_0"]["waiting"]
        _, infos = env.reset(seed=1)
        assert env.agents == ["attacker_0", "defender_0"] and not infos["defender_0"].get("waiting")
        _, rewards, _, _, infos = env.step({agent: 0 for agent in env.agents})
        assert rewards == {"attacker_0": -1.0, "defender_0": -1.0}
    finally:
        env.close()


def test_missing_actions_are_counted_no_ops() -> None:
    env = ArenaParallelEnv(DEFAULT)
    try:
        _, infos = env.reset(seed=0)
        before = infos["defender_0"]["state"]
        _, rewards, _, _, infos = env.step({"attacker_0": int(infos["attacker_0"]["action_mask"].argmax())})
        assert infos["defender_0"]["masked"] is True and infos["defender_0"]["steps"] == 1
        assert infos["defender_0"]["state"] == before and rewards["defender_0"] == -1.0
        assert np.array_equal(env.action_mask("defender_0"), infos["defender_0"]["action_mask"])
        assert env.render() is None
    finally:
        env.close()
