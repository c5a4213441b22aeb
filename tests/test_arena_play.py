"""`arena play` as a user runs it (issue 13, items 7, 8, 9 and 17), through real processes:

* nothing answering at the address is said within 5 s, and the command fails at its
  timeout (the clients log it early too, keeping their timeout);
* with --envs K every env plays the same number of episodes, all counted;
* SIGINT and SIGTERM print the summary so far, marked partial, with exit status 128 + N;
  a world SIGKILLed under it is GAME_LOST: counted, joined again and played on, or with
  --no-rejoin a partial summary and exit 1;
* a stderr that is not a terminal gets no progress-bar lines.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from agents import BaseAgent, ParallelBaseAgent
from agents.play import play_parallel
from agents.policies import POLICIES
from agents.status import query_status
from bin.stack import Stack
from protocol import AgentRole

from .play_harness import (
    ARENA,
    Lines,
    TraceEpisodes,
    arena_play,
    killed_at_exit,
    running_stack,
    seat_count,
    wait_until,
)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack(worlds=1) as running:
        yield running


def free_tcp_port() -> int:
    """A port nobody listens on: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------- item 7: nothing answers
def test_play_where_nothing_answers_says_so_within_5_s_then_fails_at_its_timeout() -> None:
    with tempfile.TemporaryDirectory(prefix="ap-", dir="/tmp") as directory:
        address = f"ipc://{directory}/nobody-here"
        started = time.monotonic()
        process = arena_play(address, "--timeout", "8", "--json")
        with killed_at_exit(process):
            assert process.stderr is not None
            stderr = Lines(process.stderr)
            took, line = stderr.wait_for("nothing answers at", 30)
            print(f"\nthe 'nothing answers' line came {took:.2f} s after `arena play` started: {line}")
            assert took < 5, "said within 5 s"
            assert address in line and "trying until the 8 s timeout" in line
            assert process.stdout is not None
            out = process.stdout.read()
            assert process.wait(60) == 1, "it could not do its job"
            elapsed = time.monotonic() - started
    assert elapsed >= 8, "it kept trying until its timeout"
    summary = json.loads(out)
    assert summary["partial"] is True and "TIMEOUT" in summary["reason"] and summary["episodes"] == 0
    assert stderr.rest().count("nothing answers at") == 1


def test_clients_log_nothing_answering_early_and_keep_their_timeout(caplog: pytest.LogCaptureFixture) -> None:
    address = f"tcp://127.0.0.1:{free_tcp_port()}"
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        with BaseAgent(address, AgentRole.Attacker, timeout=3.0) as agent:
            assert agent.register() is None and agent.last_error is not None
            assert agent.last_error.code == "TIMEOUT" and time.monotonic() - started >= 3.0
        with ParallelBaseAgent(address, AgentRole.Attacker, 2, timeout=3.0) as envs:
            assert envs.register() == [None, None]
    said = [record for record in caplog.records if "nothing answers at" in record.getMessage()]
    assert [record.name for record in said] == ["BaseAgent", "ParallelBaseAgent"], "once per wait, not per resend"
    assert all(record.levelno == logging.WARNING and address in record.getMessage() for record in said)


# ---------------------------------------------------------------------- item 8: fair counting
def test_every_env_plays_the_same_number_of_episodes_and_all_count(stack: Stack) -> None:
    with ParallelBaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, 4, timeout=60) as envs:
        outcomes = list(play_parallel(envs, POLICIES["kill-chain"], 10, random.Random(5)))
    assert Counter(outcome.env for outcome in outcomes) == {0: 3, 1: 3, 2: 3, 3: 3}, "3 whole rounds"
    assert Counter(outcome.episode for outcome in outcomes) == {0: 4, 1: 4, 2: 4}


def test_play_with_envs_reports_whole_rounds(stack: Stack) -> None:
    done = subprocess.run([*ARENA, "play", "--broker", stack.endpoints["frontend"], "--agent", "kill-chain",
                           "--envs", "8", "--episodes", "4", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 8, "one round of 8 envs, not the 4 that finished first"
    assert summary["partial"] is False and summary["game_lost"] == 0


# ---------------------------------------------------------------------- item 17: no stray lines
def test_no_progress_lines_when_stderr_is_not_a_terminal(stack: Stack) -> None:
    done = subprocess.run([*ARENA, "play", "--broker", stack.endpoints["frontend"], "--episodes", "3"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "no bar, no label, no blank line"
    assert done.stdout.startswith("3 episodes:")


# ---------------------------------------------------------------------- item 9: interrupted
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_play_prints_its_partial_summary(stack: Stack, signum: int) -> None:
    trace = TraceEpisodes(stack.endpoints["trace"])
    game = f"long-{signal.Signals(signum).name.lower()}"
    as_json = signum == signal.SIGINT  # one run in each output form
    process = arena_play(stack.endpoints["frontend"], "--agent", "random", "--game", game, "--episodes", "100000",
                         *(["--json"] if as_json else []))
    try:
        with killed_at_exit(process):
            trace.wait(3, 60, lambda event: event["game"] == game)  # it is playing: progress, not a sleep
            process.send_signal(signum)
            out, err = process.communicate(timeout=30)
    finally:
        trace.close()
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, err
    assert "Aborted" not in err and f"arena play: stopped: interrupted by {name}" in err
    if as_json:
        summary = json.loads(out)
        assert summary["partial"] is True and summary["reason"] == f"interrupted by {name}"
        assert summary["episodes"] >= 2 and summary["steps"] > 0
    else:
        assert out.splitlines()[-1] == f"partial: interrupted by {name}" and " episodes: " in out
    wait_until(lambda: seat_count(stack.endpoints["frontend"]) == 0, "the interrupted player quit its seat", 10)


# ---------------------------------------------------------------------- item 9: GAME_LOST
def world_of(stack: Stack, game: str) -> subprocess.Popen[str]:
    """The process of the world hosting ``game`` (STATUS, bounded)."""
    found: dict[str, str] = {}

    def placed() -> bool:
        entry = next((g for g in query_status(stack.endpoints["frontend"]).get("games", []) if g["game"] == game), None)
        if entry and entry["world"]:
            found["world"] = entry["world"]
        return bool(found)

    wait_until(placed, f"game {game} is placed", 30)
    names = [world["world"] for world in stack.endpoints["worlds"]]
    return stack.processes[1 + names.index(found["world"])]


def test_a_lost_game_is_counted_and_joined_again_unless_no_rejoin() -> None:
    with running_stack(worlds=3) as stack:
        frontend = stack.endpoints["frontend"]
        trace = TraceEpisodes(stack.endpoints["trace"])
        stopping = arena_play(frontend, "--agent", "random", "--game", "fragile", "--episodes", "100000", "--json",
                              "--no-rejoin")
        try:
            with killed_at_exit(stopping):
                trace.wait(1, 60, lambda event: event["game"] == "fragile")
                world_of(stack, "fragile").kill()
                out, err = stopping.communicate(timeout=60)
            assert stopping.returncode == 1, err
            summary = json.loads(out)
            assert summary["partial"] is True and "GAME_LOST" in summary["reason"]
            assert summary["game_lost"] == 1 and summary["episodes"] >= 1

            going_on = arena_play(frontend, "--agent", "random", "--game", "sturdy", "--episodes", "100000", "--json")
            with killed_at_exit(going_on):
                trace.wait(1, 60, lambda event: event["game"] == "sturdy")
                victim = world_of(stack, "sturdy")
                killed_at = time.monotonic()
                victim.kill()
                assert going_on.stderr is not None
                stderr = Lines(going_on.stderr)
                took, line = stderr.wait_for("game lost (", 30)
                print(f"\nGAME_LOST reached `arena play` {stderr.started + took - killed_at:.2f} s after the "
                      f"world's SIGKILL (heartbeat 0.2 s x 3): {line}")
                before = sum(1 for event in trace.events if event["game"] == "sturdy")
                trace.wait(before + 2, 60, lambda event: event["game"] == "sturdy")  # played on, on another world
                going_on.send_signal(signal.SIGINT)
                out, err = going_on.communicate(timeout=30)
        finally:
            trace.close()
    assert going_on.returncode == 130, err
    summary = json.loads(out)
    assert summary["game_lost"] == 1 and summary["episodes"] >= 2
    assert summary["partial"] is True and summary["reason"] == "interrupted by SIGINT"


def test_parallel_envs_whose_world_died_join_again_and_every_round_stays_whole() -> None:
    with running_stack(worlds=2) as stack:
        frontend = stack.endpoints["frontend"]
        trace = TraceEpisodes(stack.endpoints["trace"])
        process = arena_play(frontend, "--agent", "random", "--envs", "4", "--episodes", "100000", "--json")
        try:
            with killed_at_exit(process):
                trace.wait(4, 60)
                [first, *_] = [g for g in query_status(frontend)["games"] if g["seats"].get("Attacker")]
                names = [world["world"] for world in stack.endpoints["worlds"]]
                stack.processes[1 + names.index(first["world"])].kill()
                assert process.stderr is not None
                Lines(process.stderr).wait_for("game lost (", 30)
                trace.wait(len(trace.events) + 4, 60)  # played on
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=30)
        finally:
            trace.close()
    assert process.returncode == 130, err
    summary = json.loads(out)
    assert summary["game_lost"] >= 1 and summary["episodes"] >= 4 and summary["partial"] is True
