"""Differential harness: NetSecGame 0.2.0 and netsec-arena, played side by side.

For every scenario, with the global defender off and on, this writes one NetSecGame task
YAML (a lone attacker with a fixed start), starts upstream's server
(``python -m netsecgame.game.worlds.NetSecGame``, in a temporary directory because it
writes ``logs/`` into its working directory) and our stack (broker, one world, the
NetSecGame-protocol gateway: ``bin.stack.Stack``) on that same file, connects one raw
TCP client to each (NetSecGame's framing: bare JSON out, read until ``EOF``), joins both,
and then either resets both with one seed before the first episode (this aligns
upstream's global ``random`` with our per-game ``random.Random``: reference netsecgame.md
§6.12, §8) or plays the first episode straight after the join (both servers' start-up
seeding: upstream's ``random.seed(--seed)``, our default game's ``random.Random(--seed)``),
then plays seeded random valid actions: each action is drawn from the actions valid in
*upstream's* observation and sent, as the same JSON text, to both. Replies are compared as reference §9 says (states
as sets; ``to_agent`` and ``configuration_hash`` ignored). A run stops at its first
difference, which is reported with the step, the action and both values.

Opt-in and local (``tox -e differential``, see README.md); not part of CI. It is not a
pytest module (no ``test_`` prefix); importing it has no side effects, so pytest's
``--doctest-modules`` runs the doctests of its pure helpers.

This module is the command line, the orchestration of one run and the report. The task
file and the reply comparison are in ``compare.py``; upstream's server and the raw
NetSecGame client are in ``servers.py``. Run as a script, it puts the checkout's root on
``sys.path`` first, so ``tests.differential`` imports the same way as under pytest.

>>> first_difference({"a": [1, 2]}, {"a": [1, 2]}) is None
True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from a checkout: the project is importable
    sys.path.insert(0, str(ROOT))

from agents import generate_valid_actions  # noqa: E402
from bin.stack import Stack  # noqa: E402
from protocol import GameState  # noqa: E402
from tests.differential.compare import first_difference, normalize_reply, task_document, write_task  # noqa: E402
from tests.differential.servers import UpstreamServer, WireClient  # noqa: E402
from world import SCENARIO_FILES  # noqa: E402

__all__ = [
    "FIRST_EPISODE",
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

AGENT_NAME = "DifferentialAgent"


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


#: How a run's first episode starts: after a reset seeded S, or straight after the join.
FIRST_EPISODE = ("reset", "join")


@dataclass
class RunResult:
    """One scenario with the global defender off or on, its first episode after a seeded
    reset (``first_episode`` "reset") or straight after the join ("join")."""

    scenario: str
    global_defender: bool
    first_episode: str = "reset"
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
    """Join, reset with ``seed`` (unless ``result.first_episode`` is "join": then the
    first episode starts from the join's state, with no reset), then ``episodes`` episodes
    of seeded random valid actions; resets between episodes use ``seed + episode`` and ask
    for the last trajectory. With ``forbidden_probe``, the last action of an episode is
    sent once more after the end (answered FORBIDDEN). Stops at the first difference."""
    try:
        _play(pair, result, seed=seed, episodes=episodes, max_steps=max_steps, forbidden_probe=forbidden_probe,
              reset_first=result.first_episode == "reset")
    except DivergedError as diverged:
        result.difference = diverged.difference
        if diverged.difference.phase in ("step", "after-end"):
            result.outcomes.append("diff")


def _play(pair: Pair, result: RunResult, *, seed: int, episodes: int, max_steps: int,
          forbidden_probe: bool, reset_first: bool) -> None:
    state = _state_of(pair.exchange(join_payload(), "join", 0, 0), "join")
    chooser = random.Random(seed)
    for episode in range(episodes):
        if episode or reset_first:
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


def run_one(scenario: str, global_defender: bool, args: argparse.Namespace, workdir: Path,
            first_episode: str = "reset") -> RunResult:
    """One scenario with one defender setting and one first-episode start: both servers
    up (fresh: the "join" start is their start-up seeding), play, both servers down."""
    result = RunResult(scenario, global_defender, first_episode)
    directory = workdir / f"{scenario}-gd{int(global_defender)}-{first_episode}"
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
    log.info("%s gd=%s first=%s: %s, %d steps in %.1f s", scenario, int(global_defender), first_episode,
             result.verdict, result.steps, time.monotonic() - started)
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
    rows = [("scenario", "defender", "first", "episodes", "steps", "Sc/FS/Ex/FD/Xf", "outcomes", "result")]
    for r in results:
        detail = r.verdict
        if r.difference:
            detail += f" ({r.difference.summary()})"
        elif r.error:
            detail += f" ({_short(r.error, 200)})"
        played = "/".join(str(r.actions.get(kind, 0)) for kind in _KINDS)
        rows.append((r.scenario, "on" if r.global_defender else "off", r.first_episode, str(r.episodes),
                     str(r.steps), played, " ".join(r.outcomes) or "-", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(7)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:7], widths, strict=True)) + "  " + row[7]
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
            lines += ["", f"{r.scenario}, global defender {'on' if r.global_defender else 'off'}, "
                          f"first episode after {r.first_episode}: {d.summary()}",
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
    parser.add_argument("--first-episode", choices=(*FIRST_EPISODE, "both"), default="both",
                        help="start each run's first episode after a reset seeded S, or straight after the join "
                             "(the servers' start-up seeding), or play every run both ways")
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
    starts = FIRST_EPISODE if args.first_episode == "both" else (args.first_episode,)
    results: list[RunResult] = []
    with _workdir(args.workdir) as workdir:
        for scenario in args.scenarios:
            for global_defender in settings:
                for first_episode in starts:
                    results.append(run_one(scenario, global_defender, args, workdir, first_episode))
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
