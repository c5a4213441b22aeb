"""The RL environment cases of ``arena bench``: env steps per second of ``ArenaEnv`` and
``ArenaVectorEnv`` (the ``rl`` extra), in process and through the stack.

Unlike the other cases, these choose live: each step takes a uniformly random index
among the ones ``info["action_mask"]`` allows, so the figures include what a training
loop pays for besides the game: masks, flat observations, the table lookup, the
Gymnasium bookkeeping. A vector step counts ``num_envs`` env steps.

* ``env``: one ``ArenaEnv`` (``worlds`` 0: a GameSession in this process; else lock-step
  through the broker), resets included;
* ``env-vector``: one ``ArenaVectorEnv`` of ``envs`` games (NEXT_STEP autoreset: the
  reset steps count too, as a trainer sees them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .bench_cases import MAX_COUNT, BenchError, Case, Settings, Tally, figures
from .bench_clients import measure

__all__ = ["POLICY", "run_env", "run_env_vector"]

#: What chooses the actions in these cases (the other cases replay a recorded script).
POLICY = "random valid (masked), chosen live"


def _rl() -> tuple[Any, Any, Any]:
    try:
        import numpy as np

        from agents.gym_env import ArenaEnv
        from agents.vector_env import ArenaVectorEnv
    except ImportError as error:  # the rl extra is not installed
        raise BenchError(f"the env cases need the rl extra (pip install -e '.[rl]'): {error}") from None
    return np, ArenaEnv, ArenaVectorEnv


def _choose(np: Any, rng: Any, masks: Any) -> Any:
    """A uniformly random allowed index per row of ``masks``."""
    draws = rng.random(masks.shape)
    draws[~masks] = -1.0
    return draws.argmax(axis=-1)


class _EnvPlayer:
    def __init__(self, env: Any, np: Any) -> None:
        self.env, self.np, self.tally = env, np, Tally()
        self.rng = np.random.default_rng(0)
        _, self.info = env.reset(seed=0)

    def play(self, deadline: float) -> None:
        tally, perf, env, np = self.tally, time.perf_counter, self.env, self.np
        while tally.count < MAX_COUNT and perf() < deadline:
            action = int(_choose(np, self.rng, self.info["action_mask"]))
            start = perf()
            _, _, terminated, truncated, self.info = env.step(action)
            tally.latencies.append(perf() - start)
            tally.count += 1
            if terminated or truncated:
                tally.episodes += 1
                _, self.info = env.reset()
                tally.resets += 1


class _VectorPlayer:
    def __init__(self, envs: Any, np: Any) -> None:
        self.envs, self.np, self.tally = envs, np, Tally()
        self.rng = np.random.default_rng(0)
        _, self.info = envs.reset(seed=0)

    def play(self, deadline: float) -> None:
        tally, perf, envs, np = self.tally, time.perf_counter, self.envs, self.np
        while tally.count < MAX_COUNT and perf() < deadline:
            actions = _choose(np, self.rng, self.info["action_mask"])
            start = perf()
            _, _, terminated, truncated, self.info = envs.step(actions)
            tally.latencies.append(perf() - start)
            tally.count += envs.num_envs
            tally.episodes += int(np.count_nonzero(terminated | truncated))


def _run(case: Case, settings: Settings, player: Any, pids: Sequence[int], latency_of: str) -> dict[str, Any]:
    if case.worlds:
        usage = measure(player, settings, pids)
        seconds, cpu = usage.wall, usage.per(player.tally.count)
    else:
        player.play(time.perf_counter() + settings.warmup)
        player.tally = Tally()
        started, cpu_started = time.perf_counter(), time.process_time()
        player.play(started + settings.duration)
        seconds = time.perf_counter() - started
        per_step = (time.process_time() - cpu_started) / max(1, player.tally.count) * 1e6
        cpu = {"world_cpu_us": None, "broker_cpu_us": None, "server_cpu_us": None, "client_cpu_us": per_step}
    result = figures(case, settings, unit="env step", tally=player.tally, seconds=seconds, cpu=cpu,
                     latency_of=latency_of)
    result["policy"] = POLICY
    return result


def run_env(case: Case, settings: Settings, frontend: str | None = None, pids: Sequence[int] = ()) -> dict[str, Any]:
    np, arena_env, _ = _rl()
    task = settings.task.name if case.worlds else settings.task
    env = arena_env(task, broker=frontend if case.worlds else None, seed=settings.seed, timeout=settings.timeout)
    try:
        return _run(case, settings, _EnvPlayer(env, np), pids, "ArenaEnv.step")
    finally:
        env.close()


def run_env_vector(case: Case, settings: Settings, frontend: str | None = None,
                   pids: Sequence[int] = ()) -> dict[str, Any]:
    np, _, arena_vector_env = _rl()
    task = settings.task.name if case.worlds else settings.task
    envs = arena_vector_env(task, case.envs, broker=frontend if case.worlds else None, seed=settings.seed,
                            timeout=settings.timeout)
    try:
        return _run(case, settings, _VectorPlayer(envs, np), pids, "ArenaVectorEnv.step (all envs)")
    finally:
        envs.close()
