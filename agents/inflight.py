"""The requests a :class:`~agents.parallel.ParallelBaseAgent` has in flight, and the replies
it has not handed out yet.

A client that only waits for the replies of the call that sent them can forget a request
when the call returns. The environments cannot: a game holds the reply to the step that
ends one agent's episode until every agent of the game ended theirs (PROTOCOL.md §4), and
that reply comes during some later call, for other envs. So this book keeps every request
until its reply arrives (or it times out, or its env quits), whichever call reads it, and
keeps the reply until its env's owner takes it. It knows envs only by index, and nothing
about games: what a reply means is the client's business.

* :meth:`InFlight.send` sends requests in the order given; those that may travel together
  (steps or resets of seats one world hosts, over one connection) go as one BATCH.
* :meth:`InFlight.wait` reads until ``need`` of some envs have a reply, each message whole
  (or gives up after a timeout: TIMEOUT failures for those still missing):
  a world answers a batch with **one** message carrying every reply the batch released
  (PROTOCOL.md §1), so ``need=1`` after a batch returns with all of them, and those still
  missing are held by their game. Unanswered requests are sent again, one message each
  with their own seq, every ``retry_interval`` of a wait (:func:`~agents.connection.await_replies`).
* :meth:`InFlight.forget` drops an env's request and reply (a QUIT answers both).
  A JOIN that timed out is remembered (:attr:`InFlight.abandoned_joins`): its game may
  still hold a seat for it, which a quit gives up (:meth:`InFlight.joins_of`).

    book = InFlight([connection], logger, RETRY_INTERVAL, join_retry=lambda env: body)
    book.send([(connection, b"w-1", Request(0, STEP, b"s-1", seq, action))])
    book.wait([0], need=1, timeout=5.0)
    replies = book.take([0])      # {0: Reply(...)}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence

import attrs

from protocol import PROTOCOL_FRAME, Command, ReplyBody

from .connection import TIMEOUT, Connection, Key, RequestFailure, await_replies, read_ready, request_key

__all__ = ["InFlight", "Reply", "Request"]

_JOIN, _BATCH = Command.JOIN.frame, Command.BATCH.frame


@attrs.define(slots=True, eq=False)
class Request:
    """One request sent: its env, command frame, seat frame (``b""`` for a JOIN), seq and body."""

    env: int
    command: bytes
    seat: bytes
    seq: bytes
    body: bytes

    @property
    def key(self) -> Key:
        """How its reply is matched: ``(seat, seq)``, a JOIN's by seq alone (its seat is new)
        (:func:`~agents.connection.request_key`)."""
        return request_key(self.command, self.seat, self.seq)


@attrs.define(slots=True, eq=False)   # not frozen: one is made per reply, and frozen inits cost 3x
class Reply:
    """What an env's request got: ``answer`` is the decoded reply or why there is none.
    ``seat`` is the reply's seat frame (a JOIN's new seat); ``seq`` the request's
    (``b""`` when it was never sent)."""

    command: bytes
    seq: bytes
    seat: bytes
    answer: ReplyBody | RequestFailure


class InFlight:
    """Requests in flight and replies not taken yet, at most one of either per env (see the
    module docstring). ``join_retry(env)`` is the body of a resent JOIN (it says it is one)."""

    def __init__(self, connections: Iterable[Connection], logger: logging.Logger, retry_interval: float,
                 join_retry: Callable[[int], bytes],
                 on_silence: Callable[[Connection, float, float, list[bytes]], None] | None = None) -> None:
        #: per live connection, ``{request key: request}`` (empty ones too: replies that
        #: come there are read and discarded)
        self.pending: dict[Connection, dict[Key, Request]] = {connection: {} for connection in connections}
        self._requests: dict[int, tuple[Connection, Request]] = {}
        self._replies: dict[int, Reply] = {}
        self._logger = logger
        self._retry_interval = retry_interval
        self._join_retry = join_retry
        self._wanted: Collection[int] = ()
        self._found = 0
        #: ``(connection, waited, timeout, commands waited for)``, once per wait gone quiet
        self._on_silence = on_silence
        #: envs whose JOIN timed out -> (connection, its seq): its game may still hold a seat
        #: for it, which a JOIN sent again with that seq finds, and a quit gives up
        self.abandoned_joins: dict[int, tuple[Connection, bytes]] = {}

    # ------------------------------------------------------------------ queries
    def busy(self, env: int) -> bool:
        """The env has a request in flight or a reply not taken."""
        return env in self._requests or env in self._replies

    def busy_of(self, envs: Iterable[int]) -> list[int]:
        """Those of ``envs`` that are :meth:`busy`."""
        if not self._requests and not self._replies:
            return []
        return [env for env in envs if env in self._requests or env in self._replies]

    def active(self) -> set[int]:
        """Envs with a request in flight or a reply not taken."""
        return self._requests.keys() | self._replies.keys()

    def in_flight(self) -> list[int]:
        """Envs whose request is not answered yet (held ones included), in order."""
        return sorted(self._requests)

    def ready(self, envs: Iterable[int]) -> int:
        """How many of ``envs`` have a reply to take."""
        replies = self._replies
        return sum(1 for env in envs if env in replies)

    # ------------------------------------------------------------------ sending
    def send(self, requests: Iterable[tuple[Connection, bytes | None, Request]]) -> None:
        """Send each ``(connection, world frame or None, request)``: those with a world
        frame grouped per (connection, world) into BATCH messages (a group of one is a plain
        request), sent after the others; a request that cannot be sent gets its failure
        as its reply at once."""
        groups: dict[tuple[Connection, bytes], list[Request]] = {}
        for connection, world, request in requests:
            if world is None:
                self._post(connection, [PROTOCOL_FRAME, request.command, request.seat, request.seq, request.body],
                           (request,))
            else:
                groups.setdefault((connection, world), []).append(request)
        for (connection, world), batch in groups.items():
            if len(batch) == 1:
                request = batch[0]
                frames = [PROTOCOL_FRAME, request.command, request.seat, request.seq, request.body]
            else:
                frames = [PROTOCOL_FRAME, _BATCH, world, batch[0].command]
                for request in batch:
                    frames += (request.seat, request.seq, request.body)
            self._post(connection, frames, batch)

    def _post(self, connection: Connection, frames: list[bytes], requests: Sequence[Request]) -> None:
        failure = connection.send(frames)
        if failure is not None:
            for request in requests:
                self._replies[request.env] = Reply(request.command, request.seq, b"", failure)
            return
        pending, in_flight = self.pending.setdefault(connection, {}), self._requests
        join = requests[0].command == _JOIN
        for request in requests:
            pending[(b"", request.seq) if join else (request.seat or request.command, request.seq)] = request
            in_flight[request.env] = (connection, request)

    def answer(self, env: int, command: bytes, failure: RequestFailure) -> None:
        """A request refused before it was sent: ``failure`` is its reply."""
        self._replies[env] = Reply(command, b"", b"", failure)

    # ------------------------------------------------------------------ replies
    def wait(self, envs: Collection[int], need: int, timeout: float) -> None:
        """Read replies until ``need`` of ``envs`` have one (each message whole), at most
        ``timeout`` seconds; with ``need`` met already, read only what is waiting. Short of
        ``need`` at the timeout, the requests of ``envs`` still in flight get a TIMEOUT
        failure as their reply (a reply that comes later is discarded)."""
        self._wanted = envs if isinstance(envs, (set, frozenset)) else set(envs)
        self._found = self.ready(envs)
        try:
            if self._found >= need:
                read_ready(self.pending, self._on_reply, self._logger)
                return
            silence = self._on_silence
            await_replies(self.pending, time.monotonic() + timeout, self._on_reply, self._logger,
                          resend=self._resend, retry_interval=self._retry_interval, until=lambda: self._found >= need,
                          on_silence=None if silence is None else lambda connection, waited: silence(
                              connection, waited, timeout,
                              sorted({request.command for request in self.pending[connection].values()})))
            if self._found < need:
                self._expire(sorted(self._wanted), timeout)
        finally:
            self._wanted = ()

    def _on_reply(self, request: Request, seat: bytes, answer: ReplyBody | RequestFailure) -> None:
        env = request.env
        del self._requests[env]
        self._replies[env] = Reply(request.command, request.seq, seat, answer)
        if env in self._wanted:
            self._found += 1

    def _resend(self, key: Key, request: Request) -> list[bytes]:
        body = self._join_retry(request.env) if request.command == _JOIN else request.body
        return [PROTOCOL_FRAME, request.command, key[0], key[1], body]

    def _expire(self, envs: Iterable[int], timeout: float) -> None:
        for env in envs:
            entry = self._requests.pop(env, None)
            if entry is None:
                continue
            connection, request = entry
            self.pending[connection].pop(request.key, None)
            if request.command == _JOIN:
                self.abandoned_joins[env] = (connection, request.seq)
            what = Command.from_frame(request.command).name
            where = "" if request.command == _JOIN else f", seat {request.seat.decode(errors='replace')}"
            self._replies[env] = Reply(request.command, request.seq, b"", RequestFailure(
                None, TIMEOUT, f"no reply within {timeout:g} s from {connection.endpoint} "
                               f"({what} of env {env}{where}){connection.handshake_note()}"))

    def take(self, envs: Iterable[int]) -> dict[int, Reply]:
        """The replies of ``envs`` that are in, removed from the book."""
        replies = self._replies
        return {env: replies.pop(env) for env in envs if env in replies}

    def joins_of(self, envs: Iterable[int]) -> dict[int, tuple[Connection, bytes]]:
        """The JOINs of ``envs`` without a reply (in flight, or timed out): env -> (connection,
        seq), for giving up the seats they may hold."""
        found = {}
        for env in envs:
            entry = self._requests.get(env)
            if entry is not None and entry[1].command == _JOIN:
                found[env] = (entry[0], entry[1].seq)
            elif env in self.abandoned_joins:
                found[env] = self.abandoned_joins[env]
        return found

    def forget(self, envs: Iterable[int]) -> None:
        """Drop the requests and replies of ``envs`` (and their timed-out JOINs)."""
        for env in envs:
            self._replies.pop(env, None)
            self.abandoned_joins.pop(env, None)
            entry = self._requests.pop(env, None)
            if entry is not None:
                connection, request = entry
                self.pending[connection].pop(request.key, None)
