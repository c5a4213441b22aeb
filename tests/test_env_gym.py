"""ArenaEnv in process: Gymnasium's env checker, masked actions as counted no-ops,
seeded resets that reproduce, terminated vs truncated, the world's reward breakdown and
scripted turns in info, registered ids, and ``import agents`` without the rl extra."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from agents.gym_env import ENV_IDS, ArenaEnv
from agents.vector_env import ArenaVectorEnv
from protocol import PASS, AgentStatus, ArenaError

from .env_samples import DEFENDED, TINY, WINNING_LABELS, random_valid


def checked(env: gym.Env) -> None:
    """check_env, failing on any warning it gives but the one about a missing spec."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    problems = [str(w.message) for w in caught if "not having a spec" not in str(w.message)]
    assert problems == []


def test_check_env_passes_in_process() -> None:
    for env in (ArenaEnv(TINY), ArenaEnv(TINY, flatten_obs=False), ArenaEnv(DEFENDED)):
        try:
            checked(env)
        finally:
            env.close()


def test_a_masked_action_is_a_counted_no_op_flagged_in_info() -> None:
    env = ArenaEnv(TINY)
    try:
        _, info = env.reset(seed=0)
        masked = int(np.flatnonzero(~info["action_mask"])[0])
        for step in range(1, 31):
            before = info["state"]
            observation, reward, terminated, truncated, info = env.step(masked)
            assert info["masked"] is True and info["label"] == env.action_labels[masked]
            assert info["state"] == before and info["steps"] == step
            assert observation[-1] == np.float32(step / 30)
            if step < 30:
                assert reward == -1.0 and not (terminated or truncated)
        # Thirty no-ops used the step limit: the episode is truncated, not terminated.
        assert truncated and not terminated and info["end_reason"] == str(AgentStatus.TimeoutReached)
        assert reward == -11.0  # the step's -1 and the task's fail reward
        _, info = env.reset()
        _, reward, _, _, info = env.step(PASS)   # PASS itself is a legal, unmasked no-op
        assert info["masked"] is False and info["label"] is None and reward == -1.0
    finally:
        env.close()


def test_the_winning_attack_terminates_with_the_success_reward() -> None:
    env = ArenaEnv(TINY)
    try:
        env.reset(seed=0)
        for label in WINNING_LABELS:
            _, reward, terminated, truncated, info = env.step(env.table.index_of_label(label))
            assert info["label"] == label and not info["masked"]
        assert terminated and not truncated and reward == 99.0
        assert info["end_reason"] == str(AgentStatus.Success)
        # A structured Action is played as its table entry.
        env.reset()
        action = env.table.action(env.table.index_of_label(WINNING_LABELS[0]), env.catalog)
        _, _, _, _, info = env.step(action)
        assert info["label"] == WINNING_LABELS[0] and not info["masked"]
    finally:
        env.close()


def play(env: ArenaEnv, seed: int, steps: int = 40) -> list[tuple[bytes, float, bool, bool]]:
    """One seeded episode of random valid actions (the action generator seeded too)."""
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed)
    trace = [(observation.tobytes(), 0.0, False, False)]
    for _ in range(steps):
        observation, reward, terminated, truncated, info = env.step(random_valid(rng, info["action_mask"]))
        trace.append((observation.tobytes(), reward, terminated, truncated))
        if terminated or truncated:
            break
    return trace


def test_reset_with_a_seed_reproduces_the_episode() -> None:
    """defended_tiny draws: a scripted defender and a probabilistic benign user play too."""
    env, other = ArenaEnv(DEFENDED), ArenaEnv(DEFENDED, seed=7)
    try:
        first = play(env, 3)
        play(env, 4)                 # whatever happened in between
        assert play(env, 3) == first
        assert play(other, 3) == first   # another game object, created with another seed
        assert {tuple(play(env, seed)) for seed in range(5, 10)} != {tuple(first)}
    finally:
        env.close()
        other.close()


def test_info_carries_the_breakdown_and_the_scripted_turns() -> None:
    env = ArenaEnv(DEFENDED)
    rng = np.random.default_rng(0)
    try:
        _, info = env.reset(seed=1)
        scripted = 0
        for _ in range(30):
            _, reward, terminated, truncated, info = env.step(random_valid(rng, info["action_mask"]))
            assert sum(info["reward_breakdown"].values()) == reward
            scripted += len(info["scripted"])
            if terminated or truncated:
                break
        assert scripted > 0
    finally:
        env.close()


def test_registered_ids_make_the_env_and_the_vector_env() -> None:
    assert {"NetSecArena/Arena-v0", "NetSecArena/TwoNetworksTiny-v0"} <= set(gym.registry)
    env = gym.make("agents.gym_env:NetSecArena/TwoNetworksTiny-v0")
    try:
        assert isinstance(env.unwrapped, ArenaEnv) and env.action_space.n == 205
        observation, _ = env.reset(seed=0)
        assert env.observation_space.contains(observation)
    finally:
        env.close()
    vector = gym.make_vec("NetSecArena/TwoNetworksTiny-v0", num_envs=3)
    try:
        assert isinstance(vector, ArenaVectorEnv) and vector.num_envs == 3
    finally:
        vector.close()
    assert set(ENV_IDS) >= {"NetSecArena/DefendedTiny-v0", "NetSecArena/Scenario1Small-v0"}


def test_the_state_can_be_left_out_of_info() -> None:
    env, other = ArenaEnv(TINY, state_in_info=False), ArenaEnv(TINY)
    try:
        _, info = env.reset(seed=0)
        _, _, _, _, step_info = env.step(PASS)
        assert "state" not in info and "state" not in step_info
        assert env.state == other.reset(seed=0)[1]["state"]   # still there, as a property
    finally:
        env.close()
        other.close()


def test_render_and_properties() -> None:
    env = ArenaEnv(TINY, render_mode="ansi")
    try:
        env.reset(seed=0)
        env.step(env.table.index_of_label(WINNING_LABELS[0]))
        assert env.render().startswith(f"step 1: {WINNING_LABELS[0]}\n")
        assert len(env.action_labels) == env.action_space.n == len(env.table)
        assert env.role.value == "Attacker"
    finally:
        env.close()
        env.close()   # idempotent


@pytest.mark.processes
def test_import_agents_needs_no_rl_extra() -> None:
    code = ("import sys, agents; heavy = {'gymnasium', 'pettingzoo', 'numpy'} & set(sys.modules); "
            "assert not heavy, heavy; print(agents.ArenaEnv.__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ArenaEnv"


def test_in_process_task_names_resolve_to_shipped_files() -> None:
    env = ArenaEnv("defended_tiny")
    try:
        assert env.catalog.hosts[-1] == "outside_node"
    finally:
        env.close()
    with pytest.raises(ArenaError, match=r"^nope: not a task file, .* \(shipped: default, "):
        ArenaEnv("nope")
