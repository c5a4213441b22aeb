"""The ``arena bench`` cases that play through a broker: lock-step, resets, parallel
environments and the games-per-world flatness series.

Each is a player that plays until a deadline; :func:`measure` gives it a warm-up, then
reads the server processes' CPU times before and after one measured interval.

The flatness series plays 1, 8, 64 and 256 games on one world **round-robin, lock-step**:
one request at a time, each game in turn, so every count sends the same messages and
only the number of active games changes. (A ``ParallelBaseAgent`` with N envs would
batch N steps per message, and the per-message cost shared by N steps would hide any
growth: those figures are in the ``parallel-N-1-*`` cases.) The repeats are interleaved
(1, 8, 64, 256, 1, 8, ...) so a slow spell of the machine falls on every count alike;
each run seats its own agents, so only its games exist. CPU is per request: the steps
and the resets between episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import zmq

from agents import BaseAgent, ParallelBaseAgent
from protocol import AgentRole, Observation

from .bench_cases import GAMES, MAX_COUNT, BenchError, Case, Settings, Tally, figures, flatness_series
from .bench_measure import CpuSample, Usage
from .bench_script import Cursor

__all__ = ["measure", "run_games", "run_lockstep", "run_parallel", "run_resets"]


class _Player(Protocol):
    """Plays until a deadline, counting into ``tally``."""

    tally: Tally

    def play(self, deadline: float) -> None: ...


def measure(player: _Player, settings: Settings, pids: Sequence[int]) -> Usage:
    """A warm-up, then one measured interval with fresh counters."""
    player.play(time.perf_counter() + settings.warmup)
    player.tally = Tally()
    before = CpuSample.take(pids)
    player.play(time.perf_counter() + settings.duration)
    return Usage.between(before, CpuSample.take(pids))


class _Lockstep(_Player):
    def __init__(self, agent: BaseAgent, cursor: Cursor) -> None:
        self.agent, self.cursor, self.tally = agent, cursor, Tally()

    def play(self, deadline: float) -> None:
        tally, perf = self.tally, time.perf_counter
        while tally.count < MAX_COUNT and perf() < deadline:
            self.step(tally)

    def step(self, tally: Tally) -> None:
        """One step (and the reset after an episode's last one)."""
        agent, perf = self.agent, time.perf_counter
        action = self.cursor.next()
        start = perf()
        result = agent.make_step(action)
        tally.latencies.append(perf() - start)
        if result is None:
            raise BenchError(f"a step failed: {agent.last_error}")
        tally.count += 1
        if result.end:
            tally.episodes += 1
            self.cursor.new_episode()
            if agent.request_game_reset() is None:
                raise BenchError(f"a reset failed: {agent.last_error}")
            tally.resets += 1


class _Resets(_Player):
    def __init__(self, agent: BaseAgent) -> None:
        self.agent, self.tally = agent, Tally()

    def play(self, deadline: float) -> None:
        agent, tally, perf = self.agent, self.tally, time.perf_counter
        while tally.count < MAX_COUNT and perf() < deadline:
            start = perf()
            result = agent.request_game_reset()
            tally.latencies.append(perf() - start)
            if result is None:
                raise BenchError(f"a reset failed: {agent.last_error}")
            tally.count += 1
            tally.resets += 1


class _RoundRobin(_Player):
    """Many lock-step agents, one request at a time in turn."""

    def __init__(self, players: list[_Lockstep]) -> None:
        self.players, self.tally, self._next = players, Tally(), 0

    def play(self, deadline: float) -> None:
        players, count, perf = self.players, len(self.players), time.perf_counter
        while self.tally.count < MAX_COUNT and perf() < deadline:
            players[self._next].step(self.tally)
            self._next = (self._next + 1) % count


class _Parallel(_Player):
    """Steps every live env at once; resets them all when all are done (the API's way)."""

    def __init__(self, envs: ParallelBaseAgent, settings: Settings) -> None:
        self.envs, self.tally = envs, Tally()
        self.cursors = [Cursor(settings.script, env) for env in range(envs.num_envs)]

    def play(self, deadline: float) -> None:
        envs, tally, perf, cursors = self.envs, self.tally, time.perf_counter, self.cursors
        while tally.count < MAX_COUNT and perf() < deadline:
            if envs.all_done:
                observations = envs.request_game_reset()
                if not all(observations):
                    raise BenchError(f"a reset failed: {envs.last_error}")
                tally.resets += len(observations)
            actions = [None if done else cursors[env].next() for env, done in enumerate(envs.done_mask)]
            start = perf()
            results: list[Observation | None] = envs.make_step(actions)
            tally.latencies.append(perf() - start)
            for env, result in enumerate(results):
                if actions[env] is None:
                    continue
                if result is None:
                    raise BenchError(f"a step of env {env} failed: {envs.last_errors[env]}")
                tally.count += 1
                if result.end:
                    tally.episodes += 1
                    cursors[env].new_episode()


def _agent(frontend: str, settings: Settings, context: zmq.Context | None = None) -> BaseAgent:
    return BaseAgent(frontend, AgentRole.Attacker, task=settings.task.name, name="bench", timeout=settings.timeout,
                     context=context)


def _register(agent: BaseAgent) -> None:
    if agent.register() is None:
        raise BenchError(f"JoinGame failed: {agent.last_error}")


def run_lockstep(case: Case, settings: Settings, frontend: str, pids: Sequence[int]) -> dict[str, Any]:
    agent = _agent(frontend, settings)
    try:
        _register(agent)
        player = _Lockstep(agent, Cursor(settings.script))
        usage = measure(player, settings, pids)
    finally:
        agent.terminate_connection()
    return figures(case, settings, unit="step", tally=player.tally, seconds=usage.wall,
                   cpu=usage.per(player.tally.count), latency_of="BaseAgent.make_step")


def run_resets(case: Case, settings: Settings, frontend: str, pids: Sequence[int]) -> dict[str, Any]:
    agent = _agent(frontend, settings)
    try:
        _register(agent)
        player = _Resets(agent)
        usage = measure(player, settings, pids)
    finally:
        agent.terminate_connection()
    return figures(case, settings, unit="reset", tally=player.tally, seconds=usage.wall,
                   cpu=usage.per(player.tally.count), latency_of="BaseAgent.request_game_reset")


def run_parallel(case: Case, settings: Settings, frontend: str, pids: Sequence[int]) -> dict[str, Any]:
    envs = ParallelBaseAgent(frontend, AgentRole.Attacker, case.envs, task=settings.task.name, name="bench",
                             batched=case.batched, timeout=settings.timeout)
    try:
        if not all(envs.register()):
            raise BenchError(f"JoinGame failed: {envs.last_error}")
        player = _Parallel(envs, settings)
        usage = measure(player, settings, pids)
    finally:
        envs.terminate_connection()
    return figures(case, settings, unit="step", tally=player.tally, seconds=usage.wall,
                   cpu=usage.per(player.tally.count), latency_of="ParallelBaseAgent.make_step (all envs)")


def _games_run(games: int, repeat: int, settings: Settings, frontend: str, pids: Sequence[int],
               context: zmq.Context) -> tuple[Tally, Usage]:
    agents = [_agent(frontend, settings, context) for _ in range(games)]
    try:
        players = []
        for index, agent in enumerate(agents):
            _register(agent)
            players.append(_Lockstep(agent, Cursor(settings.script, repeat * 7 + index)))
        round_robin = _RoundRobin(players)
        usage = measure(round_robin, settings, pids)
    finally:
        for agent in agents:
            agent.terminate_connection()
    return round_robin.tally, usage


def run_games(case: Case, settings: Settings, frontend: str, pids: Sequence[int],
              on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    """The flatness series: world CPU per request with 1 ... 256 active games on one world."""
    # Each agent has a socket and a handshake monitor (three ZeroMQ sockets): more than a
    # context's default 1023 at 256 games, so the series has its own roomier context.
    context = zmq.Context()
    context.set(zmq.MAX_SOCKETS, 16 * max(GAMES) + 64)

    def run(games: int, repeat: int) -> tuple[Tally, float, dict[str, float | None]]:
        tally, usage = _games_run(games, repeat, settings, frontend, pids, context)
        return tally, usage.wall, usage.per(tally.count + tally.resets)

    try:
        result = flatness_series(case, settings, run, "BaseAgent.make_step, round-robin over the games", on_run)
    finally:
        context.destroy(linger=0)
    result["cpu_per"] = "request (steps and resets); per game count the median of its runs"
    return result
