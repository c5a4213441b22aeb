"""Protocol constants: version, error codes, limits. One small module, as in MDP.py."""

from __future__ import annotations

import enum

__all__ = ["MAX_BODY_BYTES", "MAX_SEQ_BYTES", "PROTOCOL_VERSION", "ErrorCode"]

#: Version carried in every request frame; bumped on any incompatible change.
PROTOCOL_VERSION = 1

#: Largest request body a server accepts (bytes).
MAX_BODY_BYTES = 1 << 20

#: Longest sequence frame: a big-endian unsigned counter of 1 to 8 bytes, growing per seat.
MAX_SEQ_BYTES = 8


class ErrorCode(str, enum.Enum):
    """Why a request got BAD_REQUEST (or FORBIDDEN); carried beside the message."""

    MALFORMED = "MALFORMED"                  # the request could not be parsed or validated
    NOT_JOINED = "NOT_JOINED"                # the seat is not in this game (never joined, or left)
    ALREADY_JOINED = "ALREADY_JOINED"        # a second JoinGame from the same seat
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"    # the task does not admit this role
    GAME_FULL = "GAME_FULL"                  # every seat of this role is taken
    EPISODE_ENDED = "EPISODE_ENDED"          # a game action after the agent's episode ended
    HOLD_TIMEOUT = "HOLD_TIMEOUT"            # a held reply waited longer than hold_timeout
    SEED_CONFLICT = "SEED_CONFLICT"          # agents asked to reset with different seeds
    TOPOLOGY_CONFLICT = "TOPOLOGY_CONFLICT"  # agents disagreed on randomize_topology
    SEAT_RELEASED = "SEAT_RELEASED"          # the seat was freed (quit, lease, or hold expiry)
    BUSY = "BUSY"                            # the seat already has a request in flight
    UNKNOWN_TASK = "UNKNOWN_TASK"            # no world serves the task a JOIN named
    UNKNOWN_SEAT = "UNKNOWN_SEAT"            # the seat is not known to the broker
    NOT_YOUR_SEAT = "NOT_YOUR_SEAT"          # the seat belongs to another client
    NO_WORLD = "NO_WORLD"                    # no live world can take a new game
    GAME_TASK_MISMATCH = "GAME_TASK_MISMATCH"  # the named game plays another task
    GAME_LOST = "GAME_LOST"                  # the seat's world died; its game is gone
    BAD_FRAMES = "BAD_FRAMES"                # wrong frame count or frame contents
    BAD_VERSION = "BAD_VERSION"              # another protocol, or another version of it
    STALE_REQUEST = "STALE_REQUEST"          # a sequence number below the seat's last answered one
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"  # the client has too many requests in flight (a flood)

    def __str__(self) -> str:
        return self.value
