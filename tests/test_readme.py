"""The README's examples do what it says: every Python block runs and is checked (what
it prints, or the functions it defines called against real stacks), and every `arena`
command line it shows names a real command with flags that command accepts. At the end,
promises of README "When things fail" and PROTOCOL.md §7 that no other test asserted.

A new Python block needs its check here: ``test_every_python_block_has_its_check`` fails
until it has one. The blocks run as written; a test only passes arguments (the real
brokers' addresses) to the functions they define.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import random
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import zmq
from click.testing import CliRunner

from agents import ParallelBaseAgent
from agents.status import query_status
from bin.cli import main
from bin.stack import Stack
from bin.supervisor import Backoff
from broker import Broker
from broker import broker as broker_module
from broker.broker import DEFAULT_ENDPOINTS
from protocol import MAX_BODY_BYTES, PROTOCOL_FRAME, AgentStatus, ErrorCode, GameStatus, Observation
from world import load_task
from world.game_host import GameHost
from world.worker import WorldWorker

from .test_broker_faults import HEARTBEAT, STEP, context, running, wait_for
from .test_broker_faults import Agent as FaultAgent
from .test_broker_faults import World as FaultWorld
from .test_sharding import play_to_the_end, split_as_listed, two_brokers
from .test_world_resends import JOIN, SCAN, join_body, only, request

__all__ = ["context", "running"]  # the fixtures, imported for pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
#: What identifies each Python block, and so the test that checks it.
MARKERS = ("def play_one_episode(", "def sharded_envs(", "session = GameSession(", "env = ArenaEnv(")


def block(marker: str) -> str:
    [found] = [code for code in PYTHON_BLOCKS if marker in code]
    return found


def run(code: str) -> tuple[dict[str, Any], str]:
    """Run a block as written (from the repository root, as its paths assume): its
    names and what it printed."""
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), namespace)
    return namespace, printed.getvalue()


def test_readme_opens_with_install_demo_and_test_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first_block is not None and README.index("```sh") < README.index("\n## ")
    lines = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert lines[0].startswith("pip install -e ") and lines[0].endswith("arena demo")
    assert lines[1] == "python -m pytest"


def test_every_python_block_has_its_check() -> None:
    """Each block carries exactly one marker; each marker is in exactly one block."""
    found = [[marker for marker in MARKERS if marker in code] for code in PYTHON_BLOCKS]
    assert all(len(markers) == 1 for markers in found), f"a README Python block without its check here: {found}"
    assert sorted(markers[0] for markers in found) == sorted(MARKERS), found


# ---------------------------------------------------------------------- blocks that print
def test_playing_in_process_prints_what_its_comment_says() -> None:
    """README "Playing in process": the kill chain's episode ends and prints the reward and
    info of its comment (the seeds make it exact)."""
    code = block("session = GameSession(")
    comment = re.search(r"# e\.g\. (.+)$", code, re.MULTILINE)
    assert comment is not None, "the print line lost its example"
    namespace, printed = run(code)
    observation = namespace["observation"]
    assert isinstance(observation, Observation) and observation.end
    assert re.fullmatch(r"-?\d+ \{'end_reason': 'AgentStatus\.\w+'\}\n", printed), printed
    assert printed.strip() == comment.group(1).strip(), f"prints {printed.strip()!r}, the comment says {comment[1]!r}"


def test_the_gymnasium_example_plays_an_episode_and_prints_its_end() -> None:
    """README "Reinforcement learning": an episode to its end; it prints the end reason and
    the label of the last action."""
    namespace, printed = run(block("env = ArenaEnv("))
    env, action = namespace["env"], namespace["action"]
    assert namespace["done"] is True
    reason, _, label = printed.strip().partition(" ")
    assert reason in {str(status) for status in AgentStatus} - {"AgentStatus.Playing"}, printed
    assert label == env.action_labels[action], printed
    assert printed == f"{namespace['info']['end_reason']} {label}\n"


# ---------------------------------------------------------------------- blocks that define functions
@pytest.fixture(scope="module")
def brokers() -> Iterator[tuple[Stack, ...]]:
    with two_brokers() as stacks:
        yield stacks


def test_play_one_episode_plays_to_the_end_and_frees_its_seat(brokers: tuple[Stack, ...]) -> None:
    """README "Agents in Python": ``play_one_episode`` returns the episode's last
    Observation (``end``), its default broker is the documented frontend, and
    ``terminate_connection()`` frees the seat ("QuitGame: the seat is freed")."""
    namespace, printed = run(block("def play_one_episode("))
    play_one_episode = namespace["play_one_episode"]
    assert printed == ""
    assert inspect.signature(play_one_episode).parameters["broker"].default == DEFAULT_ENDPOINTS["frontend"]
    frontend = brokers[0].endpoints["frontend"]
    observation = play_one_episode(broker=frontend)
    assert isinstance(observation, Observation) and observation.end, observation
    assert str(observation.info["end_reason"]).startswith("AgentStatus."), observation.info
    assert query_status(frontend, timeout=10.0).get("seats") == 0, "the seat was not freed"


def test_sharded_envs_play_through_both_brokers(brokers: tuple[Stack, ...]) -> None:
    """README "How many brokers": ``sharded_envs`` gives a ParallelBaseAgent whose env i
    plays through broker ``i % len(brokers)``, one socket per broker; its envs play their
    episodes to the end, each seated on its own broker's world."""
    namespace, _ = run(block("def sharded_envs("))
    addresses = tuple(stack.endpoints["frontend"] for stack in brokers)
    envs = namespace["sharded_envs"](brokers=addresses, count=4)
    try:
        assert isinstance(envs, ParallelBaseAgent) and envs.num_envs == 4
        assert envs.endpoints == [addresses[i % 2] for i in range(4)] and len(envs.sockets) == 2
        joined = envs.register()
        assert all(joined), envs.last_errors
        split_as_listed(envs, brokers)
        ended = play_to_the_end(envs, joined, random.Random(1))
        assert all(obs is not None and obs.end for obs in ended), envs.last_errors
    finally:
        envs.terminate_connection()
    assert [query_status(address, timeout=10.0).get("seats") for address in addresses] == [0, 0]


# ---------------------------------------------------------------------- `arena` command lines
def command_lines() -> list[str]:
    """Every `arena ...` command line the README shows: in ``sh`` blocks (continuations
    joined, comments and other commands of a pipeline left out), as ``$ arena`` in text
    blocks, and in inline code (placeholders such as ``COMMAND`` left out)."""
    found = []
    for code in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        for line in code.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|;|\|", re.sub(r"(^|\s)#.*$", "", line)):
                if part.strip().startswith("arena "):
                    found.append(part.strip())
    for code in re.findall(r"```text\n(.*?)```", README, re.DOTALL):
        found += [line[2:] for line in code.splitlines() if line.startswith("$ arena ")]
    for span in re.findall(r"`(arena [^`]*)`", README):
        span = " ".join(span.split())
        if re.match(r"arena ([a-z]+|--[a-z-]+)( |$)", span):
            found.append(span)
    return list(dict.fromkeys(found))


def accepted(command: click.Command) -> set[str]:
    names = {"-h", "--help"}  # bin.cli: help_option_names
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            names.update(parameter.opts, parameter.secondary_opts)
    return names


def test_the_readme_shows_arena_command_lines() -> None:
    """The scan below finds what it should (so an empty scan cannot pass)."""
    lines = command_lines()
    assert len(lines) >= 40, lines
    for expected in ("arena up --worlds 2", "arena keys keys/", "arena up --task mytask.yaml",
                     "arena world --backend ADDR --task TASK", "arena up --heartbeat --liveness"):
        assert expected in lines, f"{expected!r} not found among {lines}"


def test_every_arena_command_line_names_a_command_and_flags_it_accepts() -> None:
    """README: "`arena --help` and `arena COMMAND --help` list every option"; each command
    line shown must run as written as far as names go: the command exists and takes
    every flag given."""
    problems = []
    for line in command_lines():
        words = shlex.split(line)[1:]
        command: click.Command = main
        if words and not words[0].startswith("-"):
            if words[0] not in main.commands:
                problems.append(f"{line}: no command {words[0]!r}")
                continue
            command, words = main.commands[words[0]], words[1:]
        flags = [word.split("=")[0] for word in words if word.startswith("-") and not re.fullmatch(r"-\d*", word)]
        unknown = [flag for flag in flags if flag not in accepted(command)]
        if unknown:
            problems.append(f"{line}: arena {command.name} takes no {', '.join(unknown)}")
        for flag, value in zip(words, [*words[1:], ""], strict=False):  # a choice shown must be one
            option = next((p for p in command.params if isinstance(p, click.Option) and flag in p.opts), None)
            if option is not None and isinstance(option.type, click.Choice) and value and not value.isupper() \
                    and value not in option.type.choices:
                problems.append(f"{line}: {flag} {value} is not one of {', '.join(map(str, option.type.choices))}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("command", ["", *sorted(main.commands)])
def test_arena_command_help_works(command: str) -> None:
    """`arena --help` and `arena COMMAND --help` for every command."""
    result = CliRunner().invoke(main, [*([command] if command else []), "--help"])
    assert result.exit_code == 0 and result.output.startswith("Usage: "), result.output
    for option in (main.commands[command] if command else main).params:
        if isinstance(option, click.Option) and not option.hidden:
            assert option.opts[0] in result.output, f"arena {command} --help does not list {option.opts[0]}"


# ---------------------------------------------------------------------- promises no other test asserted
def test_a_stopping_world_refuses_new_joins_and_still_plays_its_seats_steps() -> None:
    """README "A world is stopped": "new joins are refused (NO_WORLD), requests that
    reached it are answered (a step is played)" (a GameHost that is stopping, no sockets)."""
    host = GameHost({"default": load_task()}, "w")
    _, joined = only(request(host, JOIN, b"s1", 1, join_body()))
    assert joined.status is GameStatus.CREATED, joined
    host.stopping = True
    _, refused = only(request(host, JOIN, b"s2", 1, join_body(game="another")))
    assert refused.code is ErrorCode.NO_WORLD and "shutting down" in refused.message["message"], refused
    _, step = only(request(host, STEP, b"s1", 2, SCAN))
    assert step.status is GameStatus.OK and host.games["g"].session.seats["s1"].steps == 1, step
    assert "s2" not in {seat.decode() if isinstance(seat, bytes) else seat for seat in host.seats}


def test_the_broker_defaults_are_the_documented_ones() -> None:
    """PROTOCOL.md §7: "For `--recovery` seconds (default 10)", "`--max-inflight`
    (default 4096)", "at most 10,000 wait", the backend's 64 MiB and the frontend's 4 MiB
    frame limits: the same in `arena broker` and in ``Broker``."""
    flags = {parameter.name: parameter.default for parameter in main.commands["broker"].params}
    assert (flags["recovery"], flags["max_inflight"]) == (10.0, 4096), flags
    defaults = inspect.signature(Broker).parameters
    assert (defaults["recovery"].default, defaults["max_inflight"].default) == (10.0, 4096)
    assert broker_module.PARKED_LIMIT == 10_000
    assert broker_module._BACKEND_MAXMSGSIZE == 64 << 20 and MAX_BODY_BYTES == 1 << 20


def test_a_broker_in_recovery_parks_at_most_its_limit(running: Any, context: zmq.Context,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """PROTOCOL.md §7 "Broker restart": requests for seats no world listed yet wait while the
    window is open, "at most 10,000 wait; then, and when the window closes, they are
    answered" (UNKNOWN_SEAT). The limit set to 5 here, so 6 requests show it."""
    monkeypatch.setattr(broker_module, "PARKED_LIMIT", 5)
    recovery = 0.5
    broker = running(recovery=recovery)
    opened = time.monotonic()
    agent = FaultAgent(context, broker.endpoints["frontend"], b"agent-1")
    try:
        for n in range(1, 7):
            agent.request(STEP, b"seat-%d" % n, 1, [0])
        frames, reply = agent.reply(timeout=recovery / 2)  # at once: the one past the limit
        assert frames[2] == b"seat-6" and reply.code is ErrorCode.UNKNOWN_SEAT, (frames[2], reply)
        later = sorted(agent.reply(timeout=10.0)[0][2] for _ in range(5))
        assert later == [b"seat-%d" % n for n in range(1, 6)]
        assert time.monotonic() - opened >= recovery - 0.05, "the parked ones were answered before the window closed"
    finally:
        agent.close()


def test_the_backend_takes_frames_up_to_64_mib_and_drops_a_connection_over_it(running: Any,
                                                                                context: zmq.Context) -> None:
    """PROTOCOL.md §7 "Limits": the frontend drops a frame over 4 MiB (the fuzz tests show
    it), "the backend over 64 MiB": a world may send a 5 MiB frame, not a 65 MiB one."""
    broker = running(recovery=0)
    world = FaultWorld(context, broker.endpoints["backend"])
    monitor = world.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        world.register("big")
        wait_for(lambda: broker.placement.worlds, "the world's READY")
        world.send(PROTOCOL_FRAME, HEARTBEAT, b"x" * (5 << 20))
        world.send(PROTOCOL_FRAME, HEARTBEAT)
        assert not monitor.poll(300), "a 5 MiB frame from a world dropped its connection"
        world.send(PROTOCOL_FRAME, HEARTBEAT, b"x" * ((64 << 20) + 1))
        assert monitor.poll(10_000), "a frame over 64 MiB did not drop the world's connection"
    finally:
        world.socket.disable_monitor()
        monitor.close(linger=0)
        world.close()


def test_a_world_that_keeps_failing_backs_off_from_1_s_to_32_s(caplog: pytest.LogCaptureFixture) -> None:
    """PROTOCOL.md §7 "Liveness": a world whose connection drops "opens a new socket and
    sends READY with its games (backing off from 1 s to 32 s)": at once the first time,
    then 1, 2, 4 ... 32 s. Driven through its reconnect step, with no broker."""
    worker = WorldWorker("tcp://127.0.0.1:9", [load_task()], name="w-backoff")
    context = worker._context = zmq.Context()
    try:
        with caplog.at_level(logging.WARNING, logger="world.worker"):
            for _ in range(8):
                worker._reconnect(time.monotonic(), "the connection to the broker dropped")
        delays = [int(re.search(r" in (\d+) s: ", record.getMessage())[1]) for record in caplog.records]  # type: ignore[index]
        assert delays == [0, 1, 2, 4, 8, 16, 32, 32], delays
    finally:
        worker._close_sockets(0)
        context.term()


def test_arena_up_restart_back_off_returns_to_half_a_second_after_30_s_of_running() -> None:
    """README "Under `arena up`, a child dies": "0.5 s, doubling to 16 s; back to 0.5 s once
    it had run 30 s" (bin/supervisor.py's doctest shows the doubling; this the boundary)."""
    backoff = Backoff()
    assert [backoff.delay(ran_for=1.0) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert backoff.delay(ran_for=29.9) == 4.0, "a child that ran less than 30 s keeps backing off"
    assert backoff.delay(ran_for=30.0) == 0.5, "a child that ran 30 s starts over"
