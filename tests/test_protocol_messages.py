"""Frames and reply bodies of the wire protocol (protocol/PROTOCOL.md §1 frames, §2 commands,
§3.3 replies), in process: the command bytes, sequence frames, and the reply body's
encoding and its checks, each malformed reply a ProtocolError naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    Observation,
    ProtocolError,
    ReplyBody,
    decode_reply,
    encode_reply,
    int_from_seq,
    pack,
    pack_state,
    seq_bytes,
    unpack,
)

from .protocol_samples import rich_state

# =========================================================================== §1-§2 frames

#: PROTOCOL.md §2's table: the byte of each command.
COMMAND_BYTES = {
    "JOIN": 1, "STEP": 2, "BATCH": 3, "RESET": 4, "QUIT": 5, "STATUS": 6, "ERROR": 7,
    "READY": 16, "HEARTBEAT": 17, "DISCONNECT": 18, "RELEASE": 19, "REQUEST": 20, "REPLY": 21,
}


def test_the_protocol_frame_names_protocol_and_version() -> None:
    """PROTOCOL.md §1: every message starts with ARENA1 (6 bytes)."""
    assert PROTOCOL_FRAME == b"ARENA1"


@pytest.mark.parametrize("name", COMMAND_BYTES)
def test_each_command_is_its_byte_both_ways(name: str) -> None:
    """PROTOCOL.md §2: a one-byte frame; from_frame accepts any bytes-like frame (zmq
    hands over bytes, bytearray or a buffer)."""
    command = Command[name]
    frame = bytes([COMMAND_BYTES[name]])
    assert command.frame == frame
    assert Command.from_frame(frame) is command
    assert Command.from_frame(bytearray(frame)) is command
    assert Command.from_frame(memoryview(frame)) is command


def test_the_commands_are_exactly_the_table() -> None:
    assert {command.name: command.value for command in Command} == COMMAND_BYTES


@pytest.mark.parametrize("frame", [b"", b"\x00", b"\x08", b"\x16", b"\x01\x02", b"STEP"])
def test_an_unknown_command_frame_is_a_protocol_error(frame: bytes) -> None:
    """PROTOCOL.md §2: an unknown command is answered with ERROR; the error names the field,
    what was expected and what came."""
    with pytest.raises(ProtocolError) as raised:
        Command.from_frame(bytearray(frame))
    assert raised.value.field == "command"
    assert str(raised.value) == f"command: expected a command byte (PROTOCOL.md §2), got bytes {frame!r}"


@pytest.mark.parametrize(("number", "frame"), [
    (0, bytes(8)),
    (1, b"\x00" * 7 + b"\x01"),
    (0x0102030405060708, bytes(range(1, 9))),
    (2**64 - 1, b"\xff" * 8),
])
def test_a_client_sequence_number_is_an_8_byte_big_endian_frame(number: int, frame: bytes) -> None:
    """PROTOCOL.md §1: seq is a big-endian unsigned counter; clients send 8 bytes."""
    assert seq_bytes(number) == frame
    assert int_from_seq(frame) == number


@pytest.mark.parametrize("number", [-1, 2**64])
def test_a_sequence_number_outside_8_unsigned_bytes_is_refused(number: int) -> None:
    with pytest.raises(OverflowError):
        seq_bytes(number)


@pytest.mark.parametrize(("frame", "number"), [(b"\x05", 5), (b"\x01\x00", 256), (b"\x00\x00\x01\x00", 256)])
def test_a_sequence_frame_of_1_to_8_bytes_is_read_big_endian(frame: bytes, number: int) -> None:
    """PROTOCOL.md §1: 1 to 8 bytes (a broker's or another client's counter may be shorter)."""
    assert int_from_seq(frame) == number


# =========================================================================== §3.3 replies


def _observation() -> Observation:
    return Observation(rich_state(), -1.5, True, {"end_reason": "AgentStatus.Success"})


def test_a_reply_body_is_status_observation_message_code() -> None:
    """PROTOCOL.md §3.3: ``[status, observation, message, code]``; the observation in
    compact form with its state packed on its own, the code as its string."""
    observation = _observation()
    body = encode_reply(GameStatus.BAD_REQUEST, observation, {"message": "no"}, ErrorCode.NOT_JOINED)
    assert unpack(body) == [400, [pack_state(observation.state), -1.5, True, {"end_reason": "AgentStatus.Success"}],
                            {"message": "no"}, "NOT_JOINED"]
    assert unpack(encode_reply(GameStatus.OK)) == [200, None, None, None]
    assert unpack(encode_reply(GameStatus.OK, None, "text", "CUSTOM")) == [200, None, "text", "CUSTOM"]


@pytest.mark.parametrize("status", list(GameStatus))
def test_a_reply_round_trips(status: GameStatus) -> None:
    observation = _observation()
    decoded = decode_reply(encode_reply(status, observation, {"max_steps": 10}, ErrorCode.MALFORMED))
    assert decoded == ReplyBody(status, observation, {"max_steps": 10}, ErrorCode.MALFORMED)
    assert decoded.status is status and decoded.code is ErrorCode.MALFORMED


@pytest.mark.parametrize(("message", "code", "decoded_code"), [
    (None, None, None),
    ("a string", "SEAT_RELEASED", ErrorCode.SEAT_RELEASED),
    ({"message": "m", "reason": "r"}, "FROM_A_NEWER_SERVER", "FROM_A_NEWER_SERVER"),
])
def test_a_reply_without_observation_decodes_its_message_and_code(
    message: Any, code: str | None, decoded_code: ErrorCode | str | None
) -> None:
    """message: a map, a string or nil; code: nil, a known ErrorCode, or (from a newer
    server) an unknown code kept as its string."""
    decoded = decode_reply(pack([201, None, message, code]))
    assert decoded == ReplyBody(GameStatus.CREATED, None, message, decoded_code)
    assert type(decoded.code) is type(decoded_code)


BAD_REPLIES: list[tuple[Any, str]] = [
    (5, "reply: expected [status, observation, message, code], got int 5"),
    ("abcd", "reply: expected [status, observation, message, code], got str 'abcd'"),
    ({"status": 200}, "reply: expected [status, observation, message, code], got dict {'status': 200}"),
    ([200, None, None], "reply: expected [status, observation, message, code], got list [200, None, None]"),
    ([200, None, None, None, None],
     "reply: expected [status, observation, message, code], got list [200, None, None, None, None]"),
    ([999, None, None, None], "reply.status: expected 200, 201, 202, 400 or 403, got int 999"),
    (["200", None, None, None], "reply.status: expected 200, 201, 202, 400 or 403, got str '200'"),
    ([200.0, None, None, None], "reply.status: expected 200, 201, 202, 400 or 403, got float 200.0"),
    ([[200], None, None, None], "reply.status: expected 200, 201, 202, 400 or 403, got list [200]"),
    ([None, None, None, None], "reply.status: expected 200, 201, 202, 400 or 403, got NoneType None"),
    ([200, None, [1], None], "reply.message: expected a map, a string or nil, got list [1]"),
    ([200, None, 5, None], "reply.message: expected a map, a string or nil, got int 5"),
    ([400, None, "m", 7], "reply.code: expected an error code or nil, got int 7"),
    ([400, None, "m", b"MALFORMED"], "reply.code: expected an error code or nil, got bytes b'MALFORMED'"),
]


@pytest.mark.parametrize(("value", "error"), BAD_REPLIES, ids=range(len(BAD_REPLIES)))
def test_a_malformed_reply_is_a_protocol_error_naming_the_field(value: Any, error: str) -> None:
    """A client never crashes on a bad reply: one ProtocolError saying what was wrong."""
    with pytest.raises(ProtocolError) as raised:
        decode_reply(pack(value))
    assert str(raised.value) == error


def test_a_malformed_observation_is_named_within_the_reply() -> None:
    """The observation's own checks apply (protocol/compact.py): a broken one is refused."""
    with pytest.raises(ProtocolError, match=r"^observation\.end: expected true or false, got int 1$"):
        decode_reply(pack([200, [pack_state(rich_state()), 0.0, 1, {}], None, None]))
