"""MaskablePPO (sb3-contrib) on ArenaEnv: train an attacker on two_networks_tiny, then
compare its win rate with the uniformly random valid-action attacker's.

Needs the ``rl`` and ``sb3`` extras (``pip install -e '.[rl,sb3]'``: stable-baselines3,
sb3-contrib, torch), which CI does not install; without them it says so in one line.
MaskablePPO finds the env's ``action_masks()`` itself (through SB3's wrappers), so no
``ActionMasker`` is needed; at evaluation the policy predicts with the same masks. The
env leaves ``info["state"]`` out: SB3's DummyVecEnv deep-copies every info, and a
GameState copies its cached valid actions with it.

    python -m agents.examples.sb3_maskable_ppo --timesteps 30000 --episodes 200
    python -m agents.examples.sb3_maskable_ppo --broker tcp://127.0.0.1:5570   # on a running stack
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import click

from agents.extras import MissingExtraError, needs, require

#: What this example needs, and the modules it checks for before it starts.
EXTRAS = ("rl", "sb3")
_WHAT = "the MaskablePPO example"

with needs(_WHAT, EXTRAS, script=__name__ == "__main__"):
    import numpy as np

    from agents.examples.q_learning import evaluate, random_policy, result_line

__all__ = ["main", "train_and_evaluate"]

log = logging.getLogger(__name__)


def train_and_evaluate(task: str, broker: str | None, timesteps: int, episodes: int, seed: int,
                       torch_threads: int = 1) -> dict[str, Any]:
    """Train for ``timesteps`` env steps, then play ``episodes`` seeded episodes each with
    the trained policy (deterministic, masked) and with the random attacker."""
    import torch  # the sb3 extra
    from sb3_contrib import MaskablePPO

    from agents.gym_env import ArenaEnv

    torch.set_num_threads(torch_threads)  # a tiny MLP: more threads only contend with the env

    env = ArenaEnv(task, broker=broker, state_in_info=False)  # SB3 deep-copies every info
    try:
        env.reset(seed=seed)
        model = MaskablePPO("MlpPolicy", env, seed=seed, verbose=0, n_steps=512, batch_size=128, gamma=0.95,
                            ent_coef=0.01)
        started = time.perf_counter()
        model.learn(total_timesteps=timesteps)
        seconds = time.perf_counter() - started

        def trained(observation: np.ndarray, mask: np.ndarray) -> int:
            action, _ = model.predict(observation, action_masks=mask, deterministic=True)
            return int(action)

        seeds = range(20_000, 20_000 + episodes)
        return {"task": task, "timesteps": timesteps, "train_seconds": round(seconds, 1),
                "train_steps_per_second": round(timesteps / seconds),
                "maskable_ppo": evaluate(env, trained, seeds),
                "random": evaluate(env, random_policy(np.random.default_rng(seed)), seeds)}
    finally:
        env.close()


@click.command()
@click.option("--task", default="two_networks_tiny", show_default=True, help="a task name or file")
@click.option("--broker", default=None, help="a broker frontend address (default: in process)")
@click.option("--timesteps", default=30_000, show_default=True, help="training steps")
@click.option("--episodes", default=200, show_default=True, help="seeded evaluation episodes per policy")
@click.option("--seed", default=0, show_default=True)
@click.option("--torch-threads", default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
def main(task: str, broker: str | None, timesteps: int, episodes: int, seed: int, torch_threads: int,
         as_json: bool) -> None:
    """Train MaskablePPO on ArenaEnv and compare it with the random attacker."""
    try:  # before any work: torch and sb3-contrib are imported only when training starts
        require(_WHAT, EXTRAS, "gymnasium", "torch", "sb3_contrib")
    except MissingExtraError as error:
        raise click.ClickException(str(error)) from None
    logging.basicConfig(level=logging.INFO)
    summary = train_and_evaluate(task, broker, timesteps, episodes, seed, torch_threads)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"trained {summary['timesteps']} steps on {task} in {summary['train_seconds']} s "
               f"({summary['train_steps_per_second']} steps/s)")
    for name in ("maskable_ppo", "random"):
        click.echo(result_line(name, summary[name], width=12))


if __name__ == "__main__":
    main()
