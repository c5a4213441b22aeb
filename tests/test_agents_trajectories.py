"""The trajectory recorder (reference netsecgame.md §3.7, §10.3) and the crash-safe
JSON-lines helpers it shares with world/.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest

from agents.trajectory_recorder import TrajectoryRecorder
from agents.utils import (
    append_jsonl_line,
    read_jsonl,
    read_trajectories_from_jsonl,
    store_trajectories_to_jsonl,
)
from protocol import Action, ActionType, AgentRole, AgentStatus, GameState

from .agents_samples import A, act, small_state

# =========================================================================== trajectory recorder


def _action() -> Action:
    return act(ActionType.FindData, source_host=A, target_host=A)


class TestTrajectoryRecorder:
    def test_initial_shape(self) -> None:
        """reference §3.7: the trajectory shape, empty at first."""
        recorder = TrajectoryRecorder("MyAgent", AgentRole.Attacker)
        assert recorder.get_trajectory() == {
            "trajectory": {"states": [], "actions": [], "rewards": []},
            "end_reason": None,
            "agent_role": "Attacker",
            "agent_name": "MyAgent",
        }

    def test_steps(self) -> None:
        """reference §3.7: n actions, n rewards and n+1 states, as dicts."""
        recorder = TrajectoryRecorder("MyAgent", AgentRole.Attacker)
        s0, s1, s2 = GameState(), small_state(), small_state(known_hosts=frozenset({A}))
        recorder.add_initial_state(s0)
        recorder.add_step(_action(), -1, s1)
        recorder.add_step(_action(), 99, s2, end_reason=AgentStatus.Success)
        data = recorder.get_trajectory()
        assert data["trajectory"]["states"] == [s0.as_dict, s1.as_dict, s2.as_dict]
        assert data["trajectory"]["actions"] == [_action().as_dict] * 2
        assert data["trajectory"]["rewards"] == [-1, 99]
        assert data["end_reason"] == "AgentStatus.Success"
        assert json.loads(json.dumps(data)) == data

    def test_end_reason_kept_and_string_passthrough(self) -> None:
        """reference §10.3: end_reason is set when given and not cleared by a later None."""
        recorder = TrajectoryRecorder("a", "Defender")
        recorder.add_initial_state(GameState())
        recorder.add_step(_action(), 0, GameState())
        assert recorder.get_trajectory()["end_reason"] is None
        recorder.add_step(_action(), 0, GameState(), "AgentStatus.Fail")
        recorder.add_step(_action(), 0, GameState())
        assert recorder.get_trajectory()["end_reason"] == "AgentStatus.Fail"
        assert recorder.get_trajectory()["agent_role"] == "Defender"

    def test_reset(self) -> None:
        """reference §10.3: reset() starts an empty episode."""
        recorder = TrajectoryRecorder("a", AgentRole.Benign)
        recorder.add_initial_state(GameState())
        recorder.add_step(_action(), 1, GameState(), AgentStatus.TimeoutReached)
        recorder.reset()
        assert recorder.get_trajectory() == {
            "trajectory": {"states": [], "actions": [], "rewards": []},
            "end_reason": None,
            "agent_role": "Benign",
            "agent_name": "a",
        }

    def test_step_without_initial_state_warns(self, caplog: pytest.LogCaptureFixture) -> None:
        """reference §0.1: the first add_step without an initial state logs a warning."""
        recorder = TrajectoryRecorder("a", AgentRole.Attacker)
        with caplog.at_level(logging.WARNING, logger="agents.trajectory_recorder"):
            recorder.add_step(_action(), -1, GameState())
        assert any(r.levelno == logging.WARNING for r in caplog.records)
        caplog.clear()
        recorder.reset()
        recorder.add_initial_state(GameState())
        with caplog.at_level(logging.WARNING, logger="agents.trajectory_recorder"):
            recorder.add_step(_action(), -1, GameState())
        assert not caplog.records

    def test_default_file_name_and_one_line_per_save(self, tmp_path: Path) -> None:
        """reference §3.7, §10.3: <YYYY-MM-DD>_<name>_<role>.jsonl, one JSON line per save."""
        before = f"{datetime.now():%Y-%m-%d}"
        recorder = TrajectoryRecorder("MyAgent", AgentRole.Attacker)
        recorder.add_initial_state(GameState())
        recorder.add_step(_action(), -1, small_state())
        first = recorder.save_to_file(tmp_path / "trajectories")
        recorder.add_step(_action(), 99, small_state(), AgentStatus.Success)
        second = recorder.save_to_file(tmp_path / "trajectories")
        after = f"{datetime.now():%Y-%m-%d}"
        assert first == second
        assert first is not None
        assert first.name in {f"{day}_MyAgent_AgentRole.Attacker.jsonl" for day in (before, after)}
        lines = first.read_bytes().split(b"\n")
        assert lines[-1] == b"" and len(lines) == 3
        saved = [json.loads(line) for line in lines[:2]]
        assert [len(s["trajectory"]["actions"]) for s in saved] == [1, 2]
        assert saved[1] == recorder.get_trajectory()
        assert list(read_jsonl(first)) == saved

    def test_explicit_file_name_not_stripped(self, tmp_path: Path) -> None:
        """reference §3.7: unlike upstream, trailing j/s/o/n/l characters are kept."""
        recorder = TrajectoryRecorder("Neo", "Attacker")
        assert recorder.save_to_file(tmp_path, "sessions").name == "sessions.jsonl"
        assert recorder.save_to_file(tmp_path, "run.jsonl").name == "run.jsonl"
        assert recorder.default_filename().endswith("_Neo_Attacker.jsonl")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl", "sessions.jsonl"]

    def test_unsafe_name_characters_replaced(self) -> None:
        """A hostile agent name cannot escape the trajectory directory."""
        name = TrajectoryRecorder("../../etc/passwd x", AgentRole.Attacker).default_filename()
        assert "/" not in name and " " not in name
        assert name.endswith("_.._.._etc_passwd_x_AgentRole.Attacker.jsonl")

    def test_save_errors_are_logged_not_raised(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """reference §10.3: save errors are logged, not raised."""
        blocker = tmp_path / "file"
        blocker.write_text("x")
        recorder = TrajectoryRecorder("a", AgentRole.Attacker)
        with caplog.at_level(logging.ERROR, logger="agents.trajectory_recorder"):
            assert recorder.save_to_file(blocker / "sub") is None
            recorder.add_step(_action(), object(), GameState())  # not JSON-serialisable
            assert recorder.save_to_file(tmp_path, "bad") is None
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
        assert not (tmp_path / "bad.jsonl").exists() or (tmp_path / "bad.jsonl").read_bytes() == b""


# =========================================================================== JSON lines


class TestJsonLines:
    def test_append_creates_directories_and_writes_one_line(self, tmp_path: Path) -> None:
        """A line per call; parent directories are created on demand."""
        path = tmp_path / "a" / "b" / "log.jsonl"
        append_jsonl_line(path, {"x": 1, "text": "line\nbreak"})
        append_jsonl_line(str(path), [1, 2])
        assert path.read_text() == '{"x": 1, "text": "line\\nbreak"}\n[1, 2]\n'

    def test_append_is_a_single_write(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The whole line goes out in one os.write on an O_APPEND descriptor."""
        calls: list[int] = []
        opened: list[int] = []
        real_write, real_open = os.write, os.open

        def counting_write(fd: int, data: bytes) -> int:
            calls.append(len(data))
            return real_write(fd, data)

        def recording_open(path: str, flags: int, mode: int = 0o777) -> int:
            opened.append(flags)
            return real_open(path, flags, mode)

        monkeypatch.setattr(os, "write", counting_write)
        monkeypatch.setattr(os, "open", recording_open)
        big = {"payload": "z" * 200_000}
        append_jsonl_line(tmp_path / "t.jsonl", big)
        assert calls == [len(json.dumps(big)) + 1]
        assert opened and all(flags & os.O_APPEND and flags & os.O_CREAT for flags in opened)

    def test_concurrent_appends_do_not_interleave(self, tmp_path: Path) -> None:
        """O_APPEND single writes: concurrent appenders never interleave lines."""
        path = tmp_path / "shared.jsonl"

        def writer(tag: int) -> None:
            for index in range(40):
                append_jsonl_line(path, {"tag": tag, "index": index, "pad": "p" * 20_000})

        threads = [threading.Thread(target=writer, args=(tag,)) for tag in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        records = list(read_jsonl(path, strict=True))
        assert len(records) == 240
        assert {(r["tag"], r["index"]) for r in records} == {
            (t, i) for t in range(6) for i in range(40)
        }

    def test_append_rejects_unserialisable(self, tmp_path: Path) -> None:
        """Nothing is written when the object is not JSON."""
        path = tmp_path / "x.jsonl"
        with pytest.raises(TypeError):
            append_jsonl_line(path, {"x": object()})
        assert not path.exists()

    def test_read_skips_truncated_last_line(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A last line without its newline is a write cut short: it is skipped (tests/test_durability.py
        has the cut lines a later append ends, in the middle of a file)."""
        path = tmp_path / "t.jsonl"
        append_jsonl_line(path, {"n": 1})
        append_jsonl_line(path, {"n": 2})
        with open(path, "ab") as handle:
            handle.write(b'{"n": 3')
        with caplog.at_level(logging.WARNING, logger="protocol.jsonl"):
            assert list(read_jsonl(path)) == [{"n": 1}, {"n": 2}]
        assert caplog.records
        # A truncated line that happens to parse ("12" of "123") is still skipped.
        path.write_bytes(b'{"n": 1}\n12')
        assert list(read_jsonl(path)) == [{"n": 1}]

    def test_read_blank_and_corrupt_lines(self, tmp_path: Path) -> None:
        """Blank lines are ignored; a corrupt complete line is skipped, or raises when strict."""
        path = tmp_path / "t.jsonl"
        path.write_bytes(b'{"n": 1}\n\n{"n": 2{"n": 3}\n[4]\n')
        assert list(read_jsonl(path)) == [{"n": 1}, [4]]
        with pytest.raises(ValueError, match=":3:"):
            list(read_jsonl(path, strict=True))
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(b"")
        assert list(read_jsonl(empty)) == []

    def test_store_and_read_trajectories(self, tmp_path: Path) -> None:
        """reference §10.3: store_trajectories_to_jsonl appends one line to dir/<name>.jsonl
        (no stripping of trailing j/s/o/n/l); read_trajectories_from_jsonl reads them back."""
        first = store_trajectories_to_jsonl({"a": 1}, tmp_path / "d", "episodes")
        second = store_trajectories_to_jsonl({"a": 2}, str(tmp_path / "d"), "episodes.jsonl")
        assert first == second == tmp_path / "d" / "episodes.jsonl"
        assert read_trajectories_from_jsonl(first) == [{"a": 1}, {"a": 2}]
