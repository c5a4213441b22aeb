"""Client-side helpers (reference netsecgame.md §10.3) and the trajectory recorder
(reference §3.7, §10.3), plus the crash-safe JSON-lines helpers they share with world/.
"""

from __future__ import annotations

import hashlib
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
    generate_valid_actions,
    get_file_hash,
    get_logging_level,
    get_str_hash,
    observation_as_dict,
    observation_from_dict,
    observation_from_str,
    observation_to_str,
    parse_log_content,
    read_jsonl,
    read_trajectories_from_jsonl,
    state_as_ordered_string,
    store_trajectories_to_jsonl,
)
from protocol import (
    IP,
    Action,
    ActionType,
    AgentRole,
    AgentStatus,
    Data,
    GameState,
    Network,
    Observation,
    Service,
)

A, H, E = IP("192.168.1.2"), IP("192.168.1.3"), IP("213.47.23.195")
NET = Network("192.168.1.0", 24)
SSH = Service("ssh", "passive", "8.1.0", False)
D1 = Data("User1", "DataFromServer1")


def small_state(**changes: object) -> GameState:
    """Controls A and E; knows A, H, E, one network, ssh on H and one datum on A."""
    state = GameState(
        controlled_hosts={A, E},
        known_hosts={A, H, E},
        known_networks={NET},
        known_services={H: {SSH}},
        known_data={A: {D1}},
    )
    return state.evolve(**changes) if changes else state


def act(kind: ActionType, **parameters: object) -> Action:
    return Action(kind, dict(parameters))


# =========================================================================== generate_valid_actions


class TestGenerateValidActions:
    def test_exact_members_of_small_state(self) -> None:
        """reference §10.3: scans per controlled host and network, service scans and exploits
        per controlled host, FindData(h, h), exfiltration to every other controlled host."""
        expected = {
            act(ActionType.ScanNetwork, source_host=A, target_network=NET),
            act(ActionType.ScanNetwork, source_host=E, target_network=NET),
            *(
                act(ActionType.FindServices, source_host=c, target_host=h)
                for c in (A, E)
                for h in (A, H, E)
            ),
            act(ActionType.ExploitService, source_host=A, target_host=H, target_service=SSH),
            act(ActionType.ExploitService, source_host=E, target_host=H, target_service=SSH),
            act(ActionType.FindData, source_host=A, target_host=A),
            act(ActionType.FindData, source_host=E, target_host=E),
            act(ActionType.ExfiltrateData, source_host=A, target_host=E, data=D1),
        }
        actions = generate_valid_actions(small_state())
        assert isinstance(actions, set)
        assert len(actions) == 13
        assert actions == expected

    def test_find_data_source_equals_target(self) -> None:
        """reference §10.3: FindData is (h, h) for each controlled h."""
        finds = [
            a for a in generate_valid_actions(small_state()) if a.action_type is ActionType.FindData
        ]
        assert sorted(a.parameters["source_host"] for a in finds) == [A, E]
        assert all(a.parameters["source_host"] == a.parameters["target_host"] for a in finds)

    def test_no_controlled_hosts_no_actions(self) -> None:
        """reference §10.3: everything is generated per controlled host."""
        assert generate_valid_actions(small_state(controlled_hosts=frozenset())) == set()
        assert generate_valid_actions(GameState()) == set()

    def test_exfiltration_from_uncontrolled_known_data(self) -> None:
        """reference §10.3: ExfiltrateData(src, t, d) for every known datum at src and every
        controlled t != src (src need not be controlled)."""
        state = small_state(known_data={H: frozenset({D1})})
        exfils = {
            a for a in generate_valid_actions(state) if a.action_type is ActionType.ExfiltrateData
        }
        assert exfils == {
            act(ActionType.ExfiltrateData, source_host=H, target_host=t, data=D1) for t in (A, E)
        }

    def test_blocks_exclude(self) -> None:
        """reference §10.3: hosts in known_blocks[c] are skipped for FindServices and
        ExploitService from c; exfiltration skips t blocked for src."""
        state = small_state(known_blocks={A: frozenset({H, E})})
        actions = generate_valid_actions(state)
        assert act(ActionType.FindServices, source_host=A, target_host=H) not in actions
        assert act(ActionType.FindServices, source_host=A, target_host=E) not in actions
        assert act(ActionType.FindServices, source_host=A, target_host=A) in actions
        assert act(ActionType.FindServices, source_host=E, target_host=H) in actions
        assert (
            act(ActionType.ExploitService, source_host=A, target_host=H, target_service=SSH)
            not in actions
        )
        assert (
            act(ActionType.ExploitService, source_host=E, target_host=H, target_service=SSH)
            in actions
        )
        assert act(ActionType.ExfiltrateData, source_host=A, target_host=E, data=D1) not in actions
        # scans are never blocked
        assert act(ActionType.ScanNetwork, source_host=A, target_network=NET) in actions
        # E is blocked for A, but not for E itself: FindData(E, E) stays
        assert act(ActionType.FindData, source_host=E, target_host=E) in actions
        assert len(actions) == 13 - 2 - 1 - 1

    def test_find_data_dropped_only_when_blocked_for_every_controlled_host(self) -> None:
        """reference §10.3: FindData(h, h) is added for each controlled c with h not in B[c]."""
        state = small_state(known_blocks={A: frozenset({E}), E: frozenset({E})})
        finds = {a for a in generate_valid_actions(state) if a.action_type is ActionType.FindData}
        assert finds == {act(ActionType.FindData, source_host=A, target_host=A)}

    def test_include_blocks(self) -> None:
        """reference §10.3: with include_blocks, BlockIP(s, t, b) for controlled s, t and every
        known host b, using the key blocked_host."""
        actions = generate_valid_actions(small_state(), include_blocks=True)
        blocks = {a for a in actions if a.action_type is ActionType.BlockIP}
        assert blocks == {
            act(ActionType.BlockIP, source_host=s, target_host=t, blocked_host=b)
            for s in (A, E)
            for t in (A, E)
            for b in (A, H, E)
        }
        assert all(
            set(a.parameters) == {"source_host", "target_host", "blocked_host"} for a in blocks
        )
        assert len(actions) == 13 + 12
        assert not any(
            a.action_type is ActionType.BlockIP for a in generate_valid_actions(small_state())
        )

    def test_include_blocks_respects_known_blocks(self) -> None:
        """reference §10.3: BlockIP(s, t, ·) only when t is not blocked for s."""
        state = small_state(known_blocks={A: frozenset({E})})
        blocks = {
            a
            for a in generate_valid_actions(state, include_blocks=True)
            if a.action_type is ActionType.BlockIP
        }
        pairs = {(a.parameters["source_host"], a.parameters["target_host"]) for a in blocks}
        assert pairs == {(A, A), (E, A), (E, E)}

    def test_actions_are_valid_and_serialisable(self) -> None:
        """The generated actions carry every required parameter and round-trip as JSON."""
        from protocol import validate_action

        for action in generate_valid_actions(small_state(), include_blocks=True):
            validate_action(action)
            assert Action.from_json(action.to_json()) == action


# ===================================================================== state_as_ordered_string


def test_state_as_ordered_string_exact() -> None:
    """reference §10.3: the canonical sorted text; nets as CIDR, hosts as strings,
    services and data by their reprs, no separator between hosts in the maps, a space
    before blocks."""
    state = GameState(
        controlled_hosts={IP("192.168.1.2")},
        known_hosts={IP("192.168.1.2"), IP("192.168.1.10")},
        known_networks={Network("192.168.10.0", 24), Network("192.168.2.0", 24)},
        known_services={
            IP("192.168.1.2"): {
                Service("ssh", "passive", "8.1.0", False),
                Service("http", "passive", "2.4", True),
            },
            IP("192.168.1.10"): {Service("ftp")},
        },
        known_data={IP("192.168.1.2"): {Data("U", "b"), Data("U", "a", size=3, content="x")}},
        known_blocks={IP("192.168.1.2"): {IP("192.168.1.3"), IP("192.168.1.10")}},
    )
    assert state_as_ordered_string(state) == (
        "nets:[192.168.2.0/24,192.168.10.0/24],"
        "hosts:[192.168.1.10,192.168.1.2],"
        "controlled:[192.168.1.2],"
        "services:{192.168.1.10:[Service(name='ftp', type='unknown', version='unknown', "
        "is_local=True)]"
        "192.168.1.2:[Service(name='http', type='passive', version='2.4', is_local=True),"
        "Service(name='ssh', type='passive', version='8.1.0', is_local=False)]},"
        "data:{192.168.1.2:[Data(owner='U', id='a', size=3, type=''),"
        "Data(owner='U', id='b', size=0, type='')]}, "
        "blocks:{192.168.1.2:[192.168.1.10,192.168.1.3]}"
    )


def test_state_as_ordered_string_empty_and_order_independent() -> None:
    """reference §10.3: empty parts; the text does not depend on set order."""
    assert state_as_ordered_string(GameState()) == (
        "nets:[],hosts:[],controlled:[],services:{},data:{}, blocks:{}"
    )
    state = small_state()
    rebuilt = GameState.from_dict(json.loads(json.dumps(state.as_dict)))
    assert state_as_ordered_string(rebuilt) == state_as_ordered_string(state)


# =========================================================================== observations


def _observation() -> Observation:
    return Observation(
        small_state(known_blocks={A: frozenset({H})}),
        -1.0,
        True,
        {"end_reason": "AgentStatus.Success"},
    )


class TestObservationHelpers:
    def test_as_dict_shape(self) -> None:
        """reference §10.3, §1.10: {state: as_dict, reward, end, info: dict(info)}."""
        obs = _observation()
        data = observation_as_dict(obs)
        assert data == {
            "state": obs.state.as_dict,
            "reward": -1.0,
            "end": True,
            "info": {"end_reason": "AgentStatus.Success"},
        }
        assert data["info"] is not obs.info

    def test_dict_and_str_round_trips(self) -> None:
        """reference §10.3, §11: dict and JSON round-trips."""
        obs = _observation()
        assert observation_from_dict(observation_as_dict(obs)) == obs
        text = observation_to_str(obs)
        assert json.loads(text) == observation_as_dict(obs)
        assert observation_from_str(text) == obs
        assert observation_from_str(text.encode()) == obs

    def test_defaults_and_coercion(self) -> None:
        """reference §10.3: reward → float, end → bool; defaults 0.0, False and {}."""
        obs = observation_from_dict({"state": GameState().as_dict})
        assert obs == Observation(GameState(), 0.0, False, {})
        assert type(obs.reward) is float and obs.end is False
        obs = observation_from_dict(
            {"state": GameState().as_dict, "reward": 99, "end": 1, "info": None}
        )
        assert type(obs.reward) is float and obs.reward == 99.0
        assert obs.end is True and obs.info == {}
        assert observation_from_dict({"state": GameState().as_dict, "reward": "2.5"}).reward == 2.5

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"state": None},
            {"state": "State<...>"},
            {"state": [1, 2]},
            {"state": {"known_hosts": []}},
            {"state": GameState().as_dict, "reward": "a lot"},
            {"state": GameState().as_dict, "reward": None},
            {"state": GameState().as_dict, "info": ["x"]},
            [1, 2],
            None,
        ],
    )
    def test_from_dict_errors(self, data: object) -> None:
        """reference §10.3: state must be a dict (ValueError otherwise); malformed parts too."""
        with pytest.raises(ValueError):
            observation_from_dict(data)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "text", ["not json", "", '{"state": 1}', "[]", None, 5, "[" * 100_000 + "]" * 100_000]
    )
    def test_from_str_errors(self, text: object) -> None:
        """reference §10.3: invalid JSON or a bad state raise ValueError."""
        with pytest.raises(ValueError):
            observation_from_str(text)  # type: ignore[arg-type]


# =========================================================================== logs and hashes


class TestParseLogContent:
    def test_parses_entries(self) -> None:
        """reference §10.3, §9: a list of {source_host: IP, action_type: ActionType}."""
        content = json.dumps(
            [
                {"source_host": "192.168.2.2", "action_type": "ActionType.ScanNetwork"},
                {"source_host": "192.168.2.3", "action_type": "FindData"},
            ]
        )
        assert parse_log_content(content) == [
            {"source_host": IP("192.168.2.2"), "action_type": ActionType.ScanNetwork},
            {"source_host": IP("192.168.2.3"), "action_type": ActionType.FindData},
        ]
        assert parse_log_content(content.encode()) == parse_log_content(content)
        assert parse_log_content("[]") == []

    @pytest.mark.parametrize(
        "content",
        [
            "not json",
            "",
            "[{",
            None,
            "{}",
            '"text"',
            "[1]",
            '[{"source_host": "1.1.1.1"}]',
            '[{"source_host": "nope", "action_type": "ActionType.ScanNetwork"}]',
            '[{"source_host": "1.1.1.1", "action_type": "ActionType.Dance"}]',
            "[" * 100_000 + "]" * 100_000,
        ],
    )
    def test_invalid_input_gives_none(
        self, content: object, caplog: pytest.LogCaptureFixture
    ) -> None:
        """reference §10.3: None on bad JSON (and, here, on any malformed log); logged."""
        with caplog.at_level(logging.ERROR, logger="agents.utils"):
            assert parse_log_content(content) is None  # type: ignore[arg-type]
        assert caplog.records


def test_str_hash() -> None:
    """reference §10.3, §11: get_str_hash is the hex digest of the UTF-8 text."""
    assert get_str_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert get_str_hash("žluťoučký", "md5") == hashlib.md5("žluťoučký".encode()).hexdigest()
    assert len(get_str_hash("")) == 64


def test_file_hash(tmp_path: Path) -> None:
    """reference §10.3: get_file_hash(path, 'sha256', 4096), chunked."""
    payload = os.urandom(10_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert get_file_hash(path) == hashlib.sha256(payload).hexdigest()
    assert get_file_hash(str(path), "sha1", chunk_size=7) == hashlib.sha1(payload).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert get_file_hash(empty) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("DEBUG", logging.DEBUG),
        ("info", logging.INFO),
        ("Warning", logging.WARNING),
        ("CRITICAL", logging.CRITICAL),
        ("ERROR", logging.ERROR),
        ("verbose", logging.ERROR),
    ],
)
def test_logging_level(name: str, level: int) -> None:
    """reference §10.3: level names map to levels, ERROR as the fallback."""
    assert get_logging_level(name) == level


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
        """A crash can only leave a last line without its newline: it is skipped."""
        path = tmp_path / "t.jsonl"
        append_jsonl_line(path, {"n": 1})
        append_jsonl_line(path, {"n": 2})
        with open(path, "ab") as handle:
            handle.write(b'{"n": 3')
        with caplog.at_level(logging.WARNING, logger="agents.utils"):
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
