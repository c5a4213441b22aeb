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
(the default placement does), or use the layer below.

**EnvPool-style, without waiting** (what the RL environments run on): ``send_joins``,
``send_steps({env: action or PASS})`` and ``send_resets({env: (seed, randomize_topology)})``
send to any subset of envs and return at once; ``collect(envs, need=, timeout=)`` returns
``{env: Observation or RequestFailure}`` for those answered. A request stays in flight
until its reply comes, whichever call reads it, and the reply is kept until collected.
A world answers a batch with one message carrying every reply the batch released, so
``collect(envs, need=1)`` after a batch to one world returns with all of them: an env of
the batch still missing is *held* by its game, and a later collect gets its reply.
``role`` and ``game`` may be per env, so one client can seat both sides of a game::

    duel = ParallelBaseAgent(frontend, [AgentRole.Attacker, AgentRole.Defender], 2, game="duel")
    duel.send_joins()                        # the game holds both joins until both are in
    starts = duel.collect()                  # {0: Observation, 1: Observation}
    duel.send_steps({0: attack, 1: PASS})    # one BATCH: both seats sit on one world
    answers = duel.collect(need=1)           # the batch's reply; an env missing is held
    duel.send_resets({0: (7, False), 1: (7, False)})
    later = duel.collect()                   # the held reply too, if it had not come
    duel.terminate_connection()

>>> envs = ParallelBaseAgent("tcp://127.0.0.1:1", "Attacker", 2, timeout=0.05)
>>> envs.register(), envs.done_mask, envs.last_errors[0].code
([None, None], [True, True], 'TIMEOUT')
>>> envs.terminate_connection()
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import zmq

from protocol import Action, AgentRole, Command, GameStatus, Observation, PassAction
from protocol.security import CurveClient

from .client import QUIT_TIMEOUT, as_role, check_reset_arguments, join_body, reset_body
from .connection import (
    CLOSED,
    NIL_BODY,
    RETRY_INTERVAL,
    SEAT_GONE,
    Connection,
    RequestFailure,
    Silence,
    failure_of,
    quit_join_body,
)
from .env_seats import NOT_JOINED, EnvSeats
from .inflight import InFlight, Request

__all__ = ["ParallelBaseAgent", "Result"]

_JOIN, _STEP, _RESET, _QUIT = Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame, Command.QUIT.frame
_BATCHABLE = frozenset({_STEP, _RESET})

#: What an env's request gets from :meth:`ParallelBaseAgent.collect`.
Result = Observation | RequestFailure


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
    """``num_envs`` seats, played in lock-step or EnvPool-style over one socket per broker.

    ``endpoints``: a broker frontend address, or one per env. ``role``: one role, or one
    per env. ``task``: the task name (None: the broker's only or ``default`` task).
    ``game``: None, one game name for every env, or a list of per-env names (None entries
    allowed). ``name``: the agents' name in their games (default: the class name).
    ``batched``: group the steps and resets one call sends per (broker, world) into BATCH
    messages. ``timeout`` bounds each call's wait for its replies, in seconds; requests
    unanswered for ``retry_interval`` seconds of a wait are sent again, one message each,
    with their sequence numbers (see :class:`~agents.client.BaseAgent`). ``curve``: CURVE
    keys for brokers with CURVE on. ``catalog``: ask for each game's catalog
    (``info["catalog"]`` of join and reset replies). Not thread-safe (its sockets).

    As :class:`~agents.client.BaseAgent`: a wait without a reply for 1 s is said once per
    call and broker (``on_silence``, else the log), and JOINs without a reply when envs
    quit or the agent closes (in flight, or timed out) are given up, so no seat is left
    behind; an env whose JOIN timed out sends that JOIN again when it joins again.
    """

    def __init__(self, endpoints: str | Sequence[str], role: AgentRole | str | Sequence[AgentRole | str],
                 num_envs: int, *, task: str | None = None, game: str | Sequence[str | None] | None = None,
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
        roles = [as_role(each) for each in _per_env(role, num_envs, "role")]
        self._logger = logging.getLogger(type(self).__name__)
        endpoint_list: list[str] = _per_env(endpoints, num_envs, "endpoints")
        self._task = task
        self.name = name or type(self).__name__
        self.batched = bool(batched)
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self._connections: dict[str, Connection | None] = {}
        for endpoint in dict.fromkeys(endpoint_list):
            try:
                self._connections[endpoint] = Connection(endpoint, context, curve=curve)
            except zmq.ZMQError as error:
                self._logger.warning("cannot connect to %r: %s", endpoint, error)
                self._connections[endpoint] = None
        self._envs = EnvSeats(roles, endpoint_list, _per_env(game, num_envs, "game"),
                              [self._connections[endpoint] for endpoint in endpoint_list], self._logger)
        self._join_bodies: dict[tuple[AgentRole, str | None, bool], bytes] = {}
        #: Called once per wait that has had no reply for 1 s, per broker (None: logged).
        self.on_silence: Callable[[Silence], None] | None = None
        self._book = InFlight(self._live_connections(), self._logger, self.retry_interval,
                              lambda env: self._join_body(env, retry=True), self._silence)
        self._terminated = False

    # ------------------------------------------------------------------ properties
    @property
    def num_envs(self) -> int:
        return self._num_envs

    @property
    def done_mask(self) -> list[bool]:
        """Per env: done (its last result was None or ended its episode). A copy."""
        return list(self._envs.done)

    @property
    def all_done(self) -> bool:
        return all(self._envs.done)

    @property
    def connected(self) -> list[bool]:
        """Per env: holds a seat."""
        return [seat is not None for seat in self._envs.seat_frames]

    @property
    def last_errors(self) -> list[RequestFailure | None]:
        """Per env: why its last request failed or was refused (None after a success)."""
        return list(self._envs.last_errors)

    @property
    def last_error(self) -> RequestFailure | None:
        """The first env's entry of ``last_errors`` that is set, if any."""
        return next((error for error in self._envs.last_errors if error is not None), None)

    @property
    def role(self) -> AgentRole:
        """The envs' role (the first env's, when ``roles`` differ)."""
        return self._envs.roles[0]

    @property
    def roles(self) -> list[AgentRole]:
        """Per env: its role."""
        return list(self._envs.roles)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def seats(self) -> list[str | None]:
        return list(self._envs.seats)

    @property
    def worlds(self) -> list[str | None]:
        return list(self._envs.worlds)

    @property
    def games(self) -> list[str | None]:
        return list(self._envs.games)

    @property
    def endpoints(self) -> list[str]:
        """Per env: its broker's address."""
        return list(self._envs.endpoints)

    @property
    def sockets(self) -> list[zmq.Socket | None]:
        """One DEALER socket per distinct broker address (None once terminated)."""
        return [None if c is None else c.socket for c in self._connections.values()]

    @property
    def in_flight(self) -> list[int]:
        """Envs whose request is not answered yet (held ones included)."""
        return self._book.in_flight()

    def __repr__(self) -> str:
        roles = "/".join(dict.fromkeys(role.value for role in self._envs.roles))
        return (f"<{type(self).__name__} {roles} x{self._num_envs} over "
                f"{len(self._connections)} broker(s), {sum(self.connected)} seated>")

    # ------------------------------------------------------------------ lock-step API
    def register(self) -> list[Observation | None]:
        """JoinGame for every env without a seat: all JOINs are sent, then the replies
        awaited together (a game may hold a join until its other players arrive). Each
        Observation's ``info`` is its reply's message. Afterwards ``done_mask`` is
        ``[result is None]``."""
        envs = self._envs
        bodies = {env: self._join_body(env) for env in range(self._num_envs)
                  if envs.seat_frames[env] is None and envs.connections[env] is not None}
        self._check_idle(bodies)
        for env in range(self._num_envs):
            if envs.seat_frames[env] is not None:
                envs.fail(env, envs.already_joined(env))
        results = self._exchange(_JOIN, bodies, self.timeout)
        envs.done = [result is None for result in results]
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
        envs = self._envs
        done = envs.done
        sent = [env for env in range(count) if not done[env]]
        self._check_idle(sent)
        bodies: dict[int, bytes] = {}
        for env in sent:
            body = envs.step_body(env, actions[env])
            if isinstance(body, RequestFailure):
                envs.fail(env, body)
            else:
                bodies[env] = body
        results = self._exchange(_STEP, bodies, self.timeout)
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
        envs = self._envs
        body = reset_body(request_trajectory, randomize_topology, seed)
        bodies = {env: body for env in range(self._num_envs) if envs.seat_frames[env] is not None}
        self._check_idle(bodies)
        for env in range(self._num_envs):
            if env not in bodies:
                envs.fail(env, NOT_JOINED)
        results = self._exchange(_RESET, bodies, self.timeout)
        envs.done = [result is None for result in results]
        self._log_failures("request_game_reset", [env for env in range(self._num_envs) if results[env] is None],
                           self._num_envs)
        return results

    def terminate_connection(self) -> None:
        """QUIT every seat, and every JOIN without a reply (pipelined; answers awaited at
        most ``min(timeout, QUIT_TIMEOUT)`` seconds), then close every socket. Idempotent."""
        if self._terminated:
            return
        self._terminated = True
        try:
            self._quit(range(self._num_envs), "terminate_connection")
        finally:
            for connection in self._live_connections():
                connection.close()
            for env in range(self._num_envs):
                self._envs.unseat(env)
            self._envs.done = [True] * self._num_envs

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

    # ------------------------------------------------------------------ EnvPool-style API
    def send_joins(self, envs: Iterable[int] | None = None) -> None:
        """JoinGame for ``envs`` (default: every env without a seat or a request), without
        waiting: a game holds its joins until it starts, so the seats of one game can join
        over one socket. :meth:`collect` gives each env's welcome Observation (``info``:
        the reply's message) or failure; a seated env's is ALREADY_JOINED."""
        seats = self._envs
        chosen = self._chosen(envs, lambda env: seats.seat_frames[env] is None and not self._book.busy(env))
        bodies = {}
        for env in chosen:
            if seats.seat_frames[env] is not None:
                self._book.answer(env, _JOIN, seats.already_joined(env))
            else:
                bodies[env] = self._join_body(env)
        self._post(_JOIN, bodies)

    def send_steps(self, actions: Mapping[int, Action | PassAction]) -> None:
        """Send one action (or :data:`~protocol.PASS`) per env of ``actions``, without
        waiting; :meth:`collect` gives each env's Observation (a FORBIDDEN one too, with
        ``last_errors[env]`` saying why) or failure. ``done_mask`` is not consulted."""
        self._chosen(actions)
        bodies: dict[int, bytes] = {}
        step_body = self._envs.step_body
        for env, action in actions.items():
            body = step_body(env, action)
            if isinstance(body, RequestFailure):
                self._book.answer(env, _STEP, body)
            else:
                bodies[env] = body
        self._post(_STEP, bodies)

    def send_resets(self, resets: Mapping[int, tuple[int | None, bool]], *, request_trajectory: bool = False,
                    ) -> None:
        """ResetGame per env of ``resets`` (``{env: (seed, randomize_topology)}``, each env
        its own seed), without waiting; :meth:`collect` gives each env's first Observation
        of the new episode (``info``: the reply's message) or failure. A game answers its
        resets when every seat of it asked (ValueError for randomisation without a seed)."""
        for seed, randomize in resets.values():
            check_reset_arguments(randomize, seed)
        self._chosen(resets)
        bodies: dict[int, bytes] = {}
        packed: dict[tuple[int | None, bool], bytes] = {}
        for env, (seed, randomize) in resets.items():
            if self._envs.seat_frames[env] is None:
                self._book.answer(env, _RESET, NOT_JOINED)
                continue
            body = packed.get((seed, randomize))
            if body is None:
                body = packed[seed, randomize] = reset_body(request_trajectory, randomize, seed)
            bodies[env] = body
        self._post(_RESET, bodies)

    def collect(self, envs: Iterable[int] | None = None, *, need: int | None = None,
                timeout: float | None = None) -> dict[int, Result]:
        """The answers of ``envs`` (default: every env with a request or an answer), once
        ``need`` of them (default: all) are in; each message is read whole, and with
        ``need=0`` only what already arrived is read. Envs of ``envs`` with nothing sent
        are ignored. After ``timeout`` seconds (default: ``timeout``) short of ``need``,
        the requests of ``envs`` still unanswered fail with TIMEOUT. Answers that arrive
        for other envs are kept for their collect. Updates ``done_mask`` as the lock-step
        calls do (a step's end, or a failure, makes an env done)."""
        if need is not None and need < 0:
            raise ValueError(f"need must be at least 0, got {need!r}")
        book = self._book
        wanted = book.active() if envs is None else {env for env in self._chosen(envs, check=False)
                                                     if book.busy(env)}
        if not wanted:
            return {}
        count = len(wanted) if need is None else min(need, len(wanted))
        book.wait(wanted, count, self.timeout if timeout is None else float(timeout))
        seats = self._envs
        results: dict[int, Result] = {}
        for env, reply in book.take(sorted(wanted)).items():
            result = results[env] = seats.settle(env, reply)
            seats.done[env] = isinstance(result, RequestFailure) or (reply.command == _STEP and result.end)
        return results

    def quit(self, envs: Iterable[int] | None = None) -> None:
        """QuitGame for the seats of ``envs`` (default: all), pipelined, answers awaited at
        most ``min(timeout, QUIT_TIMEOUT)`` seconds. Their requests in flight are forgotten
        (a QUIT answers a held one too), and a JOIN without a reply (held, or timed out) is
        given up by a QUIT naming it; the envs are unseated and done, and
        :meth:`register` or :meth:`send_joins` may seat them again."""
        self._quit(self._chosen(envs, lambda env: True, check=False), "quit")

    # ------------------------------------------------------------------ internals
    def _quit(self, chosen: Iterable[int], what: str) -> None:
        seats, book = self._envs, self._book
        chosen = list(chosen)
        for env, reply in book.take(chosen).items():  # a join answered but not collected seats its env
            seats.settle(env, reply)
        # JOINs without a reply (in flight, or timed out) may hold seats the envs do not know
        # yet: each is given up by a QUIT naming its seq (PROTOCOL.md §3.2).
        joins = {env: join for env, join in book.joins_of(chosen).items()
                 if seats.seat_frames[env] is None and not join[0].closed and join[0].reached()}
        book.forget(chosen)
        bodies = {env: NIL_BODY for env in chosen if seats.seat_frames[env] is not None}
        self._post(_QUIT, bodies)
        book.send([(connection, None, Request(env, _QUIT, b"", connection.next_seq(b""), quit_join_body(seq)))
                   for env, (connection, seq) in joins.items()])
        asked = [*bodies, *joins]
        book.wait(asked, len(asked), min(self.timeout, QUIT_TIMEOUT))
        failed = []
        for env, reply in book.take(asked).items():
            answer = reply.answer
            if isinstance(answer, RequestFailure) or (answer.status is not GameStatus.OK
                                                      and (env not in joins or answer.code not in SEAT_GONE)):
                seats.fail(env, answer if isinstance(answer, RequestFailure) else failure_of(answer))
                failed.append(env)
        if joins:
            self._logger.info("%s: the joins of envs %s, still without a reply, were given up", what, sorted(joins))
        self._log_failures(what, sorted(failed), len(asked))
        for env in chosen:
            seats.unseat(env)
            seats.done[env] = True

    def _live_connections(self) -> list[Connection]:
        return [c for c in self._connections.values() if c is not None and not c.closed]

    def _join_body(self, env: int, *, retry: bool = False) -> bytes:
        role, game = self._envs.roles[env], self._envs.join_games[env]
        body = self._join_bodies.get((role, game, retry))
        if body is None:
            body = self._join_bodies[role, game, retry] = join_body(self._task, role, game, self.name, retry=retry,
                                                                     catalog=self.want_catalog)
        return body

    def _chosen(self, envs: Iterable[int] | None, default: Any = None, *, check: bool = True) -> list[int]:
        """``envs`` as a list of valid indices (None: those ``default(env)`` picks); with
        ``check``, ValueError if one has a request in flight or an answer not collected."""
        count = self._num_envs
        chosen = [env for env in range(count) if default(env)] if envs is None else list(map(int, envs))
        if chosen and (min(chosen) < 0 or max(chosen) >= count or len(set(chosen)) != len(chosen)):
            raise ValueError(f"envs must be distinct indices below {count}, got {chosen}")
        if check:
            self._check_idle(chosen)
        return chosen

    def _check_idle(self, envs: Iterable[int]) -> None:
        busy = self._book.busy_of(envs)
        if busy:
            raise ValueError(f"envs {busy} have a request in flight or an answer not collected: collect() first")

    def _post(self, command: bytes, bodies: Mapping[int, bytes]) -> None:
        """Send one request per env of ``bodies`` (batched per (broker, world) when allowed)."""
        seats, book = self._envs, self._book
        batch = self.batched and command in _BATCHABLE
        requests = []
        for env, body in bodies.items():
            connection = seats.connections[env]
            if connection is None or connection.closed:
                why = "the connection was terminated" if connection else f"cannot connect to {seats.endpoints[env]!r}"
                book.answer(env, command, RequestFailure(None, CLOSED, why))
                continue
            seat = b"" if command == _JOIN else seats.seat_frames[env]
            assert seat is not None
            seq = None
            if command == _JOIN:  # a JOIN that timed out goes again with its seq, to the seat it took
                old = book.abandoned_joins.pop(env, None)
                if old is not None and old[0] is connection:
                    seq = old[1]
            request = Request(env, command, seat, seq or connection.next_seq(seat), body)
            requests.append((connection, seats.world_frames[env] if batch else None, request))
        book.send(requests)

    def _exchange(self, command: bytes, bodies: Mapping[int, bytes], timeout: float) -> list[Observation | None]:
        """Send ``bodies`` and await every answer: per env its Observation, or None (failed
        or not sent; ``last_errors`` says why)."""
        results: list[Observation | None] = [None] * self._num_envs
        if not bodies:
            return results
        self._post(command, bodies)
        self._book.wait(bodies, len(bodies), timeout)
        settle = self._envs.settle
        for env, reply in self._book.take(bodies).items():
            result = settle(env, reply)
            if not isinstance(result, RequestFailure):
                results[env] = result
        return results

    def _silence(self, connection: Connection, waited: float, timeout: float, commands: list[bytes]) -> None:
        """Say once per wait and broker that its replies are late, and whether it answers."""
        up, why = connection.link()
        notice = Silence(connection.endpoint, waited, timeout, up, why,
                         tuple(Command.from_frame(command).name for command in commands))
        if self.on_silence is not None:
            self.on_silence(notice)
        else:
            self._logger.log(logging.INFO if up else logging.WARNING, "%s", notice)

    def _log_failures(self, what: str, failed: list[int], asked: int) -> None:
        if failed:
            self._logger.warning("%s failed for %d of %d envs (env %d: %s)", what, len(failed), asked,
                                 failed[0], self._envs.last_errors[failed[0]])

