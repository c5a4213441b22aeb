"""Env steps per second of the RL environments, with uniformly random valid (masked)
actions: ArenaEnv in process and through a broker, ArenaVectorEnv in process and
through a broker with 64 games over 2 worlds, and a BaseAgent lock-step baseline on
the same stack. A measurement, not a test: numbers depend on the machine.

    python -m agents.examples.bench_envs --steps 20000 --json

Every figure counts env steps (one agent's action and its result, masks and flat
observation included): for a vector env, each step call counts ``num_envs`` steps.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from agents.extras import MissingExtraError, needs

with needs("the env bench example", "rl", script=__name__ == "__main__"):
    import numpy as np

__all__ = ["main", "measure_env", "measure_vector"]

log = logging.getLogger(__name__)

TINY = Path(__file__).resolve().parents[2] / "world" / "tasks" / "two_networks_tiny_attacker.yaml"


def _choose(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    """A uniformly random valid index per row of ``masks``."""
    draws = rng.random(masks.shape)
    draws[~masks] = -1.0
    return draws.argmax(axis=-1)


def measure_env(make: Callable[[], Any], steps: int, seed: int = 0) -> dict[str, float]:
    """Steps/s of one ArenaEnv (resets included, construction not)."""
    env = make()
    rng = np.random.default_rng(seed)
    try:
        _, info = env.reset(seed=seed)
        episodes = 0
        started = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, info = env.step(int(_choose(rng, info["action_mask"])))
            if terminated or truncated:
                episodes += 1
                _, info = env.reset()
        seconds = time.perf_counter() - started
    finally:
        env.close()
    return {"steps": steps, "episodes": episodes, "seconds": round(seconds, 3),
            "steps_per_second": round(steps / seconds)}


def measure_vector(make: Callable[[], Any], calls: int, seed: int = 0) -> dict[str, float]:
    """Env steps/s of an ArenaVectorEnv: ``calls`` step calls of ``num_envs`` steps each."""
    envs = make()
    rng = np.random.default_rng(seed)
    try:
        _, info = envs.reset(seed=seed)
        started = time.perf_counter()
        for _ in range(calls):
            _, _, _, _, info = envs.step(_choose(rng, info["action_mask"]))
        seconds = time.perf_counter() - started
        count = envs.num_envs * calls
    finally:
        envs.close()
    return {"num_envs": envs.num_envs, "steps": count, "seconds": round(seconds, 3),
            "steps_per_second": round(count / seconds)}


def measure_base_agent(frontend: str, steps: int, seed: int = 0) -> dict[str, float]:
    """The lock-step baseline: BaseAgent with random valid actions, no masks or vectors."""
    from agents import BaseAgent
    from agents.utils import sorted_valid_actions

    rng = random.Random(seed)
    agent = BaseAgent(frontend, "Attacker", task="two_networks_tiny", timeout=60)
    try:
        observation = agent.register()
        started = time.perf_counter()
        for _ in range(steps):
            if observation is None:
                raise RuntimeError(f"BaseAgent failed: {agent.last_error}")
            if observation.end:
                observation = agent.request_game_reset()
                continue
            observation = agent.make_step(rng.choice(sorted_valid_actions(observation.state)))
        seconds = time.perf_counter() - started
    finally:
        agent.terminate_connection()
    return {"steps": steps, "seconds": round(seconds, 3), "steps_per_second": round(steps / seconds)}


def run(steps: int, vector_calls: int, num_envs: int, broker_steps: int) -> dict[str, Any]:
    from agents.gym_env import ArenaEnv
    from agents.vector_env import ArenaVectorEnv
    from bin.stack import Stack

    results: dict[str, Any] = {"task": "two_networks_tiny"}
    results["env_in_process"] = measure_env(lambda: ArenaEnv(TINY), steps)
    results["vector_in_process"] = measure_vector(lambda: ArenaVectorEnv(TINY, num_envs), vector_calls)
    with Stack(tasks=[str(TINY)], worlds=1) as stack:
        frontend = str(stack.endpoints["frontend"])
        results["base_agent_broker_1_world"] = measure_base_agent(frontend, broker_steps)
        results["env_broker_1_world"] = measure_env(
            lambda: ArenaEnv("two_networks_tiny", broker=frontend, timeout=60), broker_steps)
    with Stack(tasks=[str(TINY)], worlds=2) as stack:
        frontend = str(stack.endpoints["frontend"])
        results["vector_broker_2_worlds"] = measure_vector(
            lambda: ArenaVectorEnv("two_networks_tiny", num_envs, broker=frontend, timeout=60), vector_calls)
    return results


@click.command()
@click.option("--steps", default=20_000, show_default=True, help="ArenaEnv steps in process")
@click.option("--broker-steps", default=3_000, show_default=True, help="lock-step steps through the broker")
@click.option("--vector-calls", default=200, show_default=True, help="vector step calls")
@click.option("--num-envs", default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
def main(steps: int, broker_steps: int, vector_calls: int, num_envs: int, as_json: bool) -> None:
    """Measure the RL environments' steps/s."""
    try:
        results = run(steps, vector_calls, num_envs, broker_steps)
    except MissingExtraError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for name, result in results.items():
        if isinstance(result, dict):
            click.echo(f"{name:<28} {result['steps_per_second']:>8} steps/s  ({result['steps']} steps)")


if __name__ == "__main__":
    main()
