"""Where each env of a :class:`~agents.parallel.ParallelBaseAgent` sits, and what a reply
means for it.

Both faces of the client (NetSecGame's lock-step lists and the EnvPool-style send/collect)
read a reply the same way, so that a step collected late means what a ``make_step``
result means: :meth:`EnvSeats.settle` turns a :class:`~agents.inflight.Reply` into the
env's Observation or RequestFailure and updates the env's seat, world, game and
``last_error`` on the way (a JOIN's reply seats the env; a reply saying the seat is gone
unseats it, so a later join can take a new one).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from protocol import (
    PASS,
    Action,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    Observation,
    PassAction,
    ProtocolError,
    pack_action,
)

from .client import PROTOCOL_ACTIONS, message_dict, protocol_action_failure
from .connection import CLOSED, SEAT_GONE, Connection, RequestFailure, failure_of
from .inflight import Reply

__all__ = ["NOT_JOINED", "EnvSeats"]

_JOIN, _STEP, _RESET = Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame
_PASS_BODY = pack_action(PASS)

#: The failure of a request for an env that holds no seat.
NOT_JOINED = RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.NOT_JOINED, "this env has no seat: register() first")


@attrs.define(slots=True, eq=False)
class EnvSeats:
    """Per-env lists (index = env): the role, broker and game each env asks for, the seat,
    world and game it holds, its last failure and whether it is done."""

    roles: list[AgentRole]
    endpoints: list[str]
    join_games: list[str | None]          # asked for at every JOIN
    connections: list[Connection | None]
    logger: logging.Logger
    games: list[str | None] = attrs.field(init=False)   # where each env sits
    seats: list[str | None] = attrs.field(init=False)
    seat_frames: list[bytes | None] = attrs.field(init=False)
    worlds: list[str | None] = attrs.field(init=False)
    world_frames: list[bytes | None] = attrs.field(init=False)
    last_errors: list[RequestFailure | None] = attrs.field(init=False)
    done: list[bool] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        count = len(self.roles)
        self.games = list(self.join_games)
        self.seats, self.seat_frames = [None] * count, [None] * count
        self.worlds, self.world_frames = [None] * count, [None] * count
        self.last_errors = [None if connection is not None else
                            RequestFailure(None, CLOSED, f"cannot connect to {endpoint!r}")
                            for connection, endpoint in zip(self.connections, self.endpoints, strict=True)]
        self.done = [connection is None for connection in self.connections]

    # ------------------------------------------------------------------ requests
    def step_body(self, env: int, action: Action | PassAction | None) -> bytes | RequestFailure:
        """The STEP body of ``action`` for ``env``, or why it cannot be sent."""
        if self.seat_frames[env] is None:
            return NOT_JOINED
        if action is PASS:
            return _PASS_BODY
        if not isinstance(action, Action):
            return RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED,
                                  f"Data should be ONLY of type Action, got {type(action).__name__}")
        if action.action_type in PROTOCOL_ACTIONS:
            return protocol_action_failure(action)
        try:
            return pack_action(action)
        except ProtocolError as error:
            return RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED, str(error))

    def already_joined(self, env: int) -> RequestFailure:
        return RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.ALREADY_JOINED,
                              f"env {env} already holds seat {self.seats[env]}")

    # ------------------------------------------------------------------ replies
    def settle(self, env: int, reply: Reply) -> Observation | RequestFailure:
        """What ``reply`` means for ``env``: a JOIN's or RESET's Observation has the reply's
        message as ``info``; a step's is the game's, also for a FORBIDDEN one (as upstream;
        ``last_errors[env]`` then says why). ``done`` is left to the caller."""
        answer = reply.answer
        if isinstance(answer, RequestFailure):
            return self.fail(env, answer)
        observation = answer.observation
        command = reply.command
        if command == _STEP:
            if observation is None:
                return self.fail(env, failure_of(answer))
            self.last_errors[env] = None if answer.code is None else failure_of(answer)
            return observation
        if command == _JOIN:
            if answer.status is not GameStatus.CREATED or observation is None:
                return self.fail(env, failure_of(answer))
            return self._seat(env, reply.seq, reply.seat, answer.status, observation, message_dict(answer))
        if command == _RESET and answer.status is GameStatus.RESET_DONE and observation is not None:
            self.last_errors[env] = None
            state, reward, end, _ = observation
            return Observation(state, reward, end, message_dict(answer))
        return self.fail(env, failure_of(answer))

    def _seat(self, env: int, seq: bytes, seat_frame: bytes, status: GameStatus, observation: Observation,
              info: dict[str, Any]) -> Observation | RequestFailure:
        seat = info.get("seat") if isinstance(info.get("seat"), str) else None
        if not seat_frame:
            if seat is None:
                return self.fail(env, RequestFailure(status, ErrorCode.MALFORMED, "the join reply named no seat"))
            seat_frame = seat.encode()
        world = info.get("world") if isinstance(info.get("world"), str) else None
        game = info.get("game") if isinstance(info.get("game"), str) else None
        self.seats[env] = seat if seat is not None else seat_frame.decode(errors="replace")
        self.seat_frames[env] = seat_frame
        self.worlds[env] = world
        self.world_frames[env] = world.encode() if world else None
        self.games[env] = game or self.join_games[env]
        self.last_errors[env] = None
        connection = self.connections[env]
        assert connection is not None
        connection.adopt_seat(seat_frame, seq)
        state, reward, end, _ = observation
        return Observation(state, reward, end, info)

    def fail(self, env: int, failure: RequestFailure) -> RequestFailure:
        """Keep ``failure`` as the env's last error; a seat the server says is gone is forgotten."""
        self.last_errors[env] = failure
        self.logger.debug("env %d: %s", env, failure)
        if failure.code in SEAT_GONE and self.seat_frames[env] is not None and failure.status is not None:
            self.logger.info("env %d: seat %s is gone: register() to take a new one", env, self.seats[env])
            self.unseat(env)
        return failure

    def unseat(self, env: int) -> None:
        self.seats[env] = self.seat_frames[env] = None
