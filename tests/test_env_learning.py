"""A learning test: tabular Q-learning (agents/examples/q_learning.py, numpy only) trained
through ArenaEnv in process on two_networks_tiny, then its greedy policy against the
uniformly random valid-action attacker over the same 200 seeded episodes."""

from __future__ import annotations

import numpy as np

from agents.examples.q_learning import evaluate, random_policy, train
from agents.gym_env import ArenaEnv

from .env_samples import TINY

#: Training is bounded by episodes, not time (about 2 s here).
TRAINING_EPISODES = 600
EVALUATION_SEEDS = range(10_000, 10_200)


def test_q_learning_beats_the_random_attacker_by_a_wide_margin() -> None:
    """The margin asserted: greedy win rate >= random win rate + 0.5. A random valid-action
    attacker wins about 0.5-2 % of these 30-step episodes; the trained greedy policy has
    learned the five-step attack (scan, find services, exploit, find data, exfiltrate)."""
    env = ArenaEnv(TINY)
    try:
        table = train(env, TRAINING_EPISODES, seed=0)
        greedy = evaluate(env, table.greedy, EVALUATION_SEEDS)
        random = evaluate(env, random_policy(np.random.default_rng(0)), EVALUATION_SEEDS)
    finally:
        env.close()
    assert greedy["episodes"] == random["episodes"] == 200
    assert random["win_rate"] < 0.1
    assert greedy["win_rate"] >= random["win_rate"] + 0.5
    assert greedy["mean_steps"] < 10 < random["mean_steps"]


def test_q_learning_example_runs_as_a_command() -> None:
    from click.testing import CliRunner

    from agents.examples.q_learning import main

    result = CliRunner().invoke(main, ["--episodes", "30", "--eval-episodes", "5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["greedy", "random"]
    assert all("over 5 episodes" in line for line in lines)
