"""Differential harness: NetSecGame 0.2.0 and netsec-arena, played side by side.

For every scenario, with the global defender off and on, this writes one NetSecGame task
YAML (a lone attacker with a fixed start), starts upstream's server
(``python -m netsecgame.game.worlds.NetSecGame``, in a temporary directory because it
writes ``logs/`` into its working directory) and our stack (broker, one world, the
NetSecGame-protocol gateway: ``bin.stack.Stack``) on that same file, connects one raw
TCP client to each (NetSecGame's framing: bare JSON out, read until ``EOF``), joins both,
resets both with one seed (this aligns upstream's global ``random`` with our per-game
``random.Random``: reference netsecgame.md §6.12, §8), then plays seeded random valid
actions: each action is drawn from the actions valid in *upstream's* observation and
sent, as the same JSON text, to both. Replies are compared as reference §9 says (states
as sets; ``to_agent`` and ``configuration_hash`` ignored). A run stops at its first
difference, which is reported with the step, the action and both values.

Opt-in and local (``tox -e differential``, see README.md); not part of CI. It is not a
pytest module (no ``test_`` prefix); importing it has no side effects, so pytest's
``--doctest-modules`` runs the doctests of its pure helpers.

>>> first_difference({"a": [1, 2]}, {"a": [1, 2]}) is None
True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from a checkout: the project is importable
    sys.path.insert(0, str(ROOT))

from agents import generate_valid_actions  # noqa: E402
from bin.stack import Stack  # noqa: E402
from protocol import GameState  # noqa: E402
from world import SCENARIO_FILES, load_scenario  # noqa: E402

__all__ = [
    "Difference",
    "DivergedError",
    "RunResult",
    "UpstreamServer",
    "WireClient",
    "first_difference",
    "main",
    "normalize_reply",
    "task_document",
]

log = logging.getLogger("differential")

#: The C&C host every scenario has (reference §5.3): a start host and the exfiltration target.
C_AND_C = "213.47.23.195"
AGENT_NAME = "DifferentialAgent"
UPSTREAM_MODULE = "netsecgame.game.worlds.NetSecGame"
EOF = b"EOF"
_MISSING = "<absent>"


# --------------------------------------------------------------------------- the task file
def goal_datum(scenario: str) -> tuple[str, str]:
    """The datum to exfiltrate: User1/DataFromServer1 where it exists, else the first
    non-log datum (sorted), so the goal is reachable in every scenario."""
    data = sorted({(d.owner, d.id) for found in load_scenario(scenario).node_data.values()
                   for d in found if d.type != "log"})
    if not data:
        raise ValueError(f"scenario {scenario} holds no data to exfiltrate")
    return ("User1", "DataFromServer1") if ("User1", "DataFromServer1") in data else data[0]


def task_document(scenario: str, global_defender: bool, max_steps: int) -> dict[str, Any]:
    """A NetSecGame task (reference §4) for one attacker: start on the scenario's first
    start candidate and the C&C, goal: exfiltrate one datum to the C&C.

    >>> doc = task_document("two_networks_tiny", True, 40)
    >>> doc["coordinator"]["agents"]["Attacker"]["start_position"]["controlled_hosts"]
    ['192.168.2.2', '213.47.23.195']
    >>> doc["coordinator"]["agents"]["Attacker"]["goal"]["known_data"]
    {'213.47.23.195': [['User1', 'DataFromServer1']]}
    >>> doc["env"]["use_global_defender"], doc["env"]["rewards"]["false_positive"]
    (True, -5)
    """
    start = str(load_scenario(scenario).start_candidates[0])
    owner, datum = goal_datum(scenario)
    return {
        "coordinator": {"agents": {"Attacker": {
            "max_steps": max_steps,
            "goal": {
                "description": f"Exfiltrate {datum} to the C&C server ({C_AND_C}).",
                "is_any_part_of_goal_random": False,
                "known_networks": [], "known_hosts": [], "controlled_hosts": [],
                "known_services": {}, "known_data": {C_AND_C: [[owner, datum]]}, "known_blocks": {},
            },
            "start_position": {
                "known_networks": [], "known_hosts": [], "controlled_hosts": [start, C_AND_C],
                "known_services": {}, "known_data": {},
            },
        }}},
        "env": {
            "scenario": scenario,
            "use_global_defender": global_defender,
            "use_dynamic_addresses": False,
            "use_firewall": True,
            "save_trajectories": False,
            "required_players": 1,
            "rewards": {"step": -1, "success": 100, "fail": -10, "false_positive": -5},
        },
    }


def write_task(directory: Path, scenario: str, global_defender: bool, max_steps: int) -> Path:
    """Write the task YAML; its stem is the task's name on our broker."""
    path = directory / f"differential_{scenario}_gd{int(global_defender)}.yaml"
    path.write_text(yaml.safe_dump(task_document(scenario, global_defender, max_steps), sort_keys=False))
    return path


# --------------------------------------------------------------------------- comparing
def _as_set(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def normalize_state(state: Any) -> Any:
    """A GameState dict with every list (top level, or per host) as a sorted set."""
    if not isinstance(state, dict):
        return state
    result: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list):
            result[key] = _as_set(value)
        elif isinstance(value, dict):
            result[key] = {host: _as_set(items) if isinstance(items, list) else items
                           for host, items in value.items()}
        else:
            result[key] = value
    return result


def normalize_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Drop what differs by design (reference §9): ``to_agent`` (the peer address) and
    ``configuration_hash`` (random per upstream start); states become sets.

    >>> reply = normalize_reply({"to_agent": ["127.0.0.1", 1], "status": "GameStatus.OK",
    ...                          "message": {"configuration_hash": "ab", "max_steps": 3},
    ...                          "observation": {"state": {"known_hosts": [{"ip": "b"}, {"ip": "a"}]}}})
    >>> sorted(reply), reply["message"]
    (['message', 'observation', 'status'], {'max_steps': 3})
    >>> reply["observation"]["state"]["known_hosts"]
    ['{"ip": "a"}', '{"ip": "b"}']
    """
    reply = json.loads(json.dumps(reply))
    reply.pop("to_agent", None)
    observation = reply.get("observation")
    if isinstance(observation, dict) and "state" in observation:
        observation["state"] = normalize_state(observation["state"])
    message = reply.get("message")
    if isinstance(message, dict):
        message.pop("configuration_hash", None)
        trajectory = message.get("last_trajectory")
        if isinstance(trajectory, dict) and isinstance(trajectory.get("trajectory"), dict):
            inner = trajectory["trajectory"]
            inner["states"] = [normalize_state(s) for s in inner.get("states", [])]
    return reply


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python; not on the wire
        return type(a) is type(b) and a == b
    return bool(a == b)


def first_difference(upstream: Any, ours: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """The first place two normalized replies differ: ``(path, upstream value, our value)``.

    Lists of strings (normalized sets) are reported as their set differences.

    >>> first_difference({"end": True, "reward": 99}, {"end": 1, "reward": 99.0})
    ('end', True, 1)
    >>> first_difference({"s": ['"a"', '"b"']}, {"s": ['"a"', '"c"']})
    ('s', {'only_upstream': ['"b"']}, {'only_ours': ['"c"']})
    >>> first_difference({"m": {"x": 1}}, {"m": {}})
    ('m.x', 1, '<absent>')
    """
    if isinstance(upstream, dict) and isinstance(ours, dict):
        for key in sorted(set(upstream) | set(ours), key=str):
            found = first_difference(upstream.get(key, _MISSING), ours.get(key, _MISSING),
                                     f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(upstream, list) and isinstance(ours, list):
        if all(isinstance(item, str) for item in upstream + ours):
            only_upstream = sorted((Counter(upstream) - Counter(ours)).elements())
            only_ours = sorted((Counter(ours) - Counter(upstream)).elements())
            if only_upstream or only_ours:
                return path, {"only_upstream": only_upstream}, {"only_ours": only_ours}
            return None
        if len(upstream) != len(ours):
            return f"{path}.length", len(upstream), len(ours)
        for index, (a, b) in enumerate(zip(upstream, ours, strict=True)):
            found = first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(upstream, dict | list) or isinstance(ours, dict | list):
        return (path, upstream, ours) if upstream != ours else None
    return None if _same_scalar(upstream, ours) else (path, upstream, ours)


# --------------------------------------------------------------------------- the wire
class WireClient:
    """One NetSecGame-protocol connection (BaseAgent's framing, reference §2.1): bare JSON
    out; read until ``EOF``, delete every ``EOF``, parse. Every read is bounded."""

    def __init__(self, name: str, sock: socket.socket, timeout: float, max_bytes: int = 64 << 20) -> None:
        self.name = name
        self.sock = sock
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._buffer = b""

    @classmethod
    def connect(cls, name: str, address: tuple[str, int], timeout: float) -> WireClient:
        return cls(name, socket.create_connection(address, timeout=timeout), timeout)

    def send(self, payload: str) -> None:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(payload.encode())

    def receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while EOF not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no complete reply within {self.timeout:.0f} s")
            if len(self._buffer) > self.max_bytes:
                raise ConnectionError(f"{self.name}: reply larger than {self.max_bytes} bytes without EOF")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue  # the loop condition reports it
            if not chunk:
                raise ConnectionError(f"{self.name}: connection closed before EOF (Unfinished connection.)")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(EOF)
        return json.loads(message.replace(EOF, b""))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to 0, read, close). Racy, hence the
    retries in ``UpstreamServer.start``; acceptable for an opt-in local tool."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], name: str, timeout: float = 10.0) -> int:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) did not stop in %.0f s: killed", name, process.pid, timeout)
        process.kill()
        return process.wait(timeout)


class UpstreamServer:
    """NetSecGame 0.2.0's server on a free port, in its own working directory."""

    def __init__(self, task_file: Path, directory: Path, *, python: str, seed: int, hash_seed: str,
                 ready_timeout: float, reply_timeout: float, attempts: int = 3) -> None:
        self.task_file = task_file
        self.directory = directory
        self.python = python
        self.seed = seed
        self.hash_seed = hash_seed
        self.ready_timeout = ready_timeout
        self.reply_timeout = reply_timeout
        self.attempts = attempts
        self.process: subprocess.Popen[Any] | None = None
        self._output: Any = None

    @property
    def output_file(self) -> Path:
        return self.directory / "upstream-output.log"

    def start_and_connect(self) -> WireClient:
        """Start the server and connect the one client the task allows (``required_players:
        1`` is also upstream's connection cap, so no separate readiness probe is made)."""
        for attempt in range(1, self.attempts + 1):
            port = free_port()
            command = [self.python, "-m", UPSTREAM_MODULE, f"--task_config={self.task_file}",
                       "--game_host=127.0.0.1", f"--game_port={port}", f"--seed={self.seed}",
                       "--debug_level=WARNING"]
            log.debug("starting upstream: %s", " ".join(command))
            self._output = self.output_file.open("ab")
            environment = {**os.environ, "PYTHONHASHSEED": self.hash_seed}
            self.process = subprocess.Popen(command, cwd=self.directory, stdout=self._output,
                                            stderr=subprocess.STDOUT, env=environment)
            client = self._connect(("127.0.0.1", port))
            if client is not None:
                return client
            log.warning("upstream did not come up on port %d (attempt %d of %d)", port, attempt, self.attempts)
            self.stop()
        raise RuntimeError(f"NetSecGame's server did not start; see {self.output_file}:\n{self.tail()}")

    def _connect(self, address: tuple[str, int]) -> WireClient | None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return None
            try:
                return WireClient.connect("upstream", address, self.reply_timeout)
            except OSError:
                time.sleep(0.1)  # the server is still importing: nothing to wait on but the port
        return None

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.output_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, "upstream")
            self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None


# --------------------------------------------------------------------------- one run
@dataclass
class Difference:
    """The first differing reply of a run."""

    phase: str  # join, reset, step or after-end
    episode: int
    step: int
    action: str  # the JSON text sent to both
    path: str
    upstream: Any
    ours: Any
    upstream_reply: dict[str, Any]
    our_reply: dict[str, Any]

    def summary(self) -> str:
        if self.phase in ("step", "after-end"):
            where = f"episode {self.episode} step {self.step}" + (" (after the end)" if self.phase != "step" else "")
        elif self.phase == "reset":
            where = f"reset before episode {self.episode}"
        else:
            where = self.phase
        return f"{where}: {self.path}: upstream {_short(self.upstream)} / ours {_short(self.ours)}"


@dataclass
class RunResult:
    """One scenario with the global defender off or on."""

    scenario: str
    global_defender: bool
    episodes: int = 0
    steps: int = 0
    replies: int = 0
    outcomes: list[str] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)  # action type -> times played
    difference: Difference | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        return "DIFFERENT" if self.difference else "same"


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DivergedError(Exception):
    """Raised by ``Pair.exchange`` at a run's first difference."""

    def __init__(self, difference: Difference) -> None:
        super().__init__(difference.summary())
        self.difference = difference


class Pair:
    """The two connections, driven in lockstep; every reply pair is compared."""

    def __init__(self, upstream: WireClient, ours: WireClient, result: RunResult) -> None:
        self.upstream = upstream
        self.ours = ours
        self.result = result

    def exchange(self, payload: str, phase: str, episode: int, step: int) -> dict[str, Any]:
        """Send the same text to both and compare the replies; return upstream's reply,
        or raise ``DivergedError``."""
        self.upstream.send(payload)
        self.ours.send(payload)
        upstream_reply = self.upstream.receive()
        our_reply = self.ours.receive()
        self.result.replies += 1
        left, right = normalize_reply(upstream_reply), normalize_reply(our_reply)
        found = first_difference(left, right)
        if found is not None:
            path, a, b = found
            raise DivergedError(Difference(phase, episode, step, payload, path, a, b, left, right))
        return upstream_reply


def join_payload() -> str:
    return json.dumps({"action_type": "ActionType.JoinGame",
                       "parameters": {"agent_info": {"name": AGENT_NAME, "role": "Attacker"}}})


def reset_payload(seed: int, request_trajectory: bool) -> str:
    """Always with a seed: 0.2.0 stops its server on a seedless reset (reference §3.5)."""
    return json.dumps({"action_type": "ActionType.ResetGame",
                       "parameters": {"request_trajectory": request_trajectory, "randomize_topology": False,
                                      "seed": seed}})


def _state_of(reply: dict[str, Any], phase: str) -> dict[str, Any]:
    observation = reply.get("observation")
    if not isinstance(observation, dict) or not isinstance(observation.get("state"), dict):
        raise RuntimeError(f"upstream's {phase} reply has no observation: {_short(reply, 400)}")
    return observation["state"]


def play(pair: Pair, result: RunResult, *, seed: int, episodes: int, max_steps: int,
         forbidden_probe: bool = True) -> None:
    """Join, reset with ``seed``, then ``episodes`` episodes of seeded random valid
    actions; resets between episodes use ``seed + episode`` and ask for the last
    trajectory. With ``forbidden_probe``, the last action of an episode is sent once more
    after the end (answered FORBIDDEN). Stops at the first difference."""
    try:
        _play(pair, result, seed=seed, episodes=episodes, max_steps=max_steps, forbidden_probe=forbidden_probe)
    except DivergedError as diverged:
        result.difference = diverged.difference
        if diverged.difference.phase in ("step", "after-end"):
            result.outcomes.append("diff")


def _play(pair: Pair, result: RunResult, *, seed: int, episodes: int, max_steps: int,
          forbidden_probe: bool) -> None:
    _state_of(pair.exchange(join_payload(), "join", 0, 0), "join")
    chooser = random.Random(seed)
    for episode in range(episodes):
        reply = pair.exchange(reset_payload(seed + episode, request_trajectory=episode > 0), "reset", episode, 0)
        state = _state_of(reply, "reset")
        result.episodes += 1
        outcome = "unfinished"
        for step in range(1, max_steps + 2):  # one more than upstream's bound (it ends at max_steps)
            valid = sorted(generate_valid_actions(GameState.from_dict(state)), key=str)
            if not valid:
                raise RuntimeError(f"no valid action in upstream's state at episode {episode} step {step}")
            action = chooser.choice(valid)
            kind = action.action_type.value
            result.actions[kind] = result.actions.get(kind, 0) + 1
            result.steps += 1
            reply = pair.exchange(action.to_json(), "step", episode, step)
            state = _state_of(reply, "step")
            observation = reply["observation"]
            if observation.get("end"):
                reason = str(observation.get("info", {}).get("end_reason", "?"))
                outcome = f"{reason.removeprefix('AgentStatus.')}@{step}"
                if forbidden_probe:  # one more action: FORBIDDEN on both, nothing changes (§2.2)
                    pair.exchange(action.to_json(), "after-end", episode, step + 1)
                break
        else:
            log.warning("%s: episode %d did not end within %d steps", result.scenario, episode, max_steps + 1)
        result.outcomes.append(outcome)


def run_one(scenario: str, global_defender: bool, args: argparse.Namespace, workdir: Path) -> RunResult:
    """One scenario with one defender setting: both servers up, play, both servers down."""
    result = RunResult(scenario, global_defender)
    directory = workdir / f"{scenario}-gd{int(global_defender)}"
    directory.mkdir(parents=True, exist_ok=True)
    task_file = write_task(directory, scenario, global_defender, args.max_steps)
    upstream = UpstreamServer(task_file, directory, python=args.upstream_python, seed=args.server_seed,
                              hash_seed=args.hash_seed, ready_timeout=args.ready_timeout,
                              reply_timeout=args.timeout)
    stack = Stack(tasks=[str(task_file)], worlds=1, seed=args.server_seed, gateway="127.0.0.1:0",
                  log_level=args.stack_log_level, ready_timeout=args.ready_timeout)
    clients: list[WireClient] = []
    started = time.monotonic()
    try:
        upstream_client = upstream.start_and_connect()
        clients.append(upstream_client)
        endpoints = stack.start()
        stack.wait_registered(args.ready_timeout)
        host, _, port = str(endpoints["gateway"]).rpartition(":")
        our_client = WireClient.connect("ours", (host, int(port)), args.timeout)
        clients.append(our_client)
        play(Pair(upstream_client, our_client, result), result, seed=args.seed, episodes=args.episodes,
             max_steps=args.max_steps, forbidden_probe=not args.no_forbidden_probe)
    except Exception as error:  # one broken run must not hide the others
        log.exception("%s (global defender %s) failed", scenario, "on" if global_defender else "off")
        tail = upstream.tail(5)
        result.error = f"{type(error).__name__}: {error}" + (f" | upstream output: {tail}" if tail else "")
    finally:
        for client in clients:  # upstream exits only once its clients have closed (§3.5)
            client.close()
        upstream.stop()
        stack.stop()
    log.info("%s gd=%s: %s, %d steps in %.1f s", scenario, int(global_defender), result.verdict, result.steps,
             time.monotonic() - started)
    return result


# --------------------------------------------------------------------------- reporting
def summary(results: Sequence[RunResult]) -> dict[str, Any]:
    compared = sorted({r.scenario for r in results if not r.error})
    return {
        "scenarios_compared": len(compared),
        "runs": len(results),
        "steps_compared": sum(r.steps for r in results),
        "replies_compared": sum(r.replies for r in results),
        "differences": sum(1 for r in results if r.difference),
        "errors": sum(1 for r in results if r.error),
        "results": [{**asdict(r), "verdict": r.verdict} for r in results],
    }


#: Column order of the "actions played" column: Scan, FindServices, Exploit, FindData, Exfiltrate.
_KINDS = ("ScanNetwork", "FindServices", "ExploitService", "FindData", "ExfiltrateData")


def table(results: Sequence[RunResult]) -> str:
    """The per-run table, the totals and every difference in full."""
    rows = [("scenario", "defender", "episodes", "steps", "Sc/FS/Ex/FD/Xf", "outcomes", "result")]
    for r in results:
        detail = r.verdict
        if r.difference:
            detail += f" ({r.difference.summary()})"
        elif r.error:
            detail += f" ({_short(r.error, 200)})"
        played = "/".join(str(r.actions.get(kind, 0)) for kind in _KINDS)
        rows.append((r.scenario, "on" if r.global_defender else "off", str(r.episodes), str(r.steps), played,
                     " ".join(r.outcomes) or "-", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:6], widths, strict=True)) + "  " + row[6]
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    totals = summary(results)
    lines.append("")
    lines.append(f"scenarios compared: {totals['scenarios_compared']} ({totals['runs']} runs); "
                 f"steps compared: {totals['steps_compared']}; replies compared: {totals['replies_compared']}; "
                 f"differences: {totals['differences']}; errors: {totals['errors']}")
    for r in results:
        if r.difference:
            d = r.difference
            lines += ["", f"{r.scenario}, global defender {'on' if r.global_defender else 'off'}: {d.summary()}",
                      f"  action:   {d.action}",
                      f"  upstream: {json.dumps(d.upstream_reply, sort_keys=True)}",
                      f"  ours:     {json.dumps(d.our_reply, sort_keys=True)}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="differential", description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIO_FILES), choices=list(SCENARIO_FILES),
                        metavar="NAME", help="registry scenarios to compare")
    parser.add_argument("--defender", choices=("both", "off", "on"), default="both",
                        help="global defender settings to run")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per run")
    parser.add_argument("--max-steps", type=int, default=40, help="the task's max_steps (an episode's bound)")
    parser.add_argument("--seed", type=int, default=42,
                        help="reset seed S (episode e starts with a reset seeded S+e) and the action chooser's seed")
    parser.add_argument("--no-forbidden-probe", action="store_true",
                        help="do not send one more action after an episode's end (answered FORBIDDEN)")
    parser.add_argument("--server-seed", type=int, default=42, help="both servers' start-up seed")
    parser.add_argument("--hash-seed", default="0", help="PYTHONHASHSEED of upstream's server")
    parser.add_argument("--upstream-python", default=sys.executable,
                        help="the Python that has netsecgame[server]==0.2.0 installed")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for any one reply")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for a server to start")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep task files and upstream logs here (unset: a temporary directory, removed)")
    parser.add_argument("--stack-log-level", default="WARNING", help="log level of our broker, world and gateway")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.max_steps < 1:
        parser.error("--episodes and --max-steps must be at least 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: both servers are stopped


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 when every run matched, 1 on a difference, 2 on an error."""
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.defender]
    results: list[RunResult] = []
    with _workdir(args.workdir) as workdir:
        for scenario in args.scenarios:
            for global_defender in settings:
                results.append(run_one(scenario, global_defender, args, workdir))
    totals = summary(results)
    print(json.dumps(totals, indent=2, default=str) if args.json else table(results))
    if totals["errors"]:
        return 2
    return 1 if totals["differences"] else 0


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="differential-") as directory:
        yield Path(directory)


if __name__ == "__main__":
    sys.exit(main())
