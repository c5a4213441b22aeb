"""Mutation testing of the core modules: plant small bugs, see which the tests catch.

``tox -e mutation`` runs this (not CI: it takes a while). It copies the repository's
files into a scratch folder per group of ``GROUPS`` (the protocol, the game rules and
session, the broker's routing and placement, the gateway, the RL masks and
observations), runs mutmut 3 there over the group's modules against the group's
relevant tests, and writes one report:

* per module, mutants killed (a test failed or timed out), survived (every test
  passed), without a test (no test runs the mutated function), and equivalent (a
  survivor ``equivalent.toml`` explains: the mutation changes no behaviour);
* the kill rate: killed / (all - equivalent), per module and overall (target: 90 %);
* every survivor that is not explained, with its diff: each needs a test that kills it
  or a line in ``equivalent.toml`` saying why it cannot be killed.

Within a group mutmut narrows further: a mutant runs the group's tests that ran its
function while mutmut recorded them, fastest first. Tests that start processes run there
too: the children import the mutated copy (``PYTHONPATH``), with the mutant switched on
by mutmut's environment variable.

    tox -e mutation                          # every group; the report in tests/mutation/REPORT.md
    tox -e mutation -- --only broker         # one group (protocol, world, broker, gateway, rl)
    tox -e mutation -- --scratch DIR         # keep the mutants (mutmut browse / show in DIR/GROUP)
    tox -e mutation -- --scratch DIR --recheck   # after adding tests: rerun what did not die
    python tests/mutation/run.py --report-only --scratch DIR   # report those runs again

``--recheck`` copies the work tree into the kept scratch folders again and runs only the
mutants that survived (unless explained as equivalent), had no test or were not checked yet,
and every mutant of a function whose code changed; a killed mutant of an unchanged
function stays killed (adding a test cannot revive it). It assumes tests were added, not
weakened: run a full pass after removing a test. Mutants an interrupted run never reached
are "not checked" (reported apart, not in the rate) until a recheck runs them.
``--mutants GLOB`` narrows a recheck (e.g. ``'world.scenario.*'``).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

@attrs.frozen
class Group:
    """Modules mutated together, against the tests relevant to them (test files, or globs)."""

    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


#: The core modules (issue 14), each group against its relevant tests: the in-process
#: ones (tests marked ``processes`` are left out; a mutant's run must take seconds, and
#: the in-process tests drive the same objects: GameSession, GameHost, Placement, the
#: Broker and the Gateway in threads). mutmut narrows further: a mutant runs the group's
#: tests that ran its function while mutmut recorded them.
GROUPS = (
    Group("protocol", ("protocol/*.py",),
          ("test_protocol_*.py", "test_action_table.py", "test_agents_trajectories.py", "test_agents_valid_actions.py",
           "test_transcripts.py")),
    Group("world", ("world/game_world.py", "world/global_defender.py", "world/remap.py", "world/catalog.py",
                    "world/scenario.py", "world/session.py", "world/session_reset.py", "world/session_trace.py",
                    "world/scripted.py", "world/seats.py", "world/rewards.py", "world/game_host.py"),
          ("test_world_actions.py", "test_world_logs.py", "test_world_remap.py", "test_world_resends.py",
           "test_world_views.py", "test_world_worker.py", "test_session.py", "test_global_defender.py",
           "test_scenarios.py", "test_rewards.py", "test_reward_oracle.py", "test_scripted_agents.py",
           "test_transcripts.py", "test_fast_paths.py", "test_agents_config.py", "test_promises_world.py",
           "test_action_table.py", "test_agents_observations.py", "test_world_*_rules.py")),
    Group("broker", ("broker/broker.py", "broker/placement.py"),
          ("test_broker_faults.py", "test_broker_placement.py", "test_promises_placement.py",
           "test_timing_contracts.py", "test_broker_batch_and_quit.py", "test_broker_release_status.py",
           "test_broker_high_water_mark.py", "test_broker_*_rules.py")),
    Group("gateway", ("broker/gateway.py", "broker/gateway_connection.py", "broker/gateway_codec.py"),
          ("test_gateway.py", "test_gateway_allow.py", "test_timing_contracts.py", "test_protocol_json.py",
           "test_gateway_rules.py", "test_gateway_*_rules.py")),
    Group("rl", ("agents/action_masks.py", "agents/flat_observation.py"),
          ("test_env_spaces.py", "test_env_gym.py", "test_env_vector.py", "test_env_pettingzoo.py",
           "test_fast_paths.py", "test_agents_observations.py", "test_rl_*.py")),
)
#: Files never mutated: package faces.
EXCLUDED = ("*/__init__.py",)
TARGET = 0.90

_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
_KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def test_files(group: Group) -> list[str]:
    found = {str(path.relative_to(ROOT)) for pattern in group.tests for path in (ROOT / "tests").glob(pattern)}
    return sorted(found)


def module_of(mutant: str) -> str:
    """``protocol.catalog.xǁCatalogǁfrom_wire__mutmut_12`` -> ``protocol.catalog``."""
    dotted = mutant.split("__mutmut_")[0]
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        if part.startswith("x"):  # mutmut's mangled function or class name
            return ".".join(parts[:index])
    return ".".join(parts[:-1])


def copy_repository(scratch: Path) -> None:
    """The files git knows (tracked, or new and not ignored), as they are in the work tree."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def configure(scratch: Path, group: Group) -> None:
    config = [
        "\n[tool.mutmut]",
        'source_paths = ["protocol", "world", "broker", "agents"]',
        f"only_mutate = {list(group.modules)!r}".replace("'", '"'),
        f"do_not_mutate = {list(EXCLUDED)!r}".replace("'", '"'),
        f"pytest_add_cli_args_test_selection = {test_files(group)!r}".replace("'", '"'),
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-o", "addopts=", "-m", "not processes"]',
        'also_copy = ["bin", "tests", "world/tasks", "world/scenarios", "protocol/PROTOCOL.md", "README.md"]',
        "timeout_multiplier = 5.0",
        "timeout_constant = 10.0",
    ]
    with (scratch / "pyproject.toml").open("a") as file:
        file.write("\n".join(config) + "\n")


def run_mutmut(scratch: Path, children: int, names: list[str] | None = None) -> bool:
    """``mutmut run`` in ``scratch``; once more if it stopped (it resumes where it was: a
    timing test that failed under load while mutmut recorded the suite). Whether it ended."""
    # Every process a test starts imports the mutated copy, wherever its working folder is.
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(scratch / "mutants"))
    for _attempt in range(2):
        started = time.monotonic()
        with (scratch / "mutmut-run.log").open("a") as log:  # mutmut's own output, for a failed run
            command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *(names or [])]
            done = subprocess.run(command, cwd=scratch, env=environment, check=False, stdout=log,
                                  stderr=subprocess.PIPE, text=True)
        print(f"{scratch.name}: mutmut ran {time.monotonic() - started:.0f} s (exit {done.returncode})",
              file=sys.stderr)
        leftovers = kill_leftovers(scratch)
        if leftovers:
            print(f"{scratch.name}: killed {leftovers} leftover processes of mutant runs", file=sys.stderr)
        if done.returncode == 0:
            return True
        print(done.stderr[-2000:], file=sys.stderr)
    return False


def kill_leftovers(scratch: Path) -> int:
    """SIGKILL every process still running on ``scratch``'s mutated copy (a mutant may keep a
    test's child from stopping, e.g. a server whose stop handler it broke); how many."""
    marker = f"PYTHONPATH={scratch / 'mutants'}".encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue  # gone, or not ours to read
    return killed


def function_of(mutant: str) -> str:
    """``protocol.catalog.xǁCatalogǁfrom_wire__mutmut_12`` -> ``protocol.catalog.xǁCatalogǁfrom_wire``."""
    return mutant.split("__mutmut_")[0]


def function_hashes(folder: Path, group: Group) -> dict[str, str]:
    """mutmut's name of every function it mutates in ``group`` (module functions and methods
    of module classes) -> a hash of its code, to tell which functions changed."""
    hashes = {}
    for pattern in group.modules:
        for path in sorted(folder.glob(pattern)):
            relative = path.relative_to(folder)
            if any(fnmatch.fnmatch(str(relative), excluded) for excluded in EXCLUDED):
                continue
            module = ".".join(relative.with_suffix("").parts)
            lines = path.read_text().splitlines()
            for node in ast.parse("\n".join(lines)).body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    hashes[f"{module}.x_{node.name}"] = _digest(node, lines)
                elif isinstance(node, ast.ClassDef):
                    for member in node.body:
                        if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                            hashes[f"{module}.x\u01c1{node.name}\u01c1{member.name}"] = _digest(member, lines)
    return hashes


def _digest(node: ast.stmt, lines: list[str]) -> str:
    """The function's text, comments included: a ``# pragma: no mutate`` renumbers its mutants."""
    first = min([node.lineno, *(decorator.lineno for decorator in getattr(node, "decorator_list", []))])
    text = "\n".join(lines[first - 1:node.end_lineno])
    return hashlib.sha256(text.encode()).hexdigest()


def recheck(folder: Path, group: Group, children: int, only: list[str]) -> None:
    """Copy the work tree into ``folder`` again and run what the last run did not kill (and
    every mutant of a changed function); the kills carried over go to ``carried.json``."""
    old = results(folder)
    old_hashes = function_hashes(folder, group)
    carried = _load_carried(folder)
    copy_repository(folder)
    configure(folder, group)
    new_hashes = function_hashes(folder, group)
    changed = {name for name, digest in new_hashes.items() if old_hashes.get(name) != digest}
    equivalent = load_equivalent()
    # A survivor explained as equivalent is not run again (it would run every test of its
    # function, to survive again) unless its function changed or --mutants names it.
    wanted = [name for name, status in old.items()
              if status in ("survived", "no tests", "not checked") and function_of(name) in new_hashes
              and (not only or any(fnmatch.fnmatchcase(name, o) for o in only))
              and (only or status != "survived" or explanation(name, equivalent) is None)]
    # Every verdict of an unchanged function is kept for a mutant this recheck does not run
    # (mutmut forgets them all when the test selection changes): a kill stays a kill, and a
    # survivor left out by --mutants stays a survivor until it is run again.
    carried = {name: status for name, status in {**carried, **old}.items()
               if status != "not checked" and function_of(name) in new_hashes and function_of(name) not in changed}
    (folder / "carried.json").write_text(json.dumps(carried, sort_keys=True))
    rerun = [name for name in wanted if function_of(name) not in changed]
    rerun += [f"{name}__mutmut_*" for name in sorted(changed)
              if not only or any(fnmatch.fnmatchcase(f"{name}__mutmut_1", o) for o in only)]
    print(f"{folder.name}: {len(carried)} verdicts carried over, {len(changed)} functions changed, "
          f"rerunning {len(rerun)} mutants or functions", file=sys.stderr)
    if rerun:
        run_mutmut(folder, children, rerun)


def _load_carried(folder: Path) -> dict[str, str]:
    path = folder / "carried.json"
    return json.loads(path.read_text()) if path.exists() else {}


def results(scratch: Path) -> dict[str, str]:
    if not (scratch / "mutants").is_dir():
        return {}
    output = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=scratch,
                            check=True, capture_output=True, text=True).stdout
    found = {}
    for line in output.splitlines():
        match = _RESULT.match(line)
        if match:
            found[match["name"]] = match["status"]
    for name, status in _load_carried(scratch).items():  # verdicts a --recheck did not run again
        if found.get(name) == "not checked":
            found[name] = status
    return found


#: Run in a scratch folder: the diff of each mutant named on stdin (JSON), as JSON; one
#: process for all of them (``mutmut show`` costs a second per mutant).
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
names = json.load(sys.stdin)
json.dump({name: get_diff_for_mutant(name) for name in names}, sys.stdout)
"""


def diffs_of(scratch: Path, mutants: list[str]) -> dict[str, str]:
    if not mutants:
        return {}
    shown = subprocess.run([sys.executable, "-c", _DIFFS], cwd=scratch, input=json.dumps(mutants), check=True,
                           capture_output=True, text=True).stdout
    return {name: "\n".join(line for line in diff.splitlines() if not line.startswith(("---", "+++")))
            for name, diff in json.loads(shown).items()}


def load_equivalent() -> dict[str, str]:
    """Mutant name (or a glob of names) -> why the mutation changes no behaviour."""
    path = HERE / "equivalent.toml"
    if not path.exists():
        return {}
    return {name: str(reason) for name, reason in tomllib.loads(path.read_text()).get("equivalent", {}).items()}


def explanation(mutant: str, equivalent: dict[str, str]) -> str | None:
    if mutant in equivalent:
        return equivalent[mutant]
    for pattern, reason in equivalent.items():
        if any(mark in pattern for mark in "*?[") and fnmatch.fnmatchcase(mutant, pattern):
            return reason
    return None


def report(runs: dict[Group, Path], out: Path) -> tuple[float, bool]:
    """Write the report; the overall kill rate, and whether every group ran to the end."""
    equivalent = load_equivalent()
    by_module: dict[str, Counter[str]] = {}
    unexplained: list[tuple[str, str, Path]] = []
    explained: list[tuple[str, str]] = []
    not_run = [group.name for group, scratch in runs.items() if not (scratch / "mutants").is_dir()]
    for scratch in runs.values():
        for mutant, status in sorted(results(scratch).items()):
            counts = by_module.setdefault(module_of(mutant), Counter())
            if status in _KILLED:
                counts["killed"] += 1
                continue
            if status == "not checked":  # an interrupted run: counted apart, not in the rate
                counts["not checked"] += 1
                continue
            reason = explanation(mutant, equivalent)
            if reason is not None:
                counts["equivalent"] += 1
                explained.append((mutant, reason))
            else:
                counts["no tests" if status == "no tests" else "survived"] += 1
                unexplained.append((mutant, status, scratch))
    total = Counter[str]()
    lines = ["# Mutation report", "",
             "Written by `tox -e mutation` (`tests/mutation/run.py`, mutmut 3). Kill rate: killed / (all -",
             f"equivalent); target {TARGET:.0%}. Each survivor is killed by a new test or explained in",
             "`tests/mutation/equivalent.toml`.", "",
             "| module | mutants | killed | survived | no tests | equivalent | not checked | kill rate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        lines.append(_row(module, counts))
    lines.append(_row("**all**", total))
    rate = _rate(total)
    complete = not not_run and not total["not checked"]
    verdict = ("met" if rate >= TARGET else "NOT met") if complete else "an incomplete run: no verdict"
    lines += ["", f"Overall kill rate: **{rate:.1%}** ({verdict}).", ""]
    if not_run:
        lines += [f"**Not run:** the {', '.join(not_run)} group(s); the rate leaves them out.", ""]
    if total["not checked"]:
        lines += [f"**Incomplete:** {total['not checked']} mutants not checked (an interrupted run); the rate",
                  "counts only the mutants checked.", ""]
    if unexplained:
        lines += ["## Survivors without a test or an explanation", ""]
        diffs: dict[str, str] = {}
        for scratch in runs.values():
            diffs.update(diffs_of(scratch, [mutant for mutant, _, where in unexplained if where == scratch]))
        for mutant, status, _ in unexplained:
            lines += [f"### `{mutant}` ({status})", "", "```diff", diffs.get(mutant, ""), "```", ""]
    if explained:
        lines += ["## Equivalent mutants", ""]
        lines += [f"- `{mutant}`: {reason}" for mutant, reason in explained]
    out.write_text("\n".join(lines) + "\n")
    return rate, complete


def _rate(counts: Counter[str]) -> float:
    considered = counts["killed"] + counts["survived"] + counts["no tests"]
    return counts["killed"] / considered if considered else 1.0


def _row(module: str, counts: Counter[str]) -> str:
    total = sum(counts.values())
    return (f"| {module} | {total} | {counts['killed']} | {counts['survived']} | {counts['no tests']} | "
            f"{counts['equivalent']} | {counts['not checked']} | {_rate(counts):.1%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[group.name for group in GROUPS],
                        help="run only this group (repeatable); default: every group")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    parser.add_argument("--scratch", type=Path, help="work here (kept) instead of a temporary folder")
    parser.add_argument("--report-only", action="store_true", help="report the runs already in --scratch")
    parser.add_argument("--recheck", action="store_true",
                        help="in --scratch: rerun only what the last run did not kill, and changed functions")
    parser.add_argument("--mutants", action="append", default=[], metavar="GLOB",
                        help="with --recheck: only mutants whose name matches (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE / "REPORT.md", help="the report's path")
    arguments = parser.parse_args()
    if (arguments.report_only or arguments.recheck) and arguments.scratch is None:
        parser.error("--report-only and --recheck need --scratch")
    groups = [group for group in GROUPS if not arguments.only or group.name in arguments.only]
    scratch = arguments.scratch or Path(tempfile.mkdtemp(prefix="arena-mutation-"))
    runs = {group: scratch / group.name for group in groups}
    try:
        for group, folder in [] if arguments.report_only else runs.items():
            if arguments.recheck and (folder / "mutants").is_dir():
                recheck(folder, group, arguments.children, arguments.mutants)
                continue
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            copy_repository(folder)
            configure(folder, group)
            run_mutmut(folder, arguments.children)
        rate, complete = report(runs, arguments.out)
    finally:
        if arguments.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"kill rate {rate:.1%} (target {TARGET:.0%}){'' if complete else ', incomplete run'}; "
          f"report in {arguments.out}", file=sys.stderr)
    return 0 if complete and rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
