"""The JOIN a world receives from the broker (PROTOCOL.md §3.2): seat frame and body checked
strictly, each refusal naming its field, what was expected and what came (the text of the
MALFORMED reply, PROTOCOL.md §3.3)."""

from __future__ import annotations

import msgpack
import pytest

from protocol import ProtocolError
from world.game_host import _join_arguments


def body(**fields: object) -> bytes:
    return msgpack.packb({"task": "t", "role": "Attacker", "game": "g", **fields})


def refusal(seat: bytes, data: bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        _join_arguments(seat, data)
    return str(caught.value)


def test_a_full_join_gives_every_part() -> None:
    assert _join_arguments(b"s1", body(name="alice", catalog=True)) == ("s1", "t", "Attacker", "g", "alice", True)


def test_name_and_catalog_have_defaults() -> None:
    assert _join_arguments(b"s", body()) == ("s", "t", "Attacker", "g", "agent", False)
    assert _join_arguments("é".encode(), body(catalog=False))[0] == "é"


def test_the_seat_is_1_to_64_bytes_of_utf8() -> None:
    assert _join_arguments(b"x" * 64, body())[0] == "x" * 64
    assert refusal(b"", body()) == "seat: expected 1 to 64 bytes, got 0 bytes"
    assert refusal(b"x" * 65, body()) == "seat: expected 1 to 64 bytes, got 65 bytes"
    assert refusal(b"\xff", body()) == "seat: expected UTF-8 text, got bytes b'\\xff'"


def test_the_body_is_a_map() -> None:
    assert refusal(b"s", msgpack.packb([1])) == "join: expected a map {task, role, game, name}, got list [1]"


def test_catalog_is_true_or_false() -> None:
    assert refusal(b"s", body(catalog=1)) == "join.catalog: expected true or false, got int 1"
    assert refusal(b"s", body(catalog=None)) == "join.catalog: expected true or false, got NoneType None"


@pytest.mark.parametrize(("field", "limit"), [("task", 200), ("role", 20), ("game", 200), ("name", 200)])
def test_text_fields_are_non_empty_strings_within_their_limit(field: str, limit: int) -> None:
    expected = f"join.{field}: expected a non-empty string of at most {limit} characters"
    longest = "r" * limit
    parts = _join_arguments(b"s", body(**{field: longest}))
    assert longest in parts
    assert refusal(b"s", body(**{field: longest + "r"})).startswith(expected + ", got str 'rrr")
    assert refusal(b"s", body(**{field: ""})) == expected + ", got str ''"
    assert refusal(b"s", body(**{field: 7})) == expected + ", got int 7"


def test_a_missing_task_role_or_game_is_refused() -> None:
    for field in ("task", "role", "game"):
        data = msgpack.packb({key: "v" for key in ("task", "role", "game") if key != field})
        assert refusal(b"s", data) == (f"join.{field}: expected a non-empty string of at most "
                                       f"{20 if field == 'role' else 200} characters, got NoneType None")
