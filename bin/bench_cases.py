"""The cases of ``arena bench``, their settings and results, and the in-process ones.

Every case plays for ``duration`` seconds after a short warm-up (at most ``MAX_COUNT``
operations) and returns one flat dict: the operation rate, episodes, latency
percentiles and CPU microseconds per operation of the world(s), the broker and this
process (the client). Every client replays the same recorded random-agent episodes
(:mod:`bin.bench_script`), so the bench measures the server and the transport.

Cases, by ``kind``:

* ``inprocess``: ``GameSession.step`` alone, no sockets;
* ``host``: ``GameHost.request`` on STEP frames: decoding, the step, the reply's encoding
  and the trace events packed, i.e. a world's work without its sockets and loop;
* ``lockstep``: one ``BaseAgent`` stepping through the broker;
* ``resets``: one ``BaseAgent`` asking for resets (unit: a reset);
* ``parallel``: ``ParallelBaseAgent`` with ``envs`` environments over ``worlds`` worlds,
  batched or not (latency: one ``make_step`` call, all envs);
* ``games``: the flatness series, world CPU per request from /proc with 1, 8, 64 and 256
  active games on one world (:func:`bin.bench_clients.run_games`);
* ``games-host``: the same series in process (:class:`HostGames`), the world's work per step
  timed alone: without the sockets' fixed cost per message, growth shows undiluted.
* ``env``, ``env-vector``: the RL environments (``ArenaEnv``, ``ArenaVectorEnv`` of ``envs``
  games) with live random masked actions, in process or on a stack (:mod:`bin.bench_envs`).

``echo`` cases run the same client against echo worlds (:mod:`bin.bench_echo`).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from protocol import PROTOCOL_FRAME, AgentRole, Command, action_to_compact, decode_reply, pack, seq_bytes, unpack
from world import GameSession, TaskConfig
from world.game_host import GameHost
from world.worker import tune_gc

from .bench_measure import percentile
from .bench_script import POLICY, Cursor, Script

__all__ = ["ENVS", "GAMES", "MAX_COUNT", "REPEATS", "WORLDS", "BenchError", "Case", "Settings", "Tally",
           "all_cases", "figures", "run_case"]

ENVS = (1, 8, 64, 256)
WORLDS = (1, 2, 4)
GAMES = (1, 8, 64, 256)
REPEATS = 3
#: Operations one measured interval stops at, whatever the duration (a bounded loop).
MAX_COUNT = 5_000_000
#: Steps each game of the in-process flatness series plays before it is measured.
WARMUP_STEPS_PER_GAME = 20
_REQUEST, _STEP, _JOIN, _RESET = Command.REQUEST.frame, Command.STEP.frame, Command.JOIN.frame, Command.RESET.frame


class BenchError(RuntimeError):
    """A case could not run (a failed request, a game that did not start)."""


@attrs.frozen
class Case:
    """One named measurement; ``worlds`` 0 runs in process, else on a stack of that many."""

    name: str
    kind: str
    worlds: int = 0
    envs: int = 1
    batched: bool = False
    echo: bool = False

    @property
    def extra(self) -> str | None:
        """The optional extra the case needs (pyproject.toml), if any."""
        return "rl" if self.kind in ("env", "env-vector") else None

    @property
    def baseline(self) -> str | None:
        """The echo case of the same shape, if there is one."""
        return None if self.echo or self.kind not in ("lockstep", "parallel") else f"echo-{self.name}"

    def describe(self) -> str:
        if self.kind == "games-host":
            return f"in process, {'/'.join(map(str, GAMES))} games on one GameHost round-robin, {REPEATS} runs each"
        if not self.worlds:
            return "in process"
        worlds = f"{self.worlds} world{'s' if self.worlds > 1 else ''}"
        if self.kind == "games":
            return f"{worlds}, {'/'.join(map(str, GAMES))} games round-robin, {REPEATS} runs each"
        envs = f"{self.envs} env{'s' if self.envs > 1 else ''}"
        return ", ".join([worlds, envs, *(["batched"] if self.batched else []), *(["echo"] if self.echo else [])])


def all_cases() -> list[Case]:
    """Every case, in listing order (names are stable: scripts select them)."""
    cases = [Case("inprocess", "inprocess"), Case("inprocess-host", "host"),
             Case("lockstep", "lockstep", 1), Case("echo-lockstep", "lockstep", 1, echo=True),
             Case("resets", "resets", 1), Case("games-per-world", "games", 1), Case("games-per-host", "games-host")]
    for echo in (False, True):
        for worlds in WORLDS:
            for envs in ENVS:
                for batched in (True, False):
                    name = f"{'echo-' if echo else ''}parallel-{envs}-{worlds}-{'batched' if batched else 'unbatched'}"
                    cases.append(Case(name, "parallel", worlds, envs, batched, echo))
    cases += [Case("env-inprocess", "env"), Case("env-lockstep", "env", 1),
              Case("env-vector-64-inprocess", "env-vector", 0, 64), Case("env-vector-64-2", "env-vector", 2, 64)]
    return cases


@attrs.frozen
class Settings:
    task: TaskConfig
    script: Script
    duration: float
    seed: int = 42
    timeout: float = 30.0
    trace: str = "steps"

    @property
    def warmup(self) -> float:
        return min(0.5, max(0.1, self.duration / 4))


@attrs.define
class Tally:
    count: int = 0
    episodes: int = 0
    resets: int = 0
    latencies: list[float] = attrs.Factory(list)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def figures(case: Case, settings: Settings, *, unit: str, tally: Tally, seconds: float,
            cpu: dict[str, float | None], latency_of: str) -> dict[str, Any]:
    """A case's result: one flat JSON object (CPU figures in µs per ``unit``)."""
    trace = "off" if case.echo or case.kind == "inprocess" else settings.trace  # echo worlds make no events
    return {
        "case": case.name, "kind": case.kind, "echo": case.echo, "worlds": case.worlds, "envs": case.envs,
        "batched": case.batched if case.kind == "parallel" else None, "policy": POLICY, "trace": trace,
        "unit": unit, "count": tally.count, "seconds": seconds,
        "per_second": tally.count / seconds if seconds > 0 else 0.0,
        "episodes": tally.episodes, "resets": tally.resets,
        "latency_p50_ms": ms(percentile(tally.latencies, 50)), "latency_p99_ms": ms(percentile(tally.latencies, 99)),
        "latency_of": latency_of, **cpu, "echo_fraction": None,
    }


def _in_process_cpu(seconds: float, count: int) -> dict[str, float | None]:
    per_step = seconds / max(1, count) * 1e6
    return {"world_cpu_us": per_step, "broker_cpu_us": None, "server_cpu_us": per_step, "client_cpu_us": None}


def run_inprocess(case: Case, settings: Settings) -> dict[str, Any]:
    """``GameSession.step`` timed alone (the public, validating entry point)."""
    session = GameSession(settings.task, seed=settings.seed, name="bench")
    [joined] = session.join("bench", "bench", AgentRole.Attacker, 0.0)
    if joined.observation is None:
        raise BenchError(f"a lone attacker cannot start a game of task {settings.task.name}")
    observation, cursor, perf = joined.observation, Cursor(settings.script), time.perf_counter
    tally, stepping = Tally(), 0.0
    for phase_seconds in (settings.warmup, settings.duration):
        tally, stepping = Tally(), 0.0
        deadline = perf() + phase_seconds
        latencies = tally.latencies
        while tally.count < MAX_COUNT and perf() < deadline:
            action = cursor.next()
            start = perf()
            replies = session.step("bench", action, 0.0)
            took = perf() - start
            stepping += took
            latencies.append(took)
            observation = replies[0].observation
            tally.count += 1
            if observation.end:
                tally.episodes += 1
                cursor.new_episode()
                session.reset("bench", 0.0)
    return figures(case, settings, unit="step", tally=tally, seconds=stepping,
                   cpu=_in_process_cpu(stepping, tally.count),
                   latency_of="GameSession.step (per_second: of the stepping time alone)")


class HostGames:
    """``games`` games on one ``GameHost``, one seat each, stepped round-robin from the
    script; only the world's work is timed: ``GameHost.request`` on STEP frames and the
    trace events packed, as the worker does each loop turn."""

    def __init__(self, settings: Settings, games: int, first_episode: int = 0) -> None:
        task = settings.task
        self.host = GameHost({task.name: task}, "w-bench", seed=settings.seed, trace=settings.trace != "off",
                             step_events=settings.trace == "steps")
        self.seats = [f"s-{index}".encode() for index in range(games)]
        self.cursors = [Cursor(settings.script, first_episode + index) for index in range(games)]
        self.sequence = 0
        self._next = 0
        self._reset_body = pack([False, False, None])
        for index, seat in enumerate(self.seats):
            self._request(seat, _JOIN, pack({"task": task.name, "role": "Attacker", "game": f"g-{index}",
                                             "name": "bench"}))

    def _frames(self, seat: bytes, command: bytes, body: bytes) -> list[bytes]:
        self.sequence += 1
        return [PROTOCOL_FRAME, _REQUEST, b"client", command, seat, seq_bytes(self.sequence), body]

    def _request(self, seat: bytes, command: bytes, body: bytes) -> None:
        host = self.host
        [reply] = host.request(self._frames(seat, command, body), 0.0)
        for _topic, events in host.take_events():
            pack({"publisher": "w-bench", "seq": self.sequence, "events": events})
        if host.released or host.closed:
            host.release_message()
        if decode_reply(reply[6]).observation is None:
            raise BenchError(f"the world refused a request: {decode_reply(reply[6])}")

    def play(self, seconds: float, at_least: int = 0) -> tuple[Tally, float]:
        """Steps for ``seconds`` of wall time (and ``at_least`` steps): the tally and the
        seconds spent in the world's work."""
        host, seats, cursors, perf = self.host, self.seats, self.cursors, time.perf_counter
        tally, stepping, count = Tally(), 0.0, len(seats)
        deadline = perf() + seconds
        while tally.count < MAX_COUNT and (perf() < deadline or tally.count < at_least):
            index = self._next
            self._next = (index + 1) % count
            seat, cursor = seats[index], cursors[index]
            frames = self._frames(seat, _STEP, pack(action_to_compact(cursor.next())))
            start = perf()
            [reply] = host.request(frames, 0.0)
            for _topic, events in host.take_events():
                pack({"publisher": "w-bench", "seq": self.sequence, "events": events})
            took = perf() - start
            stepping += took
            tally.latencies.append(took)
            tally.count += 1
            observation = unpack(reply[6])[1]  # [state bytes, reward, end, info]: the state stays undecoded
            if observation is None:
                raise BenchError(f"the world refused a step: {decode_reply(reply[6])}")
            if observation[2]:
                tally.episodes += 1
                cursor.new_episode()
                self._request(seat, _RESET, self._reset_body)
                tally.resets += 1
        return tally, stepping


def run_host(case: Case, settings: Settings) -> dict[str, Any]:
    """A world's work per step without its sockets and loop, one game."""
    with _world_gc():
        games = HostGames(settings, 1)
        games.play(settings.warmup)
        tally, stepping = games.play(settings.duration)
    return figures(case, settings, unit="step", tally=tally, seconds=stepping,
                   cpu=_in_process_cpu(stepping, tally.count),
                   latency_of="GameHost.request + trace events (per_second: of that work alone)")


#: One run of a flatness series: (games, repeat) -> (tally, seconds, CPU figures per request).
SeriesRun = Callable[[int, int], tuple[Tally, float, dict[str, float | None]]]


def flatness_series(case: Case, settings: Settings, run: SeriesRun, latency_of: str,
                    on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    """Per-step cost with 1 ... 256 active games: ``REPEATS`` runs of each count,
    interleaved (1, 8, 64, 256, 1, 8, ...) so that a slow spell of the machine falls on
    every count alike; per count the median of its runs, and max ÷ min of the world's."""
    runs: dict[int, list[dict[str, Any]]] = {games: [] for games in GAMES}
    total, seconds = Tally(), 0.0
    for repeat in range(REPEATS):
        for games in GAMES:
            tally, wall, cpu = run(games, repeat)
            runs[games].append({"per_second": tally.count / wall if wall > 0 else 0.0, **cpu,
                                "latency_p50_ms": ms(percentile(tally.latencies, 50)),
                                "latency_p99_ms": ms(percentile(tally.latencies, 99))})
            total.count += tally.count
            total.episodes += tally.episodes
            total.resets += tally.resets
            total.latencies += tally.latencies
            seconds += wall
            if on_run is not None:
                on_run()
    series = [{"games": games, **{key: _median([run[key] for run in runs[games]]) for key in runs[games][0]},
               "world_cpu_us_runs": [run["world_cpu_us"] for run in runs[games]]} for games in GAMES]
    world = [entry["world_cpu_us"] for entry in series if entry["world_cpu_us"]]
    result = figures(case, settings, unit="step", tally=total, seconds=seconds,
                     cpu={key: _median([entry[key] for entry in series])
                          for key in ("world_cpu_us", "broker_cpu_us", "server_cpu_us", "client_cpu_us")},
                     latency_of=latency_of)
    result["series"] = series
    result["flatness_ratio"] = max(world) / min(world) if len(world) == len(series) else None
    return result


def _median(values: list[Any]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def run_games_host(case: Case, settings: Settings, on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    """The flatness series in process: the world's work per step with N games on one host."""
    def run(games: int, repeat: int) -> tuple[Tally, float, dict[str, float | None]]:
        host_games = HostGames(settings, games, repeat * 7)
        host_games.play(settings.warmup, WARMUP_STEPS_PER_GAME * games)  # every game's own caches warm
        tally, stepping = host_games.play(settings.duration)
        return tally, stepping, _in_process_cpu(stepping, tally.count)

    with _world_gc():
        result = flatness_series(case, settings, run, "GameHost.request + trace events, round-robin over the games",
                                 on_run)
    result["cpu_per"] = "step (the world's work alone); per game count the median of its runs"
    return result


def run_case(case: Case, settings: Settings, frontend: str | None = None, pids: Sequence[int] = (),
             on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run one case (``frontend`` and the stack's ``pids`` for the cases on a stack)."""
    from . import bench_clients, bench_envs

    if case.kind in ("env", "env-vector"):
        runner = bench_envs.run_env if case.kind == "env" else bench_envs.run_env_vector
        return runner(case, settings, frontend, pids)
    if case.kind == "inprocess":
        return run_inprocess(case, settings)
    if case.kind == "host":
        return run_host(case, settings)
    if case.kind == "games-host":
        return run_games_host(case, settings, on_run)
    assert frontend is not None
    if case.kind == "games":
        return bench_clients.run_games(case, settings, frontend, pids, on_run)
    runner = {"lockstep": bench_clients.run_lockstep, "resets": bench_clients.run_resets,
              "parallel": bench_clients.run_parallel}[case.kind]
    return runner(case, settings, frontend, pids)


@contextlib.contextmanager
def _world_gc() -> Iterator[None]:
    """The collector thresholds an ``arena world`` process runs with (``world.worker.tune_gc``),
    for the in-process cases that stand for a world's work; the bench's own afterwards."""
    old = tune_gc(freeze=False)
    try:
        yield
    finally:
        gc.set_threshold(*old)
