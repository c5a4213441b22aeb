"""Tabular Q-learning on ArenaEnv: the smallest learner that shows the env works.

numpy only. The state key is the flat observation's bytes without its last slot, the
step fraction (``progress`` block): with it every step of an episode would be a state of
its own and the table would be ``max_steps`` times larger, for a task whose outcome
depends on what the agent knows. Actions are the fixed table's indices; exploration and
the greedy policy both choose among the valid (unmasked) indices only. Unseen
state-action pairs start at 0 while every step costs -1, so untried actions look best:
that optimism, more than the epsilon schedule, is what finds the five-step attack on
two_networks_tiny (scan, find services, exploit, find data, exfiltrate). The learning
rate defaults to 1: without a global defender the game is deterministic.

    python -m agents.examples.q_learning --episodes 600 --eval-episodes 200

>>> import numpy as np
>>> table = QTable(3)
>>> observation, mask = np.zeros(4, dtype=np.float32), np.array([False, True, True])
>>> table.greedy(observation, mask)          # nothing learned: the first valid index
1
>>> table.update(observation, 1, -1.0, observation, mask, False, alpha=1.0, gamma=0.9)
>>> table.greedy(observation, mask)          # index 1 cost a step: try the other one
2

(``tests/test_env_learning.py`` trains it on two_networks_tiny and checks the win rate.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import click

from agents.extras import MissingExtraError, needs
from protocol import AgentStatus

with needs("the Q-learning example", "rl", script=__name__ == "__main__"):
    import numpy as np

__all__ = ["QTable", "evaluate", "main", "random_policy", "result_line", "train", "won"]

log = logging.getLogger(__name__)

#: A policy: (observation, action mask) -> action index.
Policy = Callable[[np.ndarray, np.ndarray], int]


class QTable:
    """Action values per observation key, ``size`` actions each. ``key_slots``: how many
    leading slots of the observation make the key (default: all but the step fraction)."""

    def __init__(self, size: int, key_slots: int = -1) -> None:
        self.size = size
        self.key_slots = key_slots
        self.values: dict[bytes, np.ndarray] = {}

    def key(self, observation: np.ndarray) -> bytes:
        return observation[:self.key_slots].tobytes()

    def row(self, observation: np.ndarray) -> np.ndarray:
        key = self.key(observation)
        row = self.values.get(key)
        if row is None:
            row = self.values[key] = np.zeros(self.size)
        return row

    def greedy(self, observation: np.ndarray, mask: np.ndarray) -> int:
        """The valid action with the highest value (the lowest index among equals)."""
        valid = np.flatnonzero(mask)
        row = self.values.get(self.key(observation))
        if row is None:
            return int(valid[0])
        return int(valid[np.argmax(row[valid])])

    def update(self, observation: np.ndarray, action: int, reward: float, following: np.ndarray,
               following_mask: np.ndarray, done: bool, *, alpha: float, gamma: float) -> None:
        target = reward
        if not done:
            valid = np.flatnonzero(following_mask)
            if valid.size:
                target += gamma * float(self.row(following)[valid].max())
        row = self.row(observation)
        row[action] += alpha * (target - row[action])


def random_policy(rng: np.random.Generator) -> Policy:
    """Uniformly random among the valid actions."""
    def choose(_observation: np.ndarray, mask: np.ndarray) -> int:
        valid = np.flatnonzero(mask)
        return int(valid[rng.integers(valid.size)])
    return choose


def won(info: dict[str, Any]) -> bool:
    reason = info.get("end_reason")
    return reason is not None and AgentStatus.from_string(str(reason)) is AgentStatus.Success


def train(env: Any, episodes: int, *, alpha: float = 1.0, gamma: float = 0.95, epsilon: float = 0.1,
          epsilon_end: float = 0.0, seed: int = 0) -> QTable:
    """Q-learning for ``episodes`` episodes (seeded ``seed``, ``seed + 1`` ...), epsilon
    decaying linearly from ``epsilon`` to ``epsilon_end``."""
    rng = np.random.default_rng(seed)
    table = QTable(int(env.action_space.n))
    explore = random_policy(rng)
    for episode in range(episodes):
        share = episode / max(1, episodes - 1)
        chance = epsilon + (epsilon_end - epsilon) * share
        observation, info = env.reset(seed=seed + episode)
        done = False
        while not done:
            mask = info["action_mask"]
            action = explore(observation, mask) if rng.random() < chance else table.greedy(observation, mask)
            following, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            table.update(observation, action, reward, following, info["action_mask"], terminated,
                         alpha=alpha, gamma=gamma)
            observation = following
    log.info("trained %d episodes: %d observations seen", episodes, len(table.values))
    return table


def evaluate(env: Any, policy: Policy, seeds: Iterable[int]) -> dict[str, float]:
    """Play one episode per seed; win rate, mean return and mean length."""
    wins, returns, lengths = 0, [], []
    for seed in seeds:
        observation, info = env.reset(seed=seed)
        total, steps, done = 0.0, 0, False
        while not done:
            observation, reward, terminated, truncated, info = env.step(policy(observation, info["action_mask"]))
            total += reward
            steps += 1
            done = terminated or truncated
        wins += won(info)
        returns.append(total)
        lengths.append(steps)
    count = max(1, len(returns))
    return {"episodes": len(returns), "win_rate": wins / count, "mean_return": float(np.mean(returns)),
            "mean_steps": float(np.mean(lengths))}


def result_line(name: str, result: dict[str, float], width: int = 7) -> str:
    """One policy's :func:`evaluate` figures as a line of the examples' summaries."""
    return (f"{name:>{width}}: win rate {result['win_rate']:.1%}, mean return {result['mean_return']:.1f}, "
            f"mean steps {result['mean_steps']:.1f} over {result['episodes']} episodes")


@click.command()
@click.option("--task", default="two_networks_tiny", show_default=True, help="a task name or file")
@click.option("--broker", default=None, help="a broker frontend address (default: in process)")
@click.option("--episodes", default=600, show_default=True, help="training episodes")
@click.option("--eval-episodes", default=200, show_default=True, help="seeded evaluation episodes per policy")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def main(task: str, broker: str | None, episodes: int, eval_episodes: int, seed: int, as_json: bool) -> None:
    """Train tabular Q-learning on ArenaEnv and compare its greedy policy with the random attacker."""
    try:
        from agents.gym_env import ArenaEnv
    except MissingExtraError as error:
        raise click.ClickException(str(error)) from None

    env = ArenaEnv(task, broker=broker)
    try:
        table = train(env, episodes, seed=seed)
        seeds = range(10_000, 10_000 + eval_episodes)
        summary = {"greedy": evaluate(env, table.greedy, seeds),
                   "random": evaluate(env, random_policy(np.random.default_rng(seed)), seeds),
                   "observations": len(table.values)}
    finally:
        env.close()
    if as_json:
        click.echo(json.dumps(summary))
        return
    for name in ("greedy", "random"):
        click.echo(result_line(name, summary[name]))


if __name__ == "__main__":
    main()
