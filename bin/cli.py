"""The ``arena`` command (DESIGN §5).

    arena up          broker + worlds as child processes; Ctrl-C stops them all
    arena broker      the broker alone
    arena world       one world worker
    arena gateway     NetSecGame's TCP + JSON protocol, for existing NetSecGame agents
    arena play        agents playing through the broker (progress bar, summary, --json)
    arena monitor     a live dashboard per task and game from the trace, or JSONL (bin/monitor.py)
    arena status      worlds, tasks, games and seats
    arena demo        attacker against defender on the default task, then a summary
    arena keys        CURVE keys for the broker and its clients (encryption, client allow-list)
    arena bench       the performance suite: steps/s, latency, server CPU per step (bin/bench.py)
    arena replay      an episode of a trajectory file, step by step: actions, rewards, state changes
    arena report      PNG plots and an HTML page from trajectory and trace JSONL files (bin/report.py)

Installed as the ``arena`` console script; also ``python -m bin``.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from agents.play import EpisodeOutcome, Summary, play_episodes, play_parallel
from agents.policies import POLICIES
from agents.status import query_status
from broker import DEFAULT_ENDPOINTS
from protocol import AgentRole, ArenaError, CurveServer
from world import TaskConfigError, load_task

from .bench import bench
from .curve_options import curve_client, curve_client_options, curve_keys, keys
from .monitor import monitor
from .replay import replay
from .report import report
from .stack import Stack, write_endpoints

__all__ = ["main"]

log = logging.getLogger("arena")

_ROLE_OF_AGENT = {"random": "Attacker", "kill-chain": "Attacker", "defender": "Defender", "benign": "Benign"}


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM call ``stop()`` instead of killing the process mid-step."""
    previous = {sig: signal.signal(sig, lambda *_: stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(server: Any, endpoints: dict[str, str], endpoints_file: str | None) -> None:
    """Announce a bound server's endpoints (stdout, and a file if asked), then run it
    until SIGINT/SIGTERM and close it."""
    click.echo(json.dumps(endpoints))
    if endpoints_file:
        write_endpoints(endpoints_file, endpoints)
    with _stop_on_signals(server.stop):
        try:
            server.run()
        finally:
            server.close()


def _load_tasks(locations: tuple[str, ...]) -> list[Any]:
    try:
        return [load_task(location) for location in locations] or [load_task()]
    except TaskConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """netsec-arena: the NetSecGame network-security game, served at scale."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------- servers
@main.command()
@click.option("--frontend", default=DEFAULT_ENDPOINTS["frontend"], show_default=True, help="Agents connect here.")
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True, help="Worlds connect here.")
@click.option("--trace", default=DEFAULT_ENDPOINTS["trace"], show_default=True, help="Monitors subscribe here.")
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True,
              help="Worlds publish the trace here.")
@click.option("--heartbeat", default=1.0, show_default=True, type=click.FloatRange(0.01), help="Seconds.")
@click.option("--liveness", default=3, show_default=True, type=click.IntRange(3),
              help="Heartbeats a world may miss before it is declared dead.")
@click.option("--recovery", default=10.0, show_default=True, type=click.FloatRange(0),
              help="Seconds after start during which requests for seats no world listed yet wait for it.")
@click.option("--max-inflight", default=4096, show_default=True, type=click.IntRange(1),
              help="Requests one client may have in flight.")
@click.option("--endpoints-file", type=click.Path(dir_okay=False), help="Write the bound endpoints here (JSON).")
@click.option("--curve-secret", metavar="FILE", type=click.Path(dir_okay=False),
              help="CURVE on: the broker's secret certificate (arena keys: server.key_secret).")
@click.option("--curve-allow", metavar="DIR", type=click.Path(file_okay=False),
              help="CURVE on: the directory of allowed client public certificates (arena keys: allowed/).")
def broker(frontend: str, backend: str, trace: str, trace_input: str, heartbeat: float, liveness: int,
           recovery: float, max_inflight: int, endpoints_file: str | None, curve_secret: str | None,
           curve_allow: str | None) -> None:
    """Run the broker: routes agents to world workers; `*` ports are bound and printed.
    With --curve-secret and --curve-allow every socket is encrypted and only clients whose
    keys are allowed get in."""
    from broker import Broker

    curve = None
    if curve_secret or curve_allow:
        if not (curve_secret and curve_allow):
            raise click.UsageError("CURVE needs both --curve-secret and --curve-allow")
        try:
            curve = CurveServer.load(curve_secret, curve_allow)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    server = Broker(frontend, backend, trace, trace_input, heartbeat=heartbeat, liveness=liveness,
                    recovery=recovery, max_inflight=max_inflight, curve=curve)
    from world.worker import tune_gc

    tune_gc()  # the broker's load is the world's: many short-lived, acyclic objects per step
    _serve(server, server.bind(), endpoints_file)


@main.command()
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True, help="The broker's backend.")
@click.option("--task", "tasks", multiple=True, metavar="FILE_OR_URL", help="Task to serve (repeatable).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--capacity", default=1000, show_default=True, type=click.IntRange(1), help="Games at most.")
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True,
              help="The broker's trace input ('' for none).")
@click.option("--trace-level", default="steps", show_default=True, type=click.Choice(["off", "episodes", "steps"]))
@click.option("--heartbeat", default=1.0, show_default=True, type=click.FloatRange(0.01), help="Seconds.")
@click.option("--liveness", default=3, show_default=True, type=click.IntRange(3),
              help="Heartbeats the broker may miss before the world reconnects.")
@click.option("--name", default=None, help="World id (default w-<host>-<pid>).")
@click.option("--ready-file", type=click.Path(dir_okay=False), hidden=True)
@click.option("--echo", is_flag=True, hidden=True, help="Canned replies, no game work (arena bench's baseline).")
@curve_client_options
def world(backend: str, tasks: tuple[str, ...], seed: int, capacity: int, trace_input: str, trace_level: str,
          heartbeat: float, liveness: int, name: str | None, ready_file: str | None, echo: bool,
          curve_server: str | None, curve_secret: str | None) -> None:
    """Run one world worker: hosts games of its tasks, created on demand. SIGTERM drains it."""
    from world.worker import WorldWorker, tune_gc

    curve = curve_client(curve_server, curve_secret)
    worker = WorldWorker(backend, _load_tasks(tasks), seed=seed, capacity=capacity, trace_input=trace_input or None,
                         name=name, heartbeat=heartbeat, liveness=liveness, trace_level=trace_level, curve=curve)
    if echo:
        from .bench_echo import use_echo_host

        use_echo_host(worker, seed)
    if ready_file:
        write_endpoints(ready_file, {"world": worker.name, "tasks": sorted(worker.tasks)})
    tune_gc()
    with _stop_on_signals(worker.stop):
        worker.run()


@main.command()
@click.option("--task", "tasks", multiple=True, metavar="FILE_OR_URL", help="Task to serve (repeatable).")
@click.option("--worlds", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--frontend", default=DEFAULT_ENDPOINTS["frontend"], show_default=True)
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True)
@click.option("--trace", default=DEFAULT_ENDPOINTS["trace"], show_default=True)
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True)
@click.option("--gateway", default=None, metavar="HOST:PORT", help="Also start the NetSecGame TCP gateway here.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--endpoints-file", type=click.Path(dir_okay=False), help="Write the bound endpoints here (JSON).")
@click.option("--curve", "curve_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="CURVE on every socket, with the keys `arena keys DIR` made (worlds use clients/world, "
                   "the gateway clients/gateway).")
def up(tasks: tuple[str, ...], worlds: int, frontend: str, backend: str, trace: str, trace_input: str,
       gateway: str | None, seed: int, endpoints_file: str | None, curve_dir: str | None) -> None:
    """Start a broker, N world workers (and the gateway) as child processes; Ctrl-C or
    SIGTERM stops them all."""
    _load_tasks(tasks)  # fail here, not in a child, on a broken task
    keys = curve_keys(curve_dir, Stack.curve_clients(gateway=gateway is not None))
    stack = Stack(tasks=tasks, worlds=worlds, seed=seed, frontend=frontend, backend=backend, trace=trace,
                  trace_input=trace_input, gateway=gateway, curve=keys.directory if keys else None)
    stopping = threading.Event()
    with _stop_on_signals(stopping.set):
        try:
            endpoints = stack.start()
        except (RuntimeError, TimeoutError) as error:
            raise click.ClickException(f"the stack did not start: {error}") from None
        try:
            if endpoints_file:
                write_endpoints(endpoints_file, endpoints)
            click.echo(json.dumps({k: v for k, v in endpoints.items() if k != "pids"}))
            extra = f" and the gateway on {endpoints['gateway']}" if gateway else ""
            click.echo(f"arena up: broker, {worlds} worlds{extra} running; Ctrl-C stops them", err=True)
            if keys is not None:
                click.echo(f"arena up: CURVE on; clients add --curve-server {keys.server_public} "
                           f"--curve-secret {keys.client_secret('agent')} (or their own key)", err=True)
            while not stopping.wait(0.5):
                dead = [p for p in stack.processes if p.poll() is not None]
                if dead:
                    click.echo(f"arena up: process {dead[0].pid} exited ({dead[0].returncode}); stopping",
                               err=True)
                    break
        finally:
            stack.stop()
    click.echo("arena up: stopped", err=True)


@main.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True,
              help="The broker's frontend.")
@click.option("--listen", default="127.0.0.1:9000", show_default=True, metavar="HOST:PORT",
              help="TCP address NetSecGame agents connect to (port 0: a free port).")
@click.option("--task", default=None, help="Task name on the broker (default: its only or default task).")
@click.option("--game", default=None, help="Seat every connection in this named game.")
@click.option("--incomplete-timeout", default=0.1, show_default=True, type=click.FloatRange(0.001),
              help="Seconds an unfinished JSON request may wait for its next bytes.")
@click.option("--reply-timeout", default=120.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds to wait for the broker's answer.")
@click.option("--max-connections", default=1024, show_default=True, type=click.IntRange(1))
@click.option("--allow", multiple=True, metavar="CIDR", help="Accept clients from these networks only (repeatable).")
@click.option("--endpoints-file", type=click.Path(dir_okay=False), help="Write the bound address here (JSON).")
@curve_client_options
def gateway(address: str, listen: str, task: str | None, game: str | None, incomplete_timeout: float,
            reply_timeout: float, max_connections: int, allow: tuple[str, ...], endpoints_file: str | None,
            curve_server: str | None, curve_secret: str | None) -> None:
    """Serve NetSecGame's TCP + JSON protocol: existing NetSecGame agents play unchanged,
    one seat per connection."""
    from broker.gateway import Gateway

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {listen!r}", param_hint="--listen")
    server = Gateway(address, (host.strip("[]"), int(port)), task=task, game=game,
                     incomplete_timeout=incomplete_timeout, reply_timeout=reply_timeout,
                     max_connections=max_connections, allow=list(allow) or None,
                     curve=curve_client(curve_server, curve_secret))
    bound = server.bind()
    _serve(server, {"gateway": f"{bound[0]}:{bound[1]}"}, endpoints_file)


# ---------------------------------------------------------------------- clients
@main.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True)
@click.option("--agent", default="random", show_default=True, type=click.Choice(sorted(POLICIES)))
@click.option("--role", default=None, type=click.Choice(["Attacker", "Defender", "Benign"], case_sensitive=False),
              help="Default: the agent's natural role.")
@click.option("--task", default=None, help="Task name on the broker (default: its only or default task).")
@click.option("--game", default=None, help="Join this named game.")
@click.option("--episodes", default=10, show_default=True, type=click.IntRange(1))
@click.option("--envs", default=1, show_default=True, type=click.IntRange(1, 4096), help="Parallel environments.")
@click.option("--batched/--unbatched", default=True, show_default=True, help="Batch steps per world (--envs > 1).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(0.1), help="Seconds per reply.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@curve_client_options
def play(address: str, agent: str, role: str | None, task: str | None, game: str | None, episodes: int, envs: int,
         batched: bool, seed: int, timeout: float, as_json: bool, curve_server: str | None,
         curve_secret: str | None) -> None:
    """Play episodes through the broker with a scripted policy, then summarise."""
    from agents import BaseAgent, ParallelBaseAgent

    role_value = AgentRole.from_string(role or _ROLE_OF_AGENT[agent])
    curve = curve_client(curve_server, curve_secret)
    summary = Summary()
    try:
        if envs == 1:
            client: Any = BaseAgent(address, role_value, task=task, game=game, name=f"arena-{agent}",
                                    timeout=timeout, curve=curve)
            loop = play_episodes
        else:
            client = ParallelBaseAgent(address, role_value, envs, task=task, game=game, batched=batched,
                                       timeout=timeout, curve=curve)
            loop = play_parallel
        with _progress(episodes, f"{agent} ({role_value.value})", summary, quiet=as_json) as report:
            try:
                for outcome in loop(client, POLICIES[agent], episodes, random.Random(seed)):
                    report(outcome)
                    if summary.episodes >= episodes:
                        break
            finally:
                client.terminate_connection()
    except ArenaError as error:
        raise click.ClickException(str(error)) from None
    _print_summary(summary.as_dict(), as_json)


@contextmanager
def _progress(episodes: int, label: str, summary: Summary, *, quiet: bool) -> Iterator[Any]:
    def figures(_: Any) -> str:
        return f"wins {summary.wins}/{summary.episodes}, {summary.steps} steps" if summary.episodes else ""

    if quiet:
        yield summary.add
        return
    with click.progressbar(length=episodes, label=label, item_show_func=figures, file=sys.stderr) as bar:
        def report(outcome: EpisodeOutcome) -> None:
            summary.add(outcome)
            bar.update(1, outcome)

        yield report


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary))
        return
    outcomes = f"{summary['detections']} detections" if not summary.get("losses") else f"{summary['losses']} losses"
    click.echo(f"{summary['episodes']} episodes: {summary['wins']} wins, {outcomes}, "
               f"{summary['timeouts']} timeouts; mean return {summary['mean_return']:.1f}")
    click.echo(f"{summary['steps']} steps, {summary['steps_per_second']:,.0f} steps/s")


@main.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True)
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1))
@click.option("--json", "as_json", is_flag=True)
@curve_client_options
def status(address: str, timeout: float, as_json: bool, curve_server: str | None, curve_secret: str | None) -> None:
    """List the broker's worlds, tasks, games and seats."""
    answer = query_status(address, timeout=timeout, curve=curve_client(curve_server, curve_secret))
    if not answer:
        raise click.ClickException(f"no answer from a broker at {address} within {timeout:g} s")
    if as_json:
        click.echo(json.dumps(answer))
        return
    click.echo(f"tasks: {', '.join(answer['tasks']) or '-'}; seats: {answer['seats']}")
    for entry in answer["worlds"]:
        click.echo(f"world {entry['world']}: tasks {', '.join(entry['tasks'])}, games {entry['games']}/"
                   f"{entry['capacity']}, seats {entry['seats']}, up {entry['alive_for']:.0f} s")
    for entry in answer["games"]:
        click.echo(f"  game {entry['game']} ({entry['task']}) on {entry['world']}: {entry['seats']}")


@main.command()
@click.option("--task", "task_location", default=None, metavar="FILE_OR_URL",
              help="Task file or http(s) URL (default: the built-in attacker-vs-defender task).")
@click.option("--episodes", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def demo(task_location: str | None, episodes: int, seed: int, as_json: bool) -> None:
    """Start the stack, play a kill-chain attacker against a defender in one named game,
    show live figures and a summary, and stop everything."""
    from agents import BaseAgent

    task = _load_tasks((task_location,) if task_location else ())[0]
    summary = Summary()
    with Stack(tasks=[task_location] if task_location else [], worlds=1, seed=seed) as stack:
        frontend = stack.endpoints["frontend"]
        defender = subprocess.Popen(
            [sys.executable, "-m", "bin", "play", "--broker", frontend, "--agent", "defender", "--task", task.name,
             "--game", "demo", "--episodes", str(episodes), "--seed", str(seed + 1), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for_seat(frontend, "demo", "Defender", defender)  # so the game starts with both players
            attacker = BaseAgent(frontend, AgentRole.Attacker, task=task.name, game="demo", name="attacker")
            summary.started = time.perf_counter()  # time the play, not the start-up
            try:
                with _progress(episodes, f"{task.name}: attacker vs defender", summary, quiet=as_json) as report:
                    for outcome in play_episodes(attacker, POLICIES["kill-chain"], episodes, random.Random(seed)):
                        report(outcome)
            except ArenaError as error:
                raise click.ClickException(str(error)) from None
            finally:
                attacker.terminate_connection()
            out, err = defender.communicate(timeout=120)
        finally:
            if defender.poll() is None:
                defender.kill()
                defender.wait()
    if defender.returncode != 0:
        raise click.ClickException(f"the defender failed: {err.strip().splitlines()[-1] if err.strip() else '?'}")
    result = summary.as_dict()
    result["mean_defender_return"] = json.loads(out)["mean_return"]
    if as_json:
        click.echo(json.dumps(result))
        return
    _print_summary(result, False)
    click.echo(f"defender mean return {result['mean_defender_return']:.1f}")


def _wait_for_seat(frontend: str, game: str, role: str, process: subprocess.Popen[str],
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        games = query_status(frontend, timeout=1.0).get("games", [])
        if any(g["game"] == game and g["seats"].get(role) for g in games):
            return
        time.sleep(0.05)  # another process's state: nothing to wait on but a query
    raise click.ClickException(f"the {role.lower()} did not take its seat in game {game!r}")


main.add_command(bench)
main.add_command(keys)
main.add_command(monitor)
main.add_command(replay)
main.add_command(report)

if __name__ == "__main__":
    main()
