"""Client-side helpers (reference netsecgame.md §10.3): observation conversions, log
parsing, hashes and logging levels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from agents.utils import (
    get_file_hash,
    get_logging_level,
    get_str_hash,
    observation_as_dict,
    observation_from_dict,
    observation_from_str,
    observation_to_str,
    parse_log_content,
)
from protocol import IP, ActionType, GameState, Observation

from .agents_samples import A, H, small_state

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
