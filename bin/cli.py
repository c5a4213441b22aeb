"""The ``arena`` command (DESIGN §5).

    arena up          broker + worlds as child processes; Ctrl-C stops them all
    arena broker      the broker alone
    arena world       one world worker
    arena gateway     NetSecGame's TCP + JSON protocol, for existing NetSecGame agents
    arena play        agents playing through the broker (progress bar, summary, --json)
    arena monitor     a live dashboard per task and game from the trace, or JSONL (bin/monitor.py)
    arena status      tasks (games by state, seats by role), worlds, and games (bin/status.py)
    arena demo        every seat of a task's game played by scripted policies, lock-step; a summary (bin/demo.py)
    arena keys        CURVE keys for the broker and its clients (encryption, client allow-list)
    arena bench       the performance suite: steps/s, latency, server CPU per step (bin/bench.py)
    arena replay      an episode of a trajectory file, step by step: actions, rewards, state changes
    arena report      PNG plots and an HTML page from trajectory and trace JSONL files (bin/report.py)

Installed as the ``arena`` console script; also ``python -m bin``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
from typing import Any

import click

from agents.policies import POLICIES
from broker import DEFAULT_ENDPOINTS
from protocol import AgentRole, CurveServer
from world import TaskConfigError, load_task

from .addresses import Endpoint, ListenAddress, bind_broker, exposed, exposure_warning, serve_error, split_listen
from .bench import bench
from .curve_options import curve_client, curve_client_options, curve_keys, keys
from .demo import demo
from .monitor import monitor
from .replay import replay
from .report import report
from .signals import stop_on_signals
from .stack import Stack, write_endpoints
from .status import status
from .supervisor import serve_stack

__all__ = ["main"]

log = logging.getLogger("arena")

BIND, CONNECT = Endpoint(bind=True), Endpoint(bind=False)  # address flags, checked before any socket exists

_ROLE_OF_AGENT = {"random": "Attacker", "kill-chain": "Attacker", "defender": "Defender", "benign": "Benign"}


def _serve(server: Any, endpoints: dict[str, str], endpoints_file: str | None, warning: str | None = None) -> None:
    """Announce a bound server's endpoints (stdout, and a file if asked) and ``warning``
    (stderr), then run it until SIGINT/SIGTERM/SIGHUP and close it. The stop signals are
    handled before anything is announced: whoever reacts to the announcement may stop us."""
    with stop_on_signals(server.stop):
        try:
            click.echo(json.dumps(endpoints))
            if warning:
                click.echo(warning, err=True)
            if endpoints_file:
                write_endpoints(endpoints_file, endpoints)
            server.run()
        finally:
            server.close()


def _load_tasks(locations: tuple[str, ...]) -> list[Any]:
    try:
        return [load_task(location) for location in locations] or [load_task()]
    except TaskConfigError as error:
        raise click.ClickException(str(error)) from None


def _installed_version() -> str:
    """The package's version (importlib.metadata), or why there is none."""
    try:
        return importlib.metadata.version("netsec-arena")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: pip install -e . in the clone)"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_installed_version(), prog_name="arena", message="%(prog)s %(version)s",
                      help="Show the installed netsec-arena version and exit.")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """netsec-arena: the NetSecGame network-security game, served at scale."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------- servers
@main.command()
@click.option("--frontend", default=DEFAULT_ENDPOINTS["frontend"], show_default=True, type=BIND,
              help="Agents connect here.")
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True, type=BIND,
              help="Worlds connect here.")
@click.option("--trace", default=DEFAULT_ENDPOINTS["trace"], show_default=True, type=BIND,
              help="Monitors subscribe here.")
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True, type=BIND,
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
    keys are allowed get in; without them, binding an address other machines can reach
    prints a warning naming those sockets. A malformed address exits 2, one that cannot
    be served (a busy port, another machine's address) exits 1, each with one line."""
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
    endpoints = bind_broker(server)
    flags = {"--frontend": "frontend", "--backend": "backend", "--trace": "trace", "--trace-input": "trace_input"}
    exposed_sockets = [] if curve is not None else exposed({f: endpoints.get(n, "") for f, n in flags.items()})
    _serve(server, endpoints, endpoints_file, exposure_warning(
        "arena broker", exposed_sockets, who="anyone who reaches them can play, serve games as a world or read the "
        "trace", remedy="turn CURVE on (arena keys, then arena up --curve DIR or arena broker --curve-secret and "
        "--curve-allow) or bind 127.0.0.1"))


@main.command()
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True, type=CONNECT,
              help="The broker's backend.")
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Task to serve (repeatable): a file, an http(s) URL or a shipped task's name.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--capacity", default=1000, show_default=True, type=click.IntRange(1), help="Games at most.")
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True,
              type=Endpoint(bind=False, optional=True), help="The broker's trace input ('' for none).")
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
    """Run one world worker: hosts games of its tasks, created on demand.

    SIGTERM (or SIGINT, SIGHUP) drains it, then it exits 0: new joins are refused
    (NO_WORLD), requests that reached it are answered (steps played, including those
    arriving within 0.2 s of quiet), held requests (a join waiting for players, a reset
    or an episode end waiting for others) get GAME_LOST; then it tells the broker, which
    answers GAME_LOST to anything still on its way. Running games are not finished: they
    end, and their agents get GAME_LOST on their next request (register again to play on
    another world)."""
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
    with stop_on_signals(worker.stop):
        worker.run()


@main.command()
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Task to serve (repeatable): a file, an http(s) URL or a shipped task's name.")
@click.option("--worlds", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--frontend", default=DEFAULT_ENDPOINTS["frontend"], show_default=True, type=BIND)
@click.option("--backend", default=DEFAULT_ENDPOINTS["backend"], show_default=True, type=BIND)
@click.option("--trace", default=DEFAULT_ENDPOINTS["trace"], show_default=True, type=BIND)
@click.option("--trace-input", default=DEFAULT_ENDPOINTS["trace_input"], show_default=True, type=BIND)
@click.option("--gateway", default=None, type=ListenAddress(), metavar="HOST:PORT",
              help="Also start the NetSecGame TCP gateway here.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--heartbeat", default=1.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds between heartbeats of the broker and the worlds.")
@click.option("--liveness", default=3, show_default=True, type=click.IntRange(3),
              help="Heartbeats a world may miss before the broker declares it dead (its agents get GAME_LOST).")
@click.option("--endpoints-file", type=click.Path(dir_okay=False),
              help="Write the bound endpoints and the children's pids here (JSON; written again on a restart).")
@click.option("--curve", "curve_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="CURVE on every socket, with the keys `arena keys DIR` made (worlds use clients/world, "
                   "the gateway clients/gateway).")
def up(tasks: tuple[str, ...], worlds: int, frontend: str, backend: str, trace: str, trace_input: str,
       gateway: str | None, seed: int, heartbeat: float, liveness: int, endpoints_file: str | None,
       curve_dir: str | None) -> None:
    """Start a broker, N world workers (and the gateway) as child processes and watch them.

    A world or the gateway that exits unasked is started again after a back-off (0.5 s
    doubling to 16 s), counted and logged, while the others keep serving; a restarted
    world registers as a new world with the same tasks and seed (its old games are lost:
    their agents get GAME_LOST within heartbeat x liveness). If the broker exits,
    everything stops and arena up exits 1 with its reason. Ctrl-C, SIGTERM or SIGHUP stop
    everything (exit 0); the children also stop if arena up is killed."""
    _load_tasks(tasks)  # fail here, not in a child, on a broken task
    keys = curve_keys(curve_dir, Stack.curve_clients(gateway=gateway is not None))
    stack = Stack(tasks=tasks, worlds=worlds, seed=seed, frontend=frontend, backend=backend, trace=trace,
                  trace_input=trace_input, gateway=gateway, heartbeat=heartbeat, liveness=liveness,
                  curve=keys.directory if keys else None)

    def announce(endpoints: dict[str, Any]) -> None:
        click.echo(json.dumps({k: v for k, v in endpoints.items() if k != "pids"}))
        extra = f" and the gateway on {endpoints['gateway']}" if gateway else ""
        click.echo(f"arena up: broker, {worlds} worlds{extra} running; Ctrl-C stops them", err=True)
        if keys is not None:
            click.echo(f"arena up: CURVE on; clients add --curve-server {keys.server_public} "
                       f"--curve-secret {keys.client_secret('agent')} (or their own key)", err=True)

    serve_stack(stack, endpoints_file=endpoints_file, announce=announce)
    click.echo("arena up: stopped", err=True)


@main.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True, type=CONNECT,
              help="The broker's frontend.")
@click.option("--listen", default="127.0.0.1:9000", show_default=True, metavar="HOST:PORT", type=ListenAddress(),
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
    one seat per connection. Listening where other machines can reach it without --allow
    prints a warning."""
    from broker.gateway import Gateway

    server = Gateway(address, split_listen(listen), task=task, game=game,
                     incomplete_timeout=incomplete_timeout, reply_timeout=reply_timeout,
                     max_connections=max_connections, allow=list(allow) or None,
                     curve=curve_client(curve_server, curve_secret))
    try:
        bound = server.bind()
    except OSError as error:
        server.close()
        raise serve_error("--listen", listen, error) from None
    address_text = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
    warning = None if allow else exposure_warning(
        "arena gateway", exposed({"--listen": address_text}), who="anyone who reaches it can play (NetSecGame "
        "clients carry no keys)", remedy="add --allow CIDR (repeatable) or listen on 127.0.0.1")
    _serve(server, {"gateway": f"{bound[0]}:{bound[1]}"}, endpoints_file, warning)


# ---------------------------------------------------------------------- clients
@main.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True)
@click.option("--agent", default="random", show_default=True, type=click.Choice(sorted(POLICIES)))
@click.option("--role", default=None, type=click.Choice(["Attacker", "Defender", "Benign"], case_sensitive=False),
              help="Default: the agent's natural role.")
@click.option("--task", default=None, help="Task name on the broker (default: its only or default task).")
@click.option("--game", default=None, help="Join this named game.")
@click.option("--episodes", default=10, show_default=True, type=click.IntRange(1),
              help="Episodes to play; with --envs K, rounded up to a multiple of K: every environment plays "
                   "the same number, and all of them count (fast episodes are not favoured).")
@click.option("--envs", default=1, show_default=True, type=click.IntRange(1, 4096), help="Parallel environments.")
@click.option("--batched/--unbatched", default=True, show_default=True, help="Batch steps per world (--envs > 1).")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--timeout", default=120.0, show_default=True, type=click.FloatRange(0.1), help="Seconds per reply.")
@click.option("--rejoin/--no-rejoin", default=True, show_default=True,
              help="After GAME_LOST (the game's world died), join again and go on (counted as game_lost); "
                   "--no-rejoin stops with the partial summary.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@curve_client_options
def play(address: str, agent: str, role: str | None, task: str | None, game: str | None, episodes: int, envs: int,
         batched: bool, seed: int, timeout: float, rejoin: bool, as_json: bool, curve_server: str | None,
         curve_secret: str | None) -> None:
    """Play episodes through the broker with a scripted policy, then summarise.

    Ctrl-C or SIGTERM stops it: the seat is given up (also a join still waiting for its
    game) and the summary so far is printed, marked partial ("partial": true and a
    "reason" with --json); exit status 130 (SIGINT) or 143 (SIGTERM). An error prints the
    partial summary too and exits 1. While a reply is late it says so once on stderr:
    that nothing answers at the address (it keeps trying until --timeout), or what the
    game waits for. The progress bar shows only when stderr is a terminal."""
    from .arena_play import run_play

    role_value = AgentRole.from_string(role or _ROLE_OF_AGENT[agent])
    status = run_play(address, agent, role_value, task=task, game=game, episodes=episodes, envs=envs,
                      batched=batched, seed=seed, timeout=timeout, as_json=as_json, rejoin=rejoin,
                      curve=curve_client(curve_server, curve_secret))
    if status:
        sys.exit(status)


main.add_command(bench)
main.add_command(demo)
main.add_command(keys)
main.add_command(monitor)
main.add_command(replay)
main.add_command(report)
main.add_command(status)

if __name__ == "__main__":
    main()
