"""Durability of JSON-lines files (issue 5, item 6): whole-line appends, lines a kill cut
short ended by the next writer, and a reader that skips and reports them.

The kill test forks children that run the world's own code path: a GameSession whose
task saves trajectories plays a random attacker (no exfiltration, so the episode runs
to max_steps); each child makes the episode's last step and resets, and the session
appends the trajectory (hundreds of KB) while the parent SIGKILLs the child.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import JsonlReport, append_jsonl_line, generate_valid_actions, read_jsonl, read_jsonl_report
from protocol import Action, ActionType, AgentInfo, AgentRole, GameState
from protocol.jsonl import JsonlWriter, SkippedLine, encode_jsonl_line
from world import DEFAULT_TASK, GameSession, parse_task
from world.trajectory import trajectory_file_name

KILLS = 60
MAX_STEPS = 150  # about 300 KB a trajectory line on scenario1_small
SEAT = "walker"


# =========================================================================== unit tests


def _write(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_partial_last_line_is_skipped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.jsonl"
    append_jsonl_line(path, {"n": 1})
    _write(path, b'{"n": 2, "pad": "xxxx')
    with caplog.at_level(logging.WARNING, logger="protocol.jsonl"):
        report = read_jsonl_report(path)
    assert isinstance(report, JsonlReport) and report.path == str(path)
    assert report.records == [{"n": 1}]
    assert report.skipped == [SkippedLine(2, 9, 21, "partial", "no newline at the end of the file")]
    assert report.partial == report.skipped and report.corrupt == []
    assert "skipped 1 partial and 0 corrupt lines: 2 (partial, 21 bytes)" in caplog.text
    assert list(read_jsonl(path, strict=True)) == [{"n": 1}], "a cut last line is no corruption"


def test_next_append_ends_a_cut_line_so_it_sits_in_the_middle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A restarted writer ends the cut line first: the new record parses, the cut one is
    reported as partial, in the middle of the file."""
    path = tmp_path / "t.jsonl"
    append_jsonl_line(path, {"n": 1})
    _write(path, b'{"n": 2, "states": [{"a": tr')
    with caplog.at_level(logging.WARNING, logger="protocol.jsonl"):
        append_jsonl_line(path, {"n": 3})
    assert "ends with a line cut short" in caplog.text
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2, "states": [{"a": tr\n{"n": 3}\n'
    report = read_jsonl_report(path)
    assert report.records == [{"n": 1}, {"n": 3}]
    assert [(s.number, s.offset, s.length, s.kind) for s in report.skipped] == [(2, 9, 28, "partial")]
    assert list(read_jsonl(path, strict=True)) == [{"n": 1}, {"n": 3}]
    append_jsonl_line(path, {"n": 4})  # the file ends with a newline again: nothing to end
    assert path.read_bytes().endswith(b'{"n": 3}\n{"n": 4}\n')


@pytest.mark.parametrize("cut", [
    b'{"a": "text', b'{"a": "\\u00', b'{"a": [1, 2', b'{"a": nul', b'{"a": -Infin', b'{"a": 1.5e',
    b'{"a"', b"{", b'{"a": 1,', b'{"a": "\xc3',
])
def test_lines_that_end_too_early_are_partial(tmp_path: Path, cut: bytes) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(cut + b"\n[1]\n")
    report = read_jsonl_report(path)
    assert report.records == [[1]] and [s.kind for s in report.skipped] == ["partial"]


@pytest.mark.parametrize("bad", [b'{"n": 2{"n": 3}', b'{"a": 1}x', b"not json", b'{"a": bogus}', b'{"a": "\\x"}'])
def test_corrupt_lines_are_reported_and_strict_raises(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"n": 1}\n\n' + bad + b"\n[4]\n")
    report = read_jsonl_report(path)
    assert report.records == [{"n": 1}, [4]]
    assert [(s.number, s.kind, s.length) for s in report.skipped] == [(3, "corrupt", len(bad))]
    assert list(read_jsonl(path)) == [{"n": 1}, [4]]
    with pytest.raises(ValueError, match=r"t\.jsonl:3: not a JSON line"):
        list(read_jsonl(path, strict=True))


def test_a_short_write_is_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A write that stops early (a full disk, a signal) is continued to the line's end."""
    path = tmp_path / "t.jsonl"
    real_write = os.write
    sizes: list[int] = []

    def stingy_write(fd: int, data: Any) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data[:1000]))

    monkeypatch.setattr(os, "write", stingy_write)
    record = {"pad": "p" * 2500}
    with caplog.at_level(logging.WARNING, logger="protocol.jsonl"):
        append_jsonl_line(path, record)
    assert "Short write" in caplog.text
    line = encode_jsonl_line(record)
    assert sizes == [len(line), len(line) - 1000, len(line) - 2000]
    assert path.read_bytes() == line


def test_a_write_that_makes_no_progress_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    calls = iter([5])

    def stalling_write(fd: int, data: Any) -> int:
        return real_write(fd, bytes(data[: next(calls, 0)]))

    monkeypatch.setattr(os, "write", stalling_write)
    with pytest.raises(OSError, match="no progress"):
        append_jsonl_line(tmp_path / "t.jsonl", {"n": 1})


def test_writer_keeps_its_descriptor_and_follows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "trace.jsonl"
    with JsonlWriter(path, compact=True) as writer:
        assert not path.exists(), "opened on the first append"
        writer.append({"n": 1})
        descriptor = writer._fd
        writer.append({"n": 2})
        assert writer._fd == descriptor
        path.rename(tmp_path / "rotated.jsonl")
        writer.append({"n": 3})
        _write(path, b'{"n": 4, "cut')  # another writer died mid-line
        writer.append({"n": 5})
    assert writer._fd is None
    assert (tmp_path / "rotated.jsonl").read_bytes() == b'{"n":1}\n{"n":2}\n'
    assert path.read_bytes() == b'{"n":3}\n{"n": 4, "cut\n{"n":5}\n'
    with pytest.raises(TypeError):
        JsonlWriter(path).append({"x": object()})


def test_appends_hold_an_exclusive_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flock around the tail check and the write: a cooperating writer cannot slip its line
    between them, and cannot land on a line another writer's crash just cut."""
    fcntl = pytest.importorskip("fcntl")
    real_flock = fcntl.flock
    operations: list[int] = []

    def recording_flock(fd: int, operation: int) -> None:
        operations.append(operation)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", recording_flock)
    append_jsonl_line(tmp_path / "t.jsonl", {"n": 1})
    with JsonlWriter(tmp_path / "t.jsonl") as writer:
        writer.append({"n": 2})
    assert operations == [fcntl.LOCK_EX, fcntl.LOCK_UN] * 2


def test_without_read_access_lines_are_still_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the writer may not read: appends still work, only the tail check is lost."""
    path = tmp_path / "w.jsonl"
    real_open = os.open

    def write_only(name: Any, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_RDWR:
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, mode)

    monkeypatch.setattr(os, "open", write_only)
    append_jsonl_line(path, {"n": 1})
    append_jsonl_line(path, {"n": 2})
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2}\n'


# =========================================================================== the kill test


def _walker_session(directory: Path) -> GameSession:
    document = yaml.safe_load(DEFAULT_TASK.read_text())
    document["arena"]["seats"] = document["arena"]["start"] = {"Attacker": 1}
    document["arena"]["trajectory_dir"] = str(directory)
    document["env"]["save_trajectories"] = True
    document["coordinator"]["agents"]["Attacker"]["max_steps"] = MAX_STEPS
    return GameSession(parse_task(document, "durability.yaml"), seed=5)


def _random_action(state: GameState, rng: random.Random) -> Action:
    """A random valid action, never an exfiltration: the episode runs to max_steps."""
    actions = sorted(generate_valid_actions(state), key=str)
    return rng.choice([a for a in actions if a.action_type is not ActionType.ExfiltrateData] or actions)


def _child(session: GameSession, state: GameState, seed: int) -> None:
    """In the fork: the episode's last step, then the reset that saves the trajectory."""
    code = 0
    try:
        (reply,) = session.step(SEAT, _random_action(state, random.Random(seed)), 0.0, "last")
        if reply.observation is None or not reply.observation.end:
            code = 3
        else:
            session.handle(SEAT, Action(ActionType.ResetGame, {}), 0.0, "reset")
            time.sleep(10)  # the parent kills us long before
    except BaseException:
        code = 4
    finally:
        os._exit(code)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _kill_once(session: GameSession, state: GameState, path: Path, rng: random.Random, seed: int) -> None:
    """Fork a child, SIGKILL it at a moment drawn from ``rng``, and always reap it."""
    before = _size(path)
    wait_for_growth = rng.random() >= 0.15  # else: a random moment, often before the write
    delay = rng.choice([0.0, rng.uniform(0, 3e-4), rng.uniform(0, 3e-3)]) if wait_for_growth else rng.uniform(0, 0.03)
    with warnings.catch_warnings():  # the child runs pure Python and os.write, then dies
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        _child(session, state, seed)
    reaped = False
    try:
        deadline = time.monotonic() + 5.0
        while wait_for_growth and _size(path) <= before:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = True
                pytest.fail(f"the world child exited ({os.waitstatus_to_exitcode(status)}) before writing")
            if time.monotonic() > deadline:
                pytest.fail("the world child wrote nothing in 5 s")
        end = time.perf_counter() + delay
        while time.perf_counter() < end:
            pass
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)  # a zombie until reaped, so the pid is still ours
            os.waitpid(pid, 0)


def _assert_trajectory(record: Any) -> None:
    assert record["agent_name"] == "Walker" and record["agent_role"] == "Attacker"
    assert record["end_reason"] == "AgentStatus.TimeoutReached"
    trajectory = record["trajectory"]
    assert len(trajectory["actions"]) == len(trajectory["rewards"]) == MAX_STEPS
    assert len(trajectory["states"]) == MAX_STEPS + 1


def test_world_killed_while_writing_trajectories(tmp_path: Path) -> None:
    """SIGKILL a world 60 times while it appends long trajectory lines to one file: every
    complete line parses as a trajectory, each cut line is ended by the next writer, and
    the reader returns exactly the good lines and reports exactly the cut ones."""
    started = time.monotonic()
    session = _walker_session(tmp_path)
    (joined,) = session.handle(SEAT, Action(ActionType.JoinGame, {"agent_info": AgentInfo("Walker", "Attacker")}),
                               0.0, "join")
    assert joined.observation is not None
    state, rng = joined.observation.state, random.Random(2024)
    for step in range(MAX_STEPS - 1):  # played once here; every child plays the last step
        (reply,) = session.step(SEAT, _random_action(state, rng), 0.0, step)
        assert reply.observation is not None and not reply.observation.end
        state = reply.observation.state
    path = tmp_path / trajectory_file_name("Walker", AgentRole.Attacker)

    chunks: list[bytes] = []  # what each kill's child added to the file
    for kill in range(KILLS):
        before = _size(path)
        _kill_once(session, state, path, rng, seed=kill)
        if path.exists():
            with path.open("rb") as handle:
                handle.seek(before)
                chunks.append(handle.read())

    # Each child added nothing, or (a newline ending the cut line before it, then) one
    # whole line, or one line cut short.
    lines: list[tuple[bytes, bool]] = []  # (content, complete)
    cut_before = False
    for chunk in filter(None, chunks):
        assert chunk.startswith(b"\n") == cut_before, "a cut line is ended exactly when there is one"
        body = chunk[1:] if cut_before else chunk
        cut_before = False
        if not body:  # killed right after ending the cut line
            continue
        assert b"\n" not in body[:-1], "one line per child"
        complete = body.endswith(b"\n")
        if complete:
            _assert_trajectory(json.loads(body))  # every complete line parses
        lines.append((body.rstrip(b"\n"), complete))
        cut_before = not complete
    cut = [index for index, (_, complete) in enumerate(lines) if not complete]
    logging.getLogger(__name__).info("%d kills: %d lines, %d of them cut short", KILLS, len(lines), len(cut))
    assert cut, "no kill landed mid-write"
    assert len(lines) - len(cut) >= 1, "no child finished its line"

    # A cut line is skipped unless it is complete JSON that only lacks its newline (a cut
    # between the last two bytes) and another line follows it.
    def whole(index: int) -> bool:
        content, complete = lines[index]
        if complete:
            return True
        try:
            json.loads(content)
        except ValueError:
            return False
        return index < len(lines) - 1

    good = [index for index in range(len(lines)) if whole(index)]
    report = read_jsonl_report(path)
    assert report.corrupt == []
    assert len(report.records) == len(good)
    assert [s.number for s in report.skipped] == [index + 1 for index in range(len(lines)) if index not in good]
    assert [s.length for s in report.skipped] == [len(lines[i][0]) for i in range(len(lines)) if i not in good]
    for record in report.records:
        _assert_trajectory(record)
    assert sum(1 for _ in read_jsonl(path, strict=True)) == len(good)
    path.unlink()  # tens of MB
    assert time.monotonic() - started < 60, "the kill test is meant to take a few seconds"
