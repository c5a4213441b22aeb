"""ArenaVectorEnv in process: batched spaces and masks, NEXT_STEP autoreset, per-env
seeds, and the EnvPool-style send/recv over subsets of the envs."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from agents.vector_env import ArenaVectorEnv
from protocol import PASS, AgentStatus

from .env_samples import DEFENDED, TINY, WINNING_LABELS


def test_batched_spaces_and_masks() -> None:
    envs = ArenaVectorEnv(TINY, 3)
    try:
        assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
        observations, infos = envs.reset(seed=0)
        assert envs.observation_space.contains(observations)
        assert observations.shape == (3, envs.single_observation_space.shape[0])
        assert infos["action_mask"].shape == (3, envs.single_action_space.n)
        assert np.array_equal(infos["action_mask"], envs.action_masks())
        for env in range(3):
            assert np.array_equal(infos["action_mask"][env], envs.seat(env).mask())
        assert infos["_action_mask"].all() and not infos["_end_reason"].any()
    finally:
        envs.close()


def test_step_autoresets_on_the_next_step() -> None:
    """Env 0 plays the winning attack (ends at step 5); envs 1 and 2 pass until the step limit
    (30). The step after an end returns the new episode's first observation, reward 0."""
    envs = ArenaVectorEnv(TINY, 3)
    try:
        first, _ = envs.reset(seed=0)
        labels = list(WINNING_LABELS)
        for step in range(1, 32):
            win = envs.table.index_of_label(labels.pop(0)) if labels else PASS
            observations, rewards, terminations, truncations, infos = envs.step([win, PASS, PASS])
            if step == 5:
                assert terminations.tolist() == [True, False, False] and rewards[0] == 99.0
                assert infos["end_reason"][0] == str(AgentStatus.Success) and infos["_end_reason"].tolist() == [
                    True, False, False]
            elif step == 6:   # env 0 was reset by this step, not stepped
                assert infos["reset"].tolist() == [True, False, False] and rewards[0] == 0.0
                assert np.array_equal(observations[0], first[0]) and not terminations[0]
            elif step == 30:
                assert truncations.tolist() == [False, True, True] and rewards[1:].tolist() == [-11.0, -11.0]
            elif step == 31:
                assert infos["reset"].tolist() == [False, True, True] and rewards.tolist() == [-1.0, 0.0, 0.0]
                assert np.array_equal(observations[1:], first[1:])
            assert not (terminations & infos["reset"]).any()
        assert infos["steps"].tolist() == [25, 0, 0]   # steps 7 to 31 of its second episode
    finally:
        envs.close()


def test_send_and_recv_over_subsets_of_the_envs() -> None:
    envs = ArenaVectorEnv(TINY, 4)
    try:
        envs.reset(seed=1)
        scan = envs.table.index_of_label(WINNING_LABELS[0])
        envs.send([scan, scan], env_ids=[2, 0])
        with pytest.raises(ValueError, match="in flight"):
            envs.send([scan], env_ids=[0])
        observations, rewards, _, _, infos = envs.recv()
        assert infos["env_id"].tolist() == [0, 2] and observations.shape[0] == 2
        assert rewards.tolist() == [-1.0, -1.0] and infos["steps"].tolist() == [1, 1]
        envs.send([PASS, PASS, PASS], env_ids=[1, 2, 3])
        observations, _, _, _, infos = envs.recv(min_envs=1)   # in process every env answers at once
        assert infos["env_id"].tolist() == [1, 2, 3]
        assert [envs.seat(env).steps for env in range(4)] == [1, 1, 2, 1]
        empty = envs.recv()
        assert empty[0].shape == (0, envs.single_observation_space.shape[0]) and empty[4]["env_id"].size == 0
    finally:
        envs.close()


def test_per_env_seeds_reproduce() -> None:
    """defended_tiny's scripted agents draw from each game's generator: seeds matter."""
    def run(envs: ArenaVectorEnv, seed: int | list[int]) -> list[bytes]:
        observations, _ = envs.reset(seed=seed)
        trace = [observations.tobytes()]
        for _ in range(12):
            observations, *_ = envs.step([PASS] * envs.num_envs)
            trace.append(observations.tobytes())
        return trace

    envs, single = ArenaVectorEnv(DEFENDED, 3), ArenaVectorEnv(DEFENDED, 1, seed=99)
    try:
        assert run(envs, 20) == run(envs, [20, 21, 22])
        seeded = run(envs, 20)
        for env in range(3):
            alone = run(single, [20 + env])
            width = len(alone[0])
            assert [row[env * width:(env + 1) * width] for row in seeded] == alone
        with pytest.raises(ValueError, match="seeds"):
            envs.reset(seed=[1, 2])
    finally:
        envs.close()
        single.close()
