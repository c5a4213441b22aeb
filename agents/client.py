"""BaseAgent: NetSecGame's client API, played through a netsec-arena broker.

The methods, their arguments and their results are NetSecGame's ``BaseAgent``'s
(reference netsecgame.md §10.1): ``register()``, ``make_step(action)``,
``request_game_reset(...)`` return an :class:`~protocol.Observation`, or None on
failure, and failures never raise. What differs: the agent talks to the broker over
one ZeroMQ DEALER socket (PROTOCOL.md), names its task, role and optionally a game
at registration, gets a *seat* in return, keeps the reason of a failure in
``last_error``, never waits longer than ``timeout`` for a reply, and
``terminate_connection()`` tells the game it left (QUIT) before closing.

Usage::

    from agents import BaseAgent, generate_valid_actions
    from protocol import AgentRole

    with BaseAgent("tcp://127.0.0.1:5570", AgentRole.Attacker, game="duel") as agent:
        observation = agent.register()
        while observation is not None and not observation.end:
            action = sorted(generate_valid_actions(observation.state), key=str)[0]
            observation = agent.make_step(action)
        if observation is None:
            print("failed:", agent.last_error)
        observation = agent.request_game_reset(seed=7)

Nobody listening is a failure like any other:

>>> agent = BaseAgent("tcp://127.0.0.1:1", "Attacker", timeout=0.05)
>>> agent.register() is None, agent.last_error.code
(True, 'TIMEOUT')
>>> agent.terminate_connection()
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from protocol import (
    PASS,
    PROTOCOL_FRAME,
    Action,
    ActionType,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    Observation,
    PassAction,
    ProtocolError,
    ReplyBody,
    pack,
    pack_action,
)
from protocol.security import CurveClient

from .connection import (
    CLOSED,
    NIL_BODY,
    RETRY_INTERVAL,
    SEAT_GONE,
    TIMEOUT,
    Connection,
    RequestFailure,
    Silence,
    await_replies,
    failure_of,
    quit_join_body,
    request_key,
)

__all__ = ["QUIT_TIMEOUT", "BaseAgent", "RequestFailure"]

#: Longest wait (seconds) for the answer to the QUIT that ``terminate_connection`` sends.
QUIT_TIMEOUT = 5.0

_JOIN, _STEP, _RESET, _QUIT = Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame, Command.QUIT.frame
_INSTEAD = {ActionType.JoinGame: "register()", ActionType.ResetGame: "request_game_reset()",
            ActionType.QuitGame: "terminate_connection()"}
#: Actions that are requests of their own (JOIN, RESET, QUIT), not steps.
PROTOCOL_ACTIONS = frozenset(_INSTEAD)
_PROTOCOL_ACTIONS = PROTOCOL_ACTIONS
_TOPOLOGY_WITHOUT_SEED = "Topology randomization without seed is not supported."


def as_role(role: AgentRole | str) -> AgentRole:
    """An AgentRole from a role or its name (any case); ValueError otherwise."""
    return role if isinstance(role, AgentRole) else AgentRole.from_string(role)


def check_reset_arguments(randomize_topology: bool, seed: int | None) -> None:
    if randomize_topology and seed is None:
        raise ValueError(_TOPOLOGY_WITHOUT_SEED)


def reset_body(request_trajectory: bool, randomize_topology: bool, seed: int | None) -> bytes:
    return pack([bool(request_trajectory), bool(randomize_topology), seed])


def join_body(task: str | None, role: AgentRole, game: str | None, name: str, *, retry: bool = False,
              catalog: bool = False) -> bytes:
    """A JOIN body; ``retry`` marks a resend, which a restarted broker holds until the worlds
    that may host its seat have registered again; ``catalog`` asks for the game's catalog in
    the join and reset replies (PROTOCOL.md §3.1)."""
    body: dict[str, Any] = {"task": task, "role": role.value, "game": game, "name": name}
    if retry:
        body["retry"] = True
    if catalog:
        body["catalog"] = True
    return pack(body)


def resend_frames(frames: list[bytes], join: tuple[str | None, AgentRole, str | None, str, bool] | None,
                  ) -> list[bytes]:
    """A request's frames for a resend: the same, but a JOIN says it is one."""
    if join is None:
        return frames
    task, role, game, name, catalog = join
    return [*frames[:-1], join_body(task, role, game, name, retry=True, catalog=catalog)]


def message_dict(reply: ReplyBody) -> dict[str, Any]:
    """A reply's message as the ``info`` of the Observation upstream returns."""
    message = reply.message
    if isinstance(message, dict):
        return message
    return {} if message is None else {"message": message}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def protocol_action_failure(action: Action) -> RequestFailure:
    """Why a JoinGame, ResetGame or QuitGame cannot be sent as a step."""
    return RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED,
                          f"{action.action_type} is not a game action: use {_INSTEAD[action.action_type]}")


class BaseAgent:
    """One agent, one seat, one DEALER socket to a broker frontend.

    ``role`` is an :class:`~protocol.AgentRole` or its name. ``task`` names the broker's
    task (None: its only or ``default`` task), ``game`` a named game to join (None: any
    game of the task waiting for this role, else a new one), ``name`` the agent's name
    in the game (default: the class name, as upstream). ``timeout`` bounds every wait
    for a reply, in seconds (a join is held until its game starts, so allow for that):
    the deadline after which the agent gives up. Without a reply for ``retry_interval``
    seconds the request is sent again with the same sequence number (a broker restart
    loses what it was forwarding; the world answers a resend from its reply cache, so no
    step runs twice). ``curve``: the agent's CURVE keys, for a broker with CURVE on
    (:class:`~protocol.CurveClient`). ``context``: a ``zmq.Context`` (default: the process's shared
    instance). Like its socket, an agent belongs to one thread at a time.

    A wait without a reply for 1 s is said once (DESIGN §7), long before the timeout: a
    WARNING when nothing answers at the address, INFO when the broker answers and the
    game holds the request (a join waiting for its players); set ``on_silence`` to a
    callable taking a :class:`~agents.connection.Silence` to say it your way instead.
    A JOIN whose reply has not come when the agent closes (interrupted, or timed out)
    is given up (a QUIT naming the JOIN, PROTOCOL.md §3.2), so no seat is left behind;
    ``register()`` after a timed-out one sends that JOIN again, for the same seat.
    """

    def __init__(self, endpoint: str, role: AgentRole | str, *, task: str | None = None, game: str | None = None,
                 name: str | None = None, timeout: float = 120.0, retry_interval: float = RETRY_INTERVAL,
                 curve: CurveClient | None = None, context: zmq.Context | None = None,
                 catalog: bool = False) -> None:
        if not timeout > 0 or not retry_interval > 0:
            raise ValueError(f"timeout and retry_interval must be positive, got {timeout!r}, {retry_interval!r}")
        #: Ask for the game's catalog (``info["catalog"]`` of join and reset replies).
        self.want_catalog = bool(catalog)
        self._role = as_role(role)
        self._logger = logging.getLogger(type(self).__name__)
        self.endpoint = endpoint
        self.name = name or type(self).__name__
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self._task = task
        self._game = game
        self._join_game = game  # asked for at every JOIN (the game property says where we sit)
        self._seat: str | None = None
        self._seat_frame: bytes | None = None
        self._world: str | None = None
        #: Why the last request failed (or was refused); None after a success.
        self.last_error: RequestFailure | None = None
        #: Called once per wait that has had no reply for 1 s (None: logged).
        self.on_silence: Callable[[Silence], None] | None = None
        #: The seq of a JOIN sent whose reply never came (timed out or interrupted): its game
        #: may still hold a seat for it.
        self._join_seq: bytes | None = None
        self._connection: Connection | None = None
        try:
            self._connection = Connection(endpoint, context, curve=curve)
        except zmq.ZMQError as error:
            self.last_error = RequestFailure(None, CLOSED, f"cannot connect to {endpoint!r}: {error}")
            self._logger.error("%s", self.last_error.message)

    # ------------------------------------------------------------------ properties
    @property
    def role(self) -> AgentRole:
        return self._role

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def socket(self) -> zmq.Socket | None:
        """The DEALER socket; None once the connection is terminated (as upstream)."""
        return None if self._connection is None else self._connection.socket

    @property
    def seat(self) -> str | None:
        """The seat id the broker issued at registration (None before, and after quitting)."""
        return self._seat

    @property
    def world(self) -> str | None:
        """The world hosting the seat's game."""
        return self._world

    @property
    def game(self) -> str | None:
        """The game's name: the one asked for, or the one the broker chose."""
        return self._game

    @property
    def task(self) -> str | None:
        return self._task

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._role.value} seat={self._seat} at {self.endpoint}>"

    # ------------------------------------------------------------------ the API
    def register(self) -> Observation | None:
        """JoinGame: take a seat; the Observation's ``info`` is the reply's message
        (``max_steps``, ``goal_description``, ``configuration_hash``, ``seat``, ``world``,
        ``game``, ``task``, ...). Held by the game until it starts (bounded by timeout)."""
        if self._seat_frame is not None:
            return self._fail(RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.ALREADY_JOINED,
                                             f"this agent already holds seat {self._seat}"))
        body = join_body(self._task, self._role, self._join_game, self.name, catalog=self.want_catalog)
        # A JOIN whose reply never came is sent again with its seq: it goes to the seat it took.
        answer = self._request(_JOIN, b"", body, self.timeout, seq=self._join_seq)
        if answer is None:
            return None
        seq, seat_frame, reply = answer
        observation = reply.observation
        if reply.status is not GameStatus.CREATED or observation is None:
            return self._fail(failure_of(reply))
        info = message_dict(reply)
        seat = _text(info.get("seat"))
        if not seat_frame:
            if seat is None:
                return self._fail(RequestFailure(reply.status, ErrorCode.MALFORMED,
                                                 "the join reply named no seat"))
            seat_frame = seat.encode()
        self._seat = seat if seat is not None else seat_frame.decode(errors="replace")
        self._seat_frame = seat_frame
        self._world = _text(info.get("world"))
        self._game = _text(info.get("game")) or self._join_game
        self._task = _text(info.get("task")) or self._task
        assert self._connection is not None
        self._connection.adopt_seat(seat_frame, seq)
        self._logger.info("registered as %s: seat %s, game %s, world %s", self._role.value, self._seat,
                          self._game, self._world)
        return Observation(observation.state, observation.reward, observation.end, info)

    def make_step(self, action: Action | PassAction) -> Observation | None:
        """Play one game action, or :data:`~protocol.PASS` (a counted step that changes
        nothing). Returns the Observation, also for a FORBIDDEN reply (an action after the
        episode ended, as upstream; ``last_error`` then says why), or None when the reply
        carries none (BAD_REQUEST, timeout, ...)."""
        if action is not PASS and not isinstance(action, Action):
            raise ValueError("Incorrect data type! Data should be ONLY of type Action")
        seat = self._seat_frame
        if seat is None:
            return self._not_joined()
        if isinstance(action, Action) and action.action_type in _PROTOCOL_ACTIONS:
            return self._fail(protocol_action_failure(action))
        try:
            body = pack_action(action)
        except ProtocolError as error:
            return self._fail(RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED, str(error)))
        answer = self._request(_STEP, seat, body, self.timeout)
        if answer is None:
            return None
        reply = answer[2]
        observation = reply.observation
        if observation is None:
            return self._fail(failure_of(reply))
        if reply.code is not None:
            self.last_error = failure_of(reply)
            self._logger.debug("step refused: %s", self.last_error)
        return observation

    def request_game_reset(self, request_trajectory: bool = False, randomize_topology: bool = False,
                           seed: int | None = None) -> Observation | None:
        """ResetGame: start a new episode (held until every agent of the game asked).
        The Observation's ``info`` is the reply's message, with ``last_trajectory`` when
        ``request_trajectory``. Topology randomisation needs a seed (ValueError)."""
        check_reset_arguments(randomize_topology, seed)
        seat = self._seat_frame
        if seat is None:
            return self._not_joined()
        answer = self._request(_RESET, seat, reset_body(request_trajectory, randomize_topology, seed), self.timeout)
        if answer is None:
            return None
        reply = answer[2]
        observation = reply.observation
        if reply.status is not GameStatus.RESET_DONE or observation is None:
            return self._fail(failure_of(reply))
        return Observation(observation.state, observation.reward, observation.end, message_dict(reply))

    def terminate_connection(self) -> None:
        """Leave the game (QUIT, answer awaited at most ``min(timeout, QUIT_TIMEOUT)``
        seconds) and close the socket; a JOIN still unanswered (``register()`` interrupted
        or timed out) is given up the same way. Idempotent."""
        connection = self._connection
        if connection is None or connection.closed:
            return
        try:
            seat = self._seat_frame
            if seat is not None:
                answer = self._request(_QUIT, seat, NIL_BODY, min(self.timeout, QUIT_TIMEOUT))
                if answer is not None and answer[2].status is not GameStatus.OK:
                    self._fail(failure_of(answer[2]))
            elif self._join_seq is not None and connection.reached():  # else the JOIN never got there
                self._give_up_join(self._join_seq)
        finally:
            connection.close()
            self._seat = self._seat_frame = None
            self._join_seq = None

    def _give_up_join(self, join_seq: bytes) -> None:
        """QUIT the seat the JOIN sent with ``join_seq`` may hold, not knowing it yet."""
        answer = self._request(_QUIT, b"", quit_join_body(join_seq), min(self.timeout, QUIT_TIMEOUT))
        self._join_seq = None
        if answer is None:
            return
        reply = answer[2]
        if reply.status is not GameStatus.OK and reply.code not in SEAT_GONE:  # gone is what we wanted
            self._fail(failure_of(reply))
        else:
            self._logger.info("the join still in flight was given up: %s", failure_of(reply).message)

    close = terminate_connection

    def __enter__(self) -> BaseAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate_connection()

    def __del__(self) -> None:
        # As upstream, the socket closes on garbage collection (without a QUIT: no I/O here).
        connection = getattr(self, "_connection", None)
        if connection is not None:
            with contextlib.suppress(Exception):  # interpreter shutdown
                connection.close()

    # ------------------------------------------------------------------ internals
    def _request(self, command: bytes, seat: bytes, body: bytes, timeout: float,
                 seq: bytes | None = None) -> tuple[bytes, bytes, ReplyBody] | None:
        """Send one request (with ``seq``: the seq of an earlier JOIN, sent again) and wait
        for its reply: (seq, reply seat frame, reply), or None with ``last_error`` set."""
        connection = self._connection
        if connection is None or connection.closed:
            return self._fail(RequestFailure(None, CLOSED, "the connection was terminated"))
        if seq is None:
            seq = connection.next_seq(seat)
        frames = [PROTOCOL_FRAME, command, seat, seq, body]
        failure = connection.send(frames)
        if failure is not None:
            return self._fail(failure)
        key = request_key(command, seat, seq)
        join = (self._task, self._role, self._join_game, self.name, self.want_catalog) if command == _JOIN else None
        if join is not None:
            self._join_seq = seq  # until its reply comes: closing gives it up
        answers: list[tuple[bytes, ReplyBody | RequestFailure]] = []
        resends = await_replies({connection: {key: None}}, time.monotonic() + timeout,
                                lambda _tag, reply_seat, reply: answers.append((reply_seat, reply)), self._logger,
                                resend=lambda _key, _tag: resend_frames(frames, join),
                                retry_interval=self.retry_interval,
                                on_silence=lambda link, waited: self._silence(link, waited, timeout, command))
        if answers and join is not None:
            self._join_seq = None
        if not answers:
            what = Command.from_frame(command).name + (f" of seat {self._seat}" if seat else "")
            return self._fail(RequestFailure(None, TIMEOUT, f"no reply within {timeout:g} s from {self.endpoint} "
                                             f"({what}, sent {resends + 1} times){connection.handshake_note()}"))
        reply_seat, reply = answers[0]
        if isinstance(reply, RequestFailure):
            return self._fail(reply)
        self.last_error = None
        return seq, reply_seat, reply

    def _silence(self, connection: Connection, waited: float, timeout: float, command: bytes) -> None:
        """Say once that a wait has had no reply yet, and whether anything answers."""
        up, why = connection.link()
        notice = Silence(connection.endpoint, waited, timeout, up, why, (Command.from_frame(command).name,))
        if self.on_silence is not None:
            self.on_silence(notice)
        else:
            self._logger.log(logging.INFO if up else logging.WARNING, "%s", notice)

    def _not_joined(self) -> None:
        return self._fail(RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.NOT_JOINED,
                                         "this agent has no seat: register() first"))

    def _fail(self, failure: RequestFailure) -> None:
        self.last_error = failure
        self._logger.warning("%s", failure)
        if failure.code in SEAT_GONE and self._seat_frame is not None and failure.status is not None:
            self._logger.info("seat %s is gone: register() to take a new one", self._seat)
            self._seat = self._seat_frame = None
        return None
