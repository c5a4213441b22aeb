"""The games and seats of one world, free of sockets: requests in, REPLY messages out.

A :class:`GameHost` is what a world worker hosts: it creates games on demand (each a
:class:`~world.session.GameSession`, seeded by :func:`game_seed`), handles the JOIN,
STEP, RESET and QUIT requests the broker forwards (single or batched, PROTOCOL.md §1),
gives the games time (held replies, seat leases) through its timer heap, and collects
the seats that left, the games that closed and the trace events. It sends nothing: each
call returns the messages to send, ready-made frames from ``ARENA1`` on, and the caller
(:class:`~world.worker.WorldWorker`) carries them, RELEASE and trace included.

A STEP body of msgpack nil is PASS, the counted no-op step (PROTOCOL.md §3.2). A game's
scripted agents (:mod:`world.scripted`) are its session's own, not hosted seats: READY
(:meth:`GameHost.hosted`) and RELEASE never list them, and they get no replies.

A per-seat reply cache makes resends harmless (DESIGN §7): a request whose seq equals
the seat's last answered one gets the same reply again, and a resend of a request the
game still holds runs nothing (its reply, when it comes, goes to the client that resent
it), so no step runs twice.

>>> from protocol import PROTOCOL_FRAME, Command, decode_reply, pack, seq_bytes
>>> from world import load_task
>>> host = GameHost({"default": load_task()}, "w-doc")
>>> join = pack({"task": "default", "role": "Attacker", "game": "g1"})
>>> [reply] = host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"agent", Command.JOIN.frame,
...                         b"seat-1", seq_bytes(1), join], now=0.0)
>>> reply[1:6] == [Command.REPLY.frame, b"agent", Command.JOIN.frame, b"seat-1", seq_bytes(1)]
True
>>> decode_reply(reply[6]).message["game"], sorted(host.games), sorted(host.seats)
('g1', ['g1'], [b'seat-1'])
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
from typing import Any

import attrs

from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    action_from_packed,
    encode_reply,
    int_from_seq,
    pack,
    unpack,
)
from protocol.errors import describe
from protocol.messages import MAX_SEAT_BYTES

from .session import MALFORMED_MESSAGE, GameSession, Reply
from .task import TaskConfig
from .trajectory import Trajectory

__all__ = ["GameHost", "Out", "Tag", "default_game_name", "game_seed"]

log = logging.getLogger(__name__)

_JOIN, _STEP, _BATCH, _RESET, _QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                       Command.RESET.frame, Command.QUIT.frame)
_RELEASE, _REPLY = Command.RELEASE.frame, Command.REPLY.frame
_BATCH_INNER = frozenset({_STEP, _RESET})
_COMMANDS = frozenset({_JOIN, _STEP, _RESET, _QUIT})

#: [client, command, seat, seq]: the request tag the sessions hand back in each Reply. A list,
#: so a resend from a reconnected client can redirect a reply the game still holds.
Tag = list[bytes]
#: A reply ready to send, as its frames: [ARENA1, REPLY, client, command, seat, seq, body].
Out = list[bytes]


def default_game_name(task: str) -> str:
    """The name of a task's default game: what the broker names the first unnamed game of
    a task (``broker.placement``: ``<task>-1``, ``<task>-2``, ...), the game a NetSecGame
    client gets through the gateway or a plain ``arena play``."""
    return f"{task}-1"


def game_seed(seed: int, game: str, task: str | None = None) -> int:
    """The seed of a game's RNG, a stable function of the server seed, the game name and
    its task, so a game is the same whichever world hosts it (DESIGN §3 "Randomness").

    The task's default game (:func:`default_game_name`) starts from the server seed itself,
    as NetSecGame's one game does (``random.seed(seed)`` at start, reference netsecgame.md
    §6.12), so even its first episode, before any seeded reset, matches upstream's. Every
    other game, named or the broker's later unnamed ones, starts from a seed derived from
    (seed, name), so parallel games differ.

    >>> game_seed(42, "default-1", "default"), game_seed(42, "default-2", "default") == 42
    (42, False)
    >>> game_seed(42, "duel", "default") == game_seed(42, "duel")
    True
    """
    if task is not None and game == default_game_name(task):
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{game}".encode()).digest()[:8], "big")


@attrs.define(eq=False)
class _Game:
    name: str
    task: TaskConfig
    session: GameSession
    topic: bytes
    scheduled: float | None = None     # the deadline this game has in the timer heap
    closed: bool = False


@attrs.define(eq=False)
class _Seat:
    seat: bytes
    text: str                          # the seat as the session and the trace name it
    game: _Game
    client: bytes = b""                # the connection that sent the seat's latest request
    join_seq: bytes = b""              # the JOIN's seq until the seat's next request (READY lists it)
    held: Tag | None = None            # the tag of a request the game holds
    last_seq: bytes | None = None      # the last answered request: a resend gets its reply again
    last_command: bytes = b""
    last_body: bytes = b""


class GameHost:
    """The games of the given tasks (at most ``capacity``) that world ``name`` hosts.

    What the caller reads between calls, as a session's ``released`` and ``events``:
    ``games`` and ``seats`` (hosted now), ``timers`` (a heap of ``(deadline, id, game)``,
    stale entries included: ``timers[0][0]`` is when to call :meth:`run_timers` at the
    latest), ``released`` and ``closed`` (for :meth:`release_message`) and ``dirty``
    (games with trace events, for :meth:`take_events`). Setting ``stopping`` refuses
    new joins. ``trace`` turns trace events on; ``step_events`` adds one per step.
    """

    def __init__(self, tasks: dict[str, TaskConfig], name: str, *, seed: int = 42, capacity: int = 1000,
                 trace: bool = False, step_events: bool = True) -> None:
        self.tasks = tasks
        self.name = name
        self.seed = seed
        self.capacity = capacity
        self.trace = trace
        self.step_events = step_events
        self.stopping = False
        self.games: dict[str, _Game] = {}
        self.seats: dict[bytes, _Seat] = {}
        self.timers: list[tuple[float, int, _Game]] = []
        self.released: list[str | bytes] = []
        self.closed: list[str] = []
        self.dirty: set[_Game] = set()
        self._timer_ids = itertools.count()
        self._world_frame = name.encode()

    def hosted(self) -> list[dict[str, Any]]:
        """The games hosted now and their seats, as READY lists them (PROTOCOL.md §3.4): each
        seat with its role, its client and, until the seat's next request, its JOIN's seq, so
        a restarted broker knows whose seats they are and a resent JOIN finds its seat."""
        games = []
        for game in self.games.values():
            seats = []
            for text, player in game.session.seats.items():
                entry = self.seats.get(text.encode())
                seats.append([text, player.role.value, entry.client if entry else b"",
                              entry.join_seq if entry else b""])
            games.append({"game": game.name, "task": game.task.name, "seats": seats})
        return games

    # ------------------------------------------------------------------ requests
    def request(self, frames: list[bytes], now: float) -> list[Out]:
        """The replies to one REQUEST message (``frames`` from ``ARENA1`` on), to send now:
        one message per reply, or several steps or resets of a client as one batch (all of
        its replies, for a batch request)."""
        count = len(frames)
        if count < 4:
            log.warning("world %s: a REQUEST too short to answer dropped", self.name)  # pragma: no mutate
            return []
        client, command = frames[2], frames[3]
        if command == _BATCH:
            return self._batch(client, frames, now)
        out: list[Out] = []
        if count == 7 and command in _COMMANDS:
            self._handle(client, command, frames[4], frames[5], frames[6], now, out)
        else:
            text = ("Expected [client][command][seat][seq][body] after REQUEST." if command in _COMMANDS
                    else f"Unknown command {command[:4]!r} (PROTOCOL.md §2).")
            seat, seq = (frames[4] if count > 4 else b""), (frames[5] if count > 5 else b"")
            out.append(self._error([client, command, seat, seq], ErrorCode.BAD_FRAMES, text))
        return out if len(out) < 2 else self._replies(out, None)

    def _batch(self, client: bytes, frames: list[bytes], now: float) -> list[Out]:
        if len(frames) < 9 or (len(frames) - 6) % 3 or frames[5] not in _BATCH_INNER:
            text = "Expected [BATCH][world][STEP|RESET] then (seat, seq, body) triples."
            return [self._error([client, _BATCH, b"", b""], ErrorCode.BAD_FRAMES, text)]
        inner = frames[5]
        out: list[Out] = []
        for index in range(6, len(frames), 3):
            self._handle(client, inner, frames[index], frames[index + 1], frames[index + 2], now, out)
        return out if len(out) < 2 else self._replies(out, inner)

    def _handle(self, client: bytes, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float,
                out: list[Out]) -> None:
        """One request; whatever goes wrong, it gets a reply."""
        try:
            if command == _JOIN:
                self._join(client, seat, seq, body, now, out)
            else:
                self._request(client, command, seat, seq, body, now, out)
        except Exception:
            log.exception("world %s: a %r request of seat %r failed",  # pragma: no mutate
                          self.name, command, seat[:64])  # pragma: no mutate
            out.append(self._error([client, command, seat, seq], None,
                                   "The world could not handle this request (internal error); see its log."))

    def _request(self, client: bytes, command: bytes, seat: bytes, seq: bytes, body: bytes, now: float,
                 out: list[Out]) -> None:
        """STEP, RESET or QUIT of a seat this world hosts."""
        entry = self.seats.get(seat)
        tag = [client, command, seat, seq]
        if entry is None:
            if command == _QUIT:  # e.g. the QUIT of a join that never got here: the broker frees it
                self.released.append(_seat_text(seat))
            out.append(self._error(tag, ErrorCode.GAME_LOST,
                                   f"World {self.name} hosts no game with this seat: the game is gone."))
            return
        if seq and (seq == entry.last_seq or (entry.held is not None and seq == entry.held[3])):
            self._resend(entry, tag, out, now)
            return
        if entry.last_seq and int_from_seq(seq) < int_from_seq(entry.last_seq):
            # A resend overtaken by the seat's later requests: running it would run a step twice.
            out.append(self._error(tag, ErrorCode.STALE_REQUEST,
                                   "Stale request: the seat has answered a later sequence number."))
            return
        entry.client, entry.join_seq = client, b""
        session = entry.game.session
        try:
            if command == _STEP:
                if len(body) > MAX_BODY_BYTES:
                    raise ProtocolError("body", f"at most {MAX_BODY_BYTES} bytes", f"{len(body)} bytes")
                replies = session.step(entry.text, action_from_packed(body), now, tag,
                                       validated=True)  # the compact decoder checked every parameter
            elif command == _RESET:
                trajectory, randomize, seed = _reset_arguments(unpack(body, MAX_BODY_BYTES))
                replies = session.reset(entry.text, now, tag, request_trajectory=trajectory,
                                        randomize_topology=randomize, seed=seed)
            else:
                replies = session.quit(entry.text, now, tag)
        except ProtocolError as error:
            out.append(self._encode(self._malformed(tag, error)))
            return
        self._collect(entry.game, replies, out, tag, entry)

    def _join(self, client: bytes, seat: bytes, seq: bytes, body: bytes, now: float, out: list[Out]) -> None:
        tag = [client, _JOIN, seat, seq]
        entry = self.seats.get(seat)
        if entry is not None:
            if seq and (seq == entry.last_seq or (entry.held is not None and seq == entry.held[3])):
                self._resend(entry, tag, out, now)
            else:
                out.append(self._encode(self._bad(tag, ErrorCode.ALREADY_JOINED,
                                                  f"This seat already plays in game {entry.game.name}.")))
            return
        try:
            text, task_name, role, game_name, name, catalog = _join_arguments(seat, body)
        except ProtocolError as error:
            self.released.append(_seat_text(seat))
            out.append(self._encode(self._malformed(tag, error)))
            return
        task = self.tasks.get(task_name)
        game = self.games.get(game_name)
        problem: tuple[ErrorCode, str] | None = None
        if self.stopping:
            problem = ErrorCode.NO_WORLD, f"World {self.name} is shutting down."
        elif task is None:
            problem = ErrorCode.UNKNOWN_TASK, (f"World {self.name} does not serve task {task_name!r} "
                                               f"(it serves {', '.join(sorted(self.tasks))}).")
        elif game is None and len(self.games) >= self.capacity:
            problem = ErrorCode.NO_WORLD, f"World {self.name} is full ({self.capacity} games)."
        elif game is not None and game.task is not task:
            problem = ErrorCode.GAME_TASK_MISMATCH, f"Game {game_name!r} plays task {game.task.name}, not {task_name}."
        if problem is not None:
            self.released.append(text)
            out.append(self._encode(self._bad(tag, *problem)))
            return
        assert task is not None
        if game is None:
            game = self._new_game(task, game_name)
        entry = self.seats[seat] = _Seat(seat, text, game, client, seq)
        replies = game.session.join(text, name, role, now, tag, catalog=catalog)
        own = next((reply for reply in replies if reply.request is tag), None)
        if own is not None and own.status is GameStatus.BAD_REQUEST:
            del self.seats[seat]
            self.released.append(text)
        self._collect(game, replies, out, tag, entry)
        self._schedule(game)

    def _new_game(self, task: TaskConfig, name: str) -> _Game:
        session = GameSession(task, seed=game_seed(self.seed, name, task.name), name=name)
        if self.trace:
            session.events = []
            session.step_events = self.step_events
        game = self.games[name] = _Game(name, task, session, f"trace.{task.name}.{name}".encode())
        log.debug("world %s: game %s of task %s created", self.name, name, task.name)  # pragma: no mutate
        return game

    def _collect(self, game: _Game, replies: list[Reply], out: list[Out], tag: Tag | None = None,
                 entry: _Seat | None = None) -> None:
        """Encode a session call's replies; note a held request, released seats, trace events."""
        held = tag is not None
        for reply in replies:
            if reply.request is tag:
                held = False
            out.append(self._encode(reply))
        if held and entry is not None and tag is not None and entry.seat in self.seats:
            entry.held = tag
            self._schedule(game)
        session = game.session
        if session.released or not session.seats:
            self._collect_released(game)
        if session.events:
            self.dirty.add(game)

    def _collect_released(self, game: _Game) -> None:
        session = game.session
        for text in session.released:
            self.seats.pop(text.encode(), None)
            self.released.append(text)
        session.released.clear()
        if not session.seats and not game.closed:
            game.closed = True
            self.games.pop(game.name, None)
            self.closed.append(game.name)
            log.debug("world %s: game %s closed", self.name, game.name)  # pragma: no mutate

    # ------------------------------------------------------------------ replies
    def _encode(self, reply: Reply) -> Out:
        client, command, seat, seq = reply.request
        message = reply.message
        entry = self.seats.get(seat)
        if isinstance(message, dict):
            if command == _JOIN and entry is not None:
                message = {**message, "seat": entry.text, "world": self.name, "game": entry.game.name,
                           "task": entry.game.task.name}
            elif isinstance(message.get("last_trajectory"), Trajectory):
                message = {**message, "last_trajectory": message["last_trajectory"].as_dict()}
        body = encode_reply(reply.status, reply.observation, message, reply.code)
        if entry is not None:
            entry.last_seq, entry.last_command, entry.last_body = seq, command, body
            if entry.held is reply.request:
                entry.held = None
        return [PROTOCOL_FRAME, _REPLY, client, command, seat, seq, body]

    def _resend(self, entry: _Seat, tag: Tag, out: list[Out], now: float) -> None:
        """A resend: the cached reply again; while the game still holds the request, nothing
        now, but the reply will go to the client that resent it (it may have reconnected).
        Either way the client is there: the seat's lease is renewed (a held join's lease
        runs, PROTOCOL.md §7)."""
        entry.game.session.renew(entry.text, now)
        if tag[3] == entry.last_seq:
            out.append([PROTOCOL_FRAME, _REPLY, tag[0], entry.last_command, entry.seat, tag[3], entry.last_body])
        elif entry.held is not None:
            entry.held[0] = tag[0]
        log.debug("world %s: resend of seat %s seq %r", self.name, entry.text, tag[3])  # pragma: no mutate

    def _replies(self, out: list[Out], inner: bytes | None) -> list[Out]:
        """Several replies as messages: one batch per client (of ``inner``, for a batch request)
        where they are steps or resets, one message each otherwise."""
        groups: dict[tuple[bytes, bytes], list[Out]] = {}
        for item in out:
            groups.setdefault((item[2], inner if inner is not None else item[3]), []).append(item)
        messages: list[Out] = []
        for (client, command), group in groups.items():
            if len(group) == 1 or command not in _BATCH_INNER:
                messages += group
                continue
            frames = [PROTOCOL_FRAME, _REPLY, client, _BATCH, self._world_frame, command]
            for _, _, _, _, seat, seq, body in group:
                frames += (seat, seq, body)
            messages.append(frames)
        return messages

    def _bad(self, tag: Tag, code: ErrorCode, text: str) -> Reply:
        return Reply(tag[2], tag, GameStatus.BAD_REQUEST, None, {"message": text}, code)

    def _malformed(self, tag: Tag, error: ProtocolError) -> Reply:
        return Reply(tag[2], tag, GameStatus.BAD_REQUEST, None,
                     {"message": MALFORMED_MESSAGE, "reason": str(error)}, ErrorCode.MALFORMED)

    def _error(self, tag: Tag, code: ErrorCode | None, text: str) -> Out:
        """An error for a request that reached no seat (nothing cached)."""
        return [PROTOCOL_FRAME, _REPLY, *tag, encode_reply(GameStatus.BAD_REQUEST, None, {"message": text}, code)]

    # ------------------------------------------------------------------ timers
    def _schedule(self, game: _Game) -> None:
        """Make sure the heap wakes the game by its next deadline (later entries go stale)."""
        deadline = game.session.next_deadline()
        if deadline is not None and not game.closed and (game.scheduled is None or deadline < game.scheduled):
            game.scheduled = deadline
            heapq.heappush(self.timers, (deadline, next(self._timer_ids), game))

    def run_timers(self, now: float) -> list[Out]:
        """Give the games whose deadline passed their time; the replies that released, to send."""
        timers = self.timers
        out: list[Out] = []
        while timers and timers[0][0] <= now:
            deadline, _, game = heapq.heappop(timers)
            if game.closed or deadline != game.scheduled:
                continue
            game.scheduled = None
            try:
                self._collect(game, game.session.tick(now), out)
            except Exception:
                log.exception("world %s: timers of game %s failed", self.name, game.name)  # pragma: no mutate
            self._schedule(game)
        return out if len(out) < 2 else self._replies(out, None)

    # ------------------------------------------------------------------ releases and trace
    def release_message(self) -> list[bytes]:
        """The RELEASE message of the seats and games gone since the last one (PROTOCOL.md §1)."""
        message = [PROTOCOL_FRAME, _RELEASE, pack({"seats": self.released, "closed": self.closed})]
        self.released, self.closed = [], []
        return message

    def take_events(self) -> list[tuple[bytes, list[dict[str, Any]]]]:
        """The new trace events of each ``dirty`` game, with its topic; they are the caller's now."""
        batches: list[tuple[bytes, list[dict[str, Any]]]] = []
        for game in self.dirty:
            events = game.session.events
            if events:
                game.session.events = []
                batches.append((game.topic, events))
        self.dirty.clear()
        return batches

    # ------------------------------------------------------------------ leaving
    def drop_games(self, reason: str) -> list[Out]:
        """Forget every game (no split brain); the GAME_LOST answers to its held requests, to send.
        The games' last trace events stay for :meth:`take_events`."""
        out: list[Out] = []
        for game in self.games.values():
            for reply in game.session.close(reason):
                out.append(self._error(reply.request, ErrorCode.GAME_LOST,
                                       f"Game {game.name} is gone: {reason}."))
            game.closed = True
            if game.session.events:
                self.dirty.add(game)
        self.games.clear()
        self.seats.clear()
        self.timers.clear()
        self.released, self.closed = [], []
        return out


def _seat_text(seat: bytes) -> str | bytes:
    try:
        return seat.decode()
    except UnicodeDecodeError:
        return seat


def _text(value: Any, field: str, limit: int = 200) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(field, f"a non-empty string of at most {limit} characters", describe(value))
    return value


def _join_arguments(seat: bytes, body: bytes) -> tuple[str, str, str, str, str, bool]:
    """(seat text, task, role, game, name, catalog) of a JOIN the broker forwarded (task and
    game filled in)."""
    if not seat or len(seat) > MAX_SEAT_BYTES:
        raise ProtocolError("seat", f"1 to {MAX_SEAT_BYTES} bytes", f"{len(seat)} bytes")
    try:
        text = seat.decode()
    except UnicodeDecodeError:
        raise ProtocolError("seat", "UTF-8 text", describe(seat)) from None
    request = unpack(body, MAX_BODY_BYTES)
    if not isinstance(request, dict):
        raise ProtocolError("join", "a map {task, role, game, name}", describe(request))
    name = request.get("name")
    catalog = request.get("catalog", False)
    if not isinstance(catalog, bool):
        raise ProtocolError("join.catalog", "true or false", describe(catalog))
    return (text, _text(request.get("task"), "join.task"), _text(request.get("role"), "join.role", 20),
            _text(request.get("game"), "join.game"), "agent" if name is None else _text(name, "join.name"),
            catalog)


def _reset_arguments(value: Any) -> tuple[bool, bool, int | None]:
    """``[request_trajectory, randomize_topology, seed]``, strictly typed."""
    if not isinstance(value, list) or len(value) != 3:
        raise ProtocolError("reset", "[request_trajectory, randomize_topology, seed]", describe(value))
    trajectory, randomize, seed = value
    if not isinstance(trajectory, bool):
        raise ProtocolError("reset.request_trajectory", "true or false", describe(trajectory))
    if not isinstance(randomize, bool):
        raise ProtocolError("reset.randomize_topology", "true or false", describe(randomize))
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ProtocolError("reset.seed", "an integer or null", describe(seed))
    return trajectory, randomize, seed
