"""ParallelBaseAgent: many environments (seats) played together, pipelined and batched.

NetSecGame's vectorised client (reference netsecgame.md §10.2) over the netsec-arena
broker: one seat per environment, **one DEALER socket per distinct broker address**
(``endpoints`` is one address, or one per env to shard envs across brokers), every
env's request sent before any reply is read, and with ``batched`` the steps and resets
of the seats one world hosts travel in one BATCH message each way (PROTOCOL.md §1).
Results are the same batched or not.

Unlike upstream's "single-env mode", every method takes and returns **lists**, one entry
per env, even with ``num_envs == 1``.

Usage::

    import random
    from agents import ParallelBaseAgent, generate_valid_actions
    from protocol import AgentRole

    rng = random.Random(42)
    with ParallelBaseAgent("tcp://127.0.0.1:5570", AgentRole.Attacker, num_envs=64) as envs:
        observations = envs.register()
        while not envs.all_done:
            actions = [None if done else rng.choice(sorted(generate_valid_actions(obs.state), key=str))
                       for obs, done in zip(observations, envs.done_mask)]
            for i, result in enumerate(envs.make_step(actions)):
                if result is not None:          # None: done before (not sent) or failed
                    observations[i] = result
        observations = envs.request_game_reset(seed=1)

An env is *done* (``done_mask[i]``) when its last result was None or ended its episode;
``make_step`` does not send to done envs (their entries may be anything, e.g. None) and
returns None for them; ``request_game_reset`` resets every registered env and clears
the mask of those that reset.

A game holds the reply to the step that ends one seat's episode until every seat of
that game ended theirs (PROTOCOL.md §4). Envs of one agent sharing a multi-seat game
therefore wait for each other within one ``make_step``; seat them in separate games
(the default placement does) or give each player its own client.

>>> envs = ParallelBaseAgent("tcp://127.0.0.1:1", "Attacker", 2, timeout=0.05)
>>> envs.register(), envs.done_mask, envs.last_errors[0].code
([None, None], [True, True], 'TIMEOUT')
>>> envs.terminate_connection()
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import zmq

from protocol import (
    PASS,
    PROTOCOL_FRAME,
    Action,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    Observation,
    PassAction,
    ProtocolError,
    ReplyBody,
    pack_action,
)
from protocol.security import CurveClient

from .client import (
    PROTOCOL_ACTIONS,
    QUIT_TIMEOUT,
    as_role,
    check_reset_arguments,
    join_body,
    message_dict,
    protocol_action_failure,
    reset_body,
)
from .connection import (
    CLOSED,
    NIL_BODY,
    RETRY_INTERVAL,
    SEAT_GONE,
    TIMEOUT,
    Connection,
    Key,
    RequestFailure,
    await_replies,
    failure_of,
)

__all__ = ["ParallelBaseAgent"]

_JOIN, _STEP, _BATCH, _RESET, _QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                       Command.RESET.frame, Command.QUIT.frame)
_BATCHABLE = frozenset({_STEP, _RESET})

#: What one exchange gives per env: (request seq, reply seat frame, reply or failure).
_Answer = tuple[bytes, bytes, ReplyBody | RequestFailure]


def _per_env(value: Any, num_envs: int, what: str) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * num_envs
    values = list(value)
    if len(values) == 1:
        return values * num_envs
    if len(values) != num_envs:
        raise ValueError(f"{what} length ({len(values)}) must be 1 (broadcast) or match num_envs ({num_envs})")
    return values


class ParallelBaseAgent:
    """``num_envs`` seats of one role, played in lock-step over one socket per broker.

    ``endpoints``: a broker frontend address, or one per env. ``task``: the task name
    (None: the broker's only or ``default`` task). ``game``: None, one game name for
    every env, or a list of per-env names (None entries allowed). ``name``: the agents'
    name in their games (default: the class name). ``batched``: group each call's
    steps and resets per (broker, world) into BATCH messages. ``timeout`` bounds each
    call's wait for all its replies, in seconds; requests unanswered for ``retry_interval``
    seconds are sent again, one message each, with their sequence numbers (see
    :class:`~agents.client.BaseAgent`). ``curve``: CURVE keys for brokers with CURVE on.
    """

    def __init__(self, endpoints: str | Sequence[str], role: AgentRole | str, num_envs: int, *,
                 task: str | None = None, game: str | Sequence[str | None] | None = None,
                 name: str | None = None, batched: bool = True, timeout: float = 120.0,
                 retry_interval: float = RETRY_INTERVAL, curve: CurveClient | None = None,
                 context: zmq.Context | None = None, catalog: bool = False) -> None:
        #: Ask for each game's catalog (``info["catalog"]`` of join and reset replies).
        self.want_catalog = bool(catalog)
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if not timeout > 0 or not retry_interval > 0:
            raise ValueError(f"timeout and retry_interval must be positive, got {timeout!r}, {retry_interval!r}")
        self._num_envs = num_envs
        self._role = as_role(role)
        self._logger = logging.getLogger(type(self).__name__)
        self._endpoints: list[str] = _per_env(endpoints, num_envs, "endpoints")
        self._task = task
        self._join_games: list[str | None] = _per_env(game, num_envs, "game")  # asked for at every JOIN
        self._games = list(self._join_games)  # where each env sits
        self.name = name or type(self).__name__
        self.batched = bool(batched)
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self._seats: list[str | None] = [None] * num_envs
        self._seat_frames: list[bytes | None] = [None] * num_envs
        self._worlds: list[str | None] = [None] * num_envs
        self._world_frames: list[bytes | None] = [None] * num_envs
        self._last_errors: list[RequestFailure | None] = [None] * num_envs
        self._connections: dict[str, Connection | None] = {}
        for endpoint in dict.fromkeys(self._endpoints):
            try:
                self._connections[endpoint] = Connection(endpoint, context, curve=curve)
            except zmq.ZMQError as error:
                self._logger.warning("cannot connect to %r: %s", endpoint, error)
                self._connections[endpoint] = None
        self._env_connections: list[Connection | None] = [self._connections[e] for e in self._endpoints]
        for env, connection in enumerate(self._env_connections):
            if connection is None:
                self._last_errors[env] = RequestFailure(None, CLOSED, f"cannot connect to {self._endpoints[env]!r}")
        self._done_mask: list[bool] = [connection is None for connection in self._env_connections]
        self._terminated = False

    # ------------------------------------------------------------------ properties
    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def done_mask(self) -> list[bool]:
        """Per env: done (its last result was None or ended its episode). A copy."""
        return list(self._done_mask)

    @property
    def all_done(self) -> bool:
        return all(self._done_mask)

    @property
    def connected(self) -> list[bool]:
        """Per env: holds a seat."""
        return [seat is not None for seat in self._seat_frames]

    @property
    def last_errors(self) -> list[RequestFailure | None]:
        """Per env: why its last request failed or was refused (None after a success)."""
        return list(self._last_errors)

    @property
    def last_error(self) -> RequestFailure | None:
        """The first env's entry of ``last_errors`` that is set, if any."""
        return next((error for error in self._last_errors if error is not None), None)

    @property
    def role(self) -> AgentRole:
        return self._role

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def seats(self) -> list[str | None]:
        return list(self._seats)

    @property
    def worlds(self) -> list[str | None]:
        return list(self._worlds)

    @property
    def games(self) -> list[str | None]:
        return list(self._games)

    @property
    def endpoints(self) -> list[str]:
        """Per env: its broker's address."""
        return list(self._endpoints)

    @property
    def sockets(self) -> list[zmq.Socket | None]:
        """One DEALER socket per distinct broker address (None once terminated)."""
        return [None if c is None else c.socket for c in self._connections.values()]

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._role.value} x{self._num_envs} over "
                f"{len(self._connections)} broker(s), {sum(self.connected)} seated>")

    # ------------------------------------------------------------------ the API
    def register(self) -> list[Observation | None]:
        """JoinGame for every env without a seat: all JOINs are sent, then the replies
        awaited together (a game may hold a join until its other players arrive). Each
        Observation's ``info`` is its reply's message. Afterwards ``done_mask`` is
        ``[result is None]``."""
        results: list[Observation | None] = [None] * self._num_envs
        bodies: dict[int, bytes] = {}
        packed: dict[str | None, bytes] = {}
        for env in range(self._num_envs):
            if self._seat_frames[env] is not None:
                self._fail(env, RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.ALREADY_JOINED,
                                               f"env {env} already holds seat {self._seats[env]}"))
            elif self._env_connections[env] is not None:
                game = self._join_games[env]
                if game not in packed:
                    packed[game] = join_body(self._task, self._role, game, self.name, catalog=self.want_catalog)
                bodies[env] = packed[game]
        for env, (seq, seat_frame, reply) in self._exchange(_JOIN, bodies, self.timeout).items():
            if isinstance(reply, RequestFailure):
                self._fail(env, reply)
            elif reply.status is not GameStatus.CREATED or reply.observation is None:
                self._fail(env, failure_of(reply))
            else:
                results[env] = self._seat_env(env, seq, seat_frame, reply)
        self._done_mask = [result is None for result in results]
        self._log_failures("register", [env for env in range(self._num_envs) if results[env] is None],
                           self._num_envs)
        return results

    def make_step(self, actions: Sequence[Action | PassAction | None]) -> list[Observation | None]:
        """One action per env (exactly ``num_envs``, else ValueError); :data:`~protocol.PASS`
        is a counted step that changes nothing, None is no step (a live env's None is a
        failure, not sent). Done envs are not sent and give None; a live env's Observation
        comes back (also a FORBIDDEN one, as upstream), or None on failure. An env whose
        result is None or ends its episode becomes done."""
        count = self._num_envs
        if isinstance(actions, Action):
            raise ValueError(f"Expected {count} actions, got one Action (make_step always takes a list)")
        actions = list(actions)
        if len(actions) != count:
            raise ValueError(f"Expected {count} actions, got {len(actions)}")
        results: list[Observation | None] = [None] * count
        done = self._done_mask
        seats = self._seat_frames
        bodies: dict[int, bytes] = {}
        for env, action in enumerate(actions):
            if done[env]:
                continue
            if seats[env] is None:
                self._fail(env, _NOT_JOINED)
            elif action is PASS:
                bodies[env] = pack_action(PASS)
            elif not isinstance(action, Action):
                self._fail(env, RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED,
                                               f"Data should be ONLY of type Action, got {type(action).__name__}"))
            elif action.action_type in PROTOCOL_ACTIONS:
                self._fail(env, protocol_action_failure(action))
            else:
                try:
                    bodies[env] = pack_action(action)
                except ProtocolError as error:
                    self._fail(env, RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.MALFORMED, str(error)))
        sent = [env for env in range(count) if not done[env]]
        last_errors = self._last_errors
        for env, (_, _, reply) in self._exchange(_STEP, bodies, self.timeout).items():
            if isinstance(reply, RequestFailure):
                self._fail(env, reply)
                continue
            observation = reply.observation
            if observation is None:
                self._fail(env, failure_of(reply))
                continue
            results[env] = observation
            last_errors[env] = None if reply.code is None else failure_of(reply)
        for env in sent:
            result = results[env]
            done[env] = result is None or result.end
        failed = [env for env in sent if results[env] is None]
        if failed:
            self._log_failures("make_step", failed, len(sent))
        return results

    def request_game_reset(self, request_trajectory: bool = False, randomize_topology: bool = False,
                           seed: int | None = None) -> list[Observation | None]:
        """ResetGame for every env holding a seat, done or not (ValueError for topology
        randomisation without a seed). Each Observation's ``info`` is its reply's message
        (with ``last_trajectory`` when asked). Afterwards ``done_mask`` is
        ``[result is None]``."""
        check_reset_arguments(randomize_topology, seed)
        results: list[Observation | None] = [None] * self._num_envs
        body = reset_body(request_trajectory, randomize_topology, seed)
        bodies: dict[int, bytes] = {}
        for env in range(self._num_envs):
            if self._seat_frames[env] is None:
                self._fail(env, _NOT_JOINED)
            else:
                bodies[env] = body
        for env, (_, _, reply) in self._exchange(_RESET, bodies, self.timeout).items():
            if isinstance(reply, RequestFailure):
                self._fail(env, reply)
            elif reply.status is not GameStatus.RESET_DONE or reply.observation is None:
                self._fail(env, failure_of(reply))
            else:
                state, reward, end, _ = reply.observation
                results[env] = Observation(state, reward, end, message_dict(reply))
                self._last_errors[env] = None
        self._done_mask = [result is None for result in results]
        self._log_failures("request_game_reset", [env for env in range(self._num_envs) if results[env] is None],
                           self._num_envs)
        return results

    def terminate_connection(self) -> None:
        """QUIT every seat (pipelined; answers awaited at most ``min(timeout,
        QUIT_TIMEOUT)`` seconds), then close every socket. Idempotent."""
        if self._terminated:
            return
        self._terminated = True
        try:
            bodies = {env: NIL_BODY for env, seat in enumerate(self._seat_frames) if seat is not None}
            failed = []
            for env, (_, _, reply) in self._exchange(_QUIT, bodies, min(self.timeout, QUIT_TIMEOUT)).items():
                if isinstance(reply, RequestFailure) or reply.status is not GameStatus.OK:
                    self._fail(env, reply if isinstance(reply, RequestFailure) else failure_of(reply))
                    failed.append(env)
            self._log_failures("terminate_connection", sorted(failed), len(bodies))
        finally:
            for connection in self._live_connections():
                connection.close()
            self._seats = [None] * self._num_envs
            self._seat_frames = [None] * self._num_envs
            self._done_mask = [True] * self._num_envs

    close = terminate_connection

    def __enter__(self) -> ParallelBaseAgent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate_connection()

    def __del__(self) -> None:
        # As upstream, sockets close on garbage collection (no QUIT: no I/O here).
        for connection in getattr(self, "_connections", {}).values():
            if connection is not None:
                with contextlib.suppress(Exception):  # interpreter shutdown
                    connection.close()

    # ------------------------------------------------------------------ internals
    def _live_connections(self) -> list[Connection]:
        return [c for c in self._connections.values() if c is not None and not c.closed]

    def _exchange(self, command: bytes, bodies: dict[int, bytes], timeout: float) -> dict[int, _Answer]:
        """Send one request per env in ``bodies`` (batched per (broker, world) when
        allowed), then await them all; every env of ``bodies`` gets an answer."""
        answers: dict[int, _Answer] = {}
        if not bodies:
            return answers
        pending: dict[Connection, dict[Key, int]] = {c: {} for c in self._live_connections()}
        seqs: dict[int, bytes] = {}
        groups: dict[tuple[Connection, bytes], list[int]] = {}
        batch = self.batched and command in _BATCHABLE
        connections, seats, worlds = self._env_connections, self._seat_frames, self._world_frames
        for env in bodies:
            connection = connections[env]
            if connection is None or connection.closed:
                answers[env] = (b"", b"", RequestFailure(None, CLOSED, "the connection was terminated"))
                continue
            seat = b"" if command == _JOIN else seats[env]
            assert seat is not None
            seq = seqs[env] = connection.next_seq(seat)
            pending[connection][(b"", seq) if command == _JOIN else (seat, seq)] = env
            world = worlds[env]
            if batch and world:
                groups.setdefault((connection, world), []).append(env)
            else:
                self._send(connection, [PROTOCOL_FRAME, command, seat, seq, bodies[env]], [env], seqs, pending,
                           answers)
        for (connection, world), envs in groups.items():
            if len(envs) == 1:  # a batch of one is a plain request
                env = envs[0]
                frames = [PROTOCOL_FRAME, command, seats[env], seqs[env], bodies[env]]
            else:
                frames = [PROTOCOL_FRAME, _BATCH, world, command]
                for env in envs:
                    frames += (seats[env], seqs[env], bodies[env])
            self._send(connection, frames, envs, seqs, pending, answers)  # type: ignore[arg-type]

        def on_reply(env: int, seat: bytes, reply: ReplyBody | RequestFailure) -> None:
            answers[env] = (seqs[env], seat, reply)

        def resend(key: Key, env: int) -> list[bytes]:
            body = bodies[env]
            if command == _JOIN:
                body = join_body(self._task, self._role, self._join_games[env], self.name, retry=True,
                                 catalog=self.want_catalog)
            return [PROTOCOL_FRAME, command, key[0], key[1], body]

        await_replies(pending, time.monotonic() + timeout, on_reply, self._logger, resend=resend,
                      retry_interval=self.retry_interval)
        name = Command.from_frame(command).name
        for connection, keys in pending.items():
            for env in keys.values():
                where = f", seat {self._seats[env]}" if command != _JOIN else ""
                answers[env] = (seqs[env], b"", RequestFailure(
                    None, TIMEOUT, f"no reply within {timeout:g} s from {connection.endpoint} "
                                   f"({name} of env {env}{where}){connection.handshake_note()}"))
        return answers

    def _send(self, connection: Connection, frames: list[bytes], envs: list[int], seqs: dict[int, bytes],
              pending: dict[Connection, dict[Key, int]], answers: dict[int, _Answer]) -> None:
        failure = connection.send(frames)
        if failure is None:
            return
        keys = pending[connection]
        failed = set(envs)
        for key in [key for key, env in keys.items() if env in failed]:
            del keys[key]
        for env in envs:
            answers[env] = (seqs[env], b"", failure)

    def _seat_env(self, env: int, seq: bytes, seat_frame: bytes, reply: ReplyBody) -> Observation | None:
        info = message_dict(reply)
        seat = info.get("seat") if isinstance(info.get("seat"), str) else None
        if not seat_frame:
            if seat is None:
                self._fail(env, RequestFailure(reply.status, ErrorCode.MALFORMED, "the join reply named no seat"))
                return None
            seat_frame = seat.encode()
        world = info.get("world") if isinstance(info.get("world"), str) else None
        game = info.get("game") if isinstance(info.get("game"), str) else None
        self._seats[env] = seat if seat is not None else seat_frame.decode(errors="replace")
        self._seat_frames[env] = seat_frame
        self._worlds[env] = world
        self._world_frames[env] = world.encode() if world else None
        self._games[env] = game or self._join_games[env]
        self._last_errors[env] = None
        connection = self._env_connections[env]
        assert connection is not None
        connection.adopt_seat(seat_frame, seq)
        state, reward, end, _ = reply.observation  # type: ignore[misc]
        return Observation(state, reward, end, info)

    def _fail(self, env: int, failure: RequestFailure) -> None:
        self._last_errors[env] = failure
        self._logger.debug("env %d: %s", env, failure)
        if failure.code in SEAT_GONE and self._seat_frames[env] is not None and failure.status is not None:
            self._logger.info("env %d: seat %s is gone: register() to take a new one", env, self._seats[env])
            self._seats[env] = self._seat_frames[env] = None

    def _log_failures(self, what: str, failed: list[int], asked: int) -> None:
        if failed:
            self._logger.warning("%s failed for %d of %d envs (env %d: %s)", what, len(failed), asked,
                                 failed[0], self._last_errors[failed[0]])


_NOT_JOINED = RequestFailure(GameStatus.BAD_REQUEST, ErrorCode.NOT_JOINED, "this env has no seat: register() first")
