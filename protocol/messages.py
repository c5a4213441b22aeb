"""Frames of the wire protocol (PROTOCOL.md): commands, the protocol frame, reply bodies.

Routing frames are plain bytes so the broker never decodes a step; bodies are msgpack.
This module builds and checks both, and turns every malformed input into a
ProtocolError naming what was wrong.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from .compact import observation_from_compact, observation_to_compact, pack, unpack
from .constants import ErrorCode
from .enums import GameStatus
from .errors import ProtocolError, describe
from .state import Observation

__all__ = [
    "MAX_SEAT_BYTES",
    "PROTOCOL_FRAME",
    "Command",
    "ReplyBody",
    "decode_reply",
    "encode_reply",
    "int_from_seq",
    "seq_bytes",
]

#: First frame of every message: protocol name and version.
PROTOCOL_FRAME = b"ARENA1"
MAX_SEAT_BYTES = 64


class Command(enum.IntEnum):
    """One-byte commands (PROTOCOL.md §2)."""

    JOIN = 1
    STEP = 2
    BATCH = 3
    RESET = 4
    QUIT = 5
    STATUS = 6
    ERROR = 7
    READY = 16
    HEARTBEAT = 17
    DISCONNECT = 18
    RELEASE = 19
    REQUEST = 20
    REPLY = 21

    @property
    def frame(self) -> bytes:
        return _FRAMES[self]

    @classmethod
    def from_frame(cls, frame: bytes) -> Command:
        command = _BY_FRAME.get(bytes(frame))
        if command is None:
            raise ProtocolError("command", "a command byte (PROTOCOL.md §2)", describe(bytes(frame)))
        return command


_FRAMES = {command: bytes([command.value]) for command in Command}
_BY_FRAME = {frame: command for command, frame in _FRAMES.items()}

def seq_bytes(number: int) -> bytes:
    """A client's sequence number as its 8-byte frame."""
    return number.to_bytes(8, "big")


def int_from_seq(frame: bytes) -> int:
    return int.from_bytes(frame, "big")


@attrs.frozen
class ReplyBody:
    """A decoded reply: ``[status, observation, message, code]``."""

    status: GameStatus
    observation: Observation | None
    message: dict[str, Any] | str | None
    code: ErrorCode | str | None


def encode_reply(status: GameStatus, observation: Observation | None = None,
                 message: dict[str, Any] | str | None = None, code: ErrorCode | str | None = None) -> bytes:
    return pack([status.value, None if observation is None else observation_to_compact(observation),
                 message, None if code is None else str(code)])


_STATUS_BY_VALUE = {status.value: status for status in GameStatus}


def decode_reply(body: bytes) -> ReplyBody:
    value = unpack(body)
    if not isinstance(value, list) or len(value) != 4:
        raise ProtocolError("reply", "[status, observation, message, code]", describe(value))
    status_value, observation, message, code = value
    status = _STATUS_BY_VALUE.get(status_value) if isinstance(status_value, int) else None
    if status is None:
        raise ProtocolError("reply.status", "200, 201, 202, 400 or 403", describe(status_value))
    if message is not None and not isinstance(message, (dict, str)):
        raise ProtocolError("reply.message", "a map, a string or nil", describe(message))
    if code is not None and not isinstance(code, str):
        raise ProtocolError("reply.code", "an error code or nil", describe(code))
    decoded_code: ErrorCode | str | None = code
    if code is not None:
        try:
            decoded_code = ErrorCode(code)
        except ValueError:
            decoded_code = code
    return ReplyBody(status, None if observation is None else observation_from_compact(observation),
                     message, decoded_code)
