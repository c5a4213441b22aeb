"""Where seats go: the broker's tables of worlds, games and seats, without sockets.

A JOIN names a task, a role and optionally a game. :meth:`Placement.place_join`
resolves it (PROTOCOL.md §3.1, DESIGN §2):

* a named game gets the seat if it has a free one of that role; a new named game is
  created on the least-loaded live world serving the task;
* otherwise the seat goes to a game of the task that waits for a player of that role
  (the fullest first, so games start sooner), else to a new game;
* an unknown task or a role the task does not allow is refused with a clear error.

Seats, games and worlds are plain records; the broker owns one Placement.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import attrs

from protocol import MAX_SEQ_BYTES, AgentRole, ErrorCode, ProtocolError
from protocol.errors import describe

__all__ = ["LOST_SEATS_KEPT", "GameRecord", "Placement", "PlacementError", "SeatRecord", "TaskInfo", "WorldRecord",
           "hosted_games", "join_request", "quit_join_request", "world_from_ready"]

#: How many seats of dead worlds are remembered, so their agents hear GAME_LOST, not UNKNOWN_SEAT.
LOST_SEATS_KEPT = 100_000


class PlacementError(Exception):
    """A JOIN that cannot be placed: carries the error code and a sentence for the agent."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class TaskInfo:
    """What a world says about a task in READY."""

    name: str
    seats: dict[str, int]
    allowed_roles: frozenset[str]
    hash: str = ""


@attrs.define(eq=False)
class WorldRecord:
    identity: bytes
    name: str
    capacity: int
    tasks: dict[str, TaskInfo]
    heartbeat: float
    expiry: float
    registered_at: float
    games: set[str] = attrs.Factory(set)
    next_beat: float = 0.0
    #: requests forwarded and not yet answered: (seat, seq) -> (client, command)
    inflight: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = attrs.Factory(dict)

    @property
    def load(self) -> float:
        return len(self.games) / max(self.capacity, 1)


@attrs.define(eq=False)
class GameRecord:
    name: str
    task: str
    world: bytes
    seats: dict[str, int]             # role -> seats per game
    taken: dict[str, int] = attrs.Factory(dict)
    named: bool = False               # named by an agent (not filled automatically)

    def free(self, role: str) -> int:
        return self.seats.get(role, 0) - self.taken.get(role, 0)

    @property
    def occupied(self) -> int:
        return sum(self.taken.values())


@attrs.define(eq=False)
class SeatRecord:
    seat: bytes
    client: bytes
    world: bytes
    game: str
    role: str
    join_seq: bytes = b""             # the JOIN's seq until the seat's next request (resent JOINs)


def _text(value: Any, field: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ProtocolError(field, f"a non-empty string of at most {limit} characters", describe(value))
    return value


def join_request(body: Any) -> tuple[str | None, str, str | None, str, bool]:
    """``(task, role, game, name, retry)`` of a JOIN body (PROTOCOL.md §3.1), checked;
    ProtocolError names what is wrong.

    >>> join_request({"task": None, "role": "attacker", "game": "g", "name": "me"})
    (None, 'Attacker', 'g', 'me', False)
    """
    if not isinstance(body, dict):
        raise ProtocolError("join", "a map {task, role, game, name}", describe(body))
    task = _text(body.get("task"), "join.task", 200, optional=True)
    role = _text(body.get("role"), "join.role", 20)
    game = _text(body.get("game"), "join.game", 200, optional=True)
    name = _text(body.get("name", "agent"), "join.name", 200)
    try:
        role = AgentRole.from_string(role).value  # type: ignore[arg-type]
    except ValueError:
        raise ProtocolError("join.role", "Attacker, Defender or Benign", describe(body.get("role"))) from None
    if not isinstance(body.get("catalog", False), bool):
        raise ProtocolError("join.catalog", "true or false", describe(body.get("catalog")))
    assert role is not None and name is not None
    return task, role, game, name, body.get("retry") is True


def quit_join_request(body: Any) -> bytes:
    """The JOIN seq a QUIT with an empty seat frame gives up (PROTOCOL.md §3.2:
    ``{"join": seq}``, the seq frame of that JOIN as sent); ProtocolError names what is wrong.

    >>> quit_join_request({"join": b"\\x00\\x01"})
    b'\\x00\\x01'
    """
    join = body.get("join") if isinstance(body, dict) else None
    if not isinstance(join, bytes) or not 0 < len(join) <= MAX_SEQ_BYTES:
        raise ProtocolError("quit.join", f"the JOIN's seq frame (1 to {MAX_SEQ_BYTES} bytes)",
                            describe(join if isinstance(body, dict) else body))
    return join


def world_from_ready(identity: bytes, body: Any, now: float, heartbeat: float, liveness: int,
                     ) -> tuple[WorldRecord, list[tuple[str, str, list[SeatRecord]]]]:
    """The world a READY body describes (PROTOCOL.md §3.4) and the games it hosts, checked
    whole before anything is registered; ValueError names what is wrong. ``heartbeat``:
    the broker's, for a world that names none; its expiry is ``liveness`` of its own."""
    try:
        if not isinstance(body, dict):
            raise ValueError(f"ready must be a map, not {type(body).__name__}")
        tasks = {
            str(name): TaskInfo(str(name), {str(r): int(n) for r, n in info["seats"].items()},
                                frozenset(str(r) for r in info["allowed_roles"]), str(info.get("hash", "")))
            for name, info in body["tasks"].items()
        }
        beat = float(body.get("heartbeat", heartbeat))
        capacity = int(body.get("capacity", 1000))
        name = body["world"]
    except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError) as error:
        raise ValueError(f"ready: {type(error).__name__}: {error}") from None
    if not 0 < beat <= 60:
        raise ValueError(f"ready.heartbeat {beat} s is out of range")
    if not isinstance(name, str) or not name or capacity < 1:
        raise ValueError("ready.world must be a non-empty string and ready.capacity positive")
    world = WorldRecord(identity, name, capacity, tasks, beat, expiry=now + beat * liveness, registered_at=now)
    return world, hosted_games(body.get("games", []))


def hosted_games(value: Any) -> list[tuple[str, str, list[SeatRecord]]]:
    """The games a READY lists (PROTOCOL.md §3.4), checked whole before anything is adopted:
    ``[(game, task, seats)]``. Each seat is ``[seat, role]`` or ``[seat, role, client,
    join_seq]``; ValueError names what is wrong.

    >>> [(game, task, [(s.seat, s.role, s.client) for s in seats])
    ...  for game, task, seats in hosted_games([{"game": "g", "task": "t", "seats": [["s1", "Attacker", b"c", b""]]}])]
    [('g', 't', [(b's1', 'Attacker', b'c')])]
    """
    if not isinstance(value, list):
        raise ValueError(f"ready.games must be a list, not {type(value).__name__}")
    games = []
    for game in value:
        if not isinstance(game, dict) or not isinstance(game.get("game"), str) or not isinstance(game.get("task"), str):
            raise ValueError("ready.games entries must be maps with string game and task")
        seats = []
        for entry in game.get("seats", []):
            if not isinstance(entry, list) or len(entry) not in (2, 4):
                raise ValueError("ready.games seats must be [seat, role] or [seat, role, client, join_seq]")
            seat, role, client, join_seq = (*entry, b"", b"")[:4]
            if isinstance(seat, str):
                seat = seat.encode()
            if not all(isinstance(item, bytes) for item in (seat, client, join_seq)) or not isinstance(role, str):
                raise ValueError("ready.games seats: seat, client and join_seq must be bytes, role a string")
            seats.append(SeatRecord(seat, client, b"", game["game"], role, join_seq))
        games.append((game["game"], game["task"], seats))
    return games


class Placement:
    """The broker's tables and the placement rule."""

    def __init__(self) -> None:
        self.worlds: dict[bytes, WorldRecord] = {}
        self.games: dict[str, GameRecord] = {}
        self.seats: dict[bytes, SeatRecord] = {}
        #: (client, JOIN seq) -> seat, while the seat has made no other request: a resent JOIN
        #: goes to the seat its first sending created instead of taking a second one.
        self.joins: dict[tuple[bytes, bytes], bytes] = {}
        #: seats whose world died -> why (the oldest forgotten first)
        self.lost: OrderedDict[bytes, str] = OrderedDict()
        self._nonce = os.urandom(3).hex()
        self._seat_numbers = itertools.count(1)
        self._game_numbers: dict[str, Any] = {}

    # ------------------------------------------------------------------ worlds
    def add_world(self, world: WorldRecord, games: Iterable[tuple[str, str, list[SeatRecord]]] = ()) -> None:
        """Register a world, adopting the games and seats it says it hosts: ``(game, task,
        seats)`` with each seat's client and pending JOIN seq (see :func:`hosted_games`)."""
        self.remove_world(world.identity, "it registered again")
        self.worlds[world.identity] = world
        for name, task, seats in games:
            info = world.tasks.get(task)
            record = GameRecord(name, task, world.identity, dict(info.seats) if info else {}, named=True)
            for seat in seats:
                seat.world, seat.game = world.identity, name
                self.seats[seat.seat] = seat
                self.lost.pop(seat.seat, None)
                if seat.join_seq:
                    self.joins[(seat.client, seat.join_seq)] = seat.seat
                record.taken[seat.role] = record.taken.get(seat.role, 0) + 1
            self.games[name] = record
            world.games.add(name)

    def conflict(self, world: WorldRecord, games: list[tuple[str, str, list[SeatRecord]]]) -> str | None:
        """Why a READY's games cannot be adopted: one is hosted by another live world (the
        same world under the same name, on a new connection, takes its own games back), one
        of its seats plays in another game, or its task is not one the world serves. None if
        they can: a stranger's READY must not take a live game or seat over.

        >>> placement = Placement()
        >>> placement.conflict(WorldRecord(b"w", "w", 1, {}, 1.0, 9.0, 0.0), [("g", "t", [])])
        'game g plays task t, which the world does not serve'
        """
        for name, task, seats in games:
            if task not in world.tasks:
                return f"game {name} plays task {task}, which the world does not serve"
            record = self.games.get(name)
            owner = self.worlds.get(record.world) if record is not None else None
            if owner is not None and owner.name != world.name:
                return f"game {name} is hosted by world {owner.name}"
            for seat in seats:
                held = self.seats.get(seat.seat)
                holder = self.worlds.get(held.world) if held is not None else None
                if held is not None and (held.game != name or (holder is not None and holder.name != world.name)):
                    return f"seat {seat.seat[:40]!r} plays in game {held.game}"
        return None

    def remove_world(self, identity: bytes, reason: str) -> WorldRecord | None:
        """Forget a world with its games and seats, remembering the seats as lost (``reason``);
        returns it (with its inflight table)."""
        world = self.worlds.pop(identity, None)
        if world is None:
            return None
        for name in world.games:
            self.games.pop(name, None)
        lost = self.lost
        for seat in [s for s, record in self.seats.items() if record.world == identity]:
            self._forget(seat)
            lost[seat] = reason
        while len(lost) > LOST_SEATS_KEPT:
            lost.popitem(last=False)
        return world

    def joined(self, seat: SeatRecord) -> None:
        """The seat made a request after its JOIN: a JOIN with that seq is no longer a resend."""
        self.joins.pop((seat.client, seat.join_seq), None)
        seat.join_seq = b""

    def _forget(self, seat: bytes) -> SeatRecord | None:
        record = self.seats.pop(seat, None)
        if record is not None and record.join_seq:
            self.joins.pop((record.client, record.join_seq), None)
        return record

    def tasks(self) -> dict[str, TaskInfo]:
        found: dict[str, TaskInfo] = {}
        for world in self.worlds.values():
            found.update(world.tasks)
        return found

    # ------------------------------------------------------------------ joins
    def resolve_task(self, task: str | None) -> TaskInfo:
        tasks = self.tasks()
        if not tasks:
            raise PlacementError(ErrorCode.NO_WORLD, "No world is registered with the broker yet.")
        if task is None:
            if len(tasks) == 1:
                return next(iter(tasks.values()))
            if "default" in tasks:
                return tasks["default"]
            raise PlacementError(ErrorCode.UNKNOWN_TASK,
                                 f"Name a task: this broker serves {', '.join(sorted(tasks))}.")
        info = tasks.get(task)
        if info is None:
            raise PlacementError(ErrorCode.UNKNOWN_TASK,
                                 f"Unknown task {task!r}: this broker serves {', '.join(sorted(tasks))}.")
        return info

    def place_join(self, client: bytes, task: str | None, role: str, game: str | None,
                   seq: bytes = b"") -> SeatRecord:
        """Choose the game and world for a new seat, and record it (``seq``: the JOIN's)."""
        info = self.resolve_task(task)
        if role not in info.allowed_roles:
            raise PlacementError(ErrorCode.ROLE_NOT_ALLOWED,
                                 f"Role {role} is not allowed in task {info.name} "
                                 f"(allowed: {', '.join(sorted(info.allowed_roles))}).")
        if game is not None:
            record = self.games.get(game)
            if record is None:
                record = self._new_game(info, game, named=True)
            elif record.task != info.name:
                raise PlacementError(ErrorCode.GAME_TASK_MISMATCH,
                                     f"Game {game!r} plays task {record.task}, not {info.name}.")
            elif record.free(role) <= 0:
                raise PlacementError(ErrorCode.GAME_FULL, f"Game {game!r} has no free {role} seat.")
        else:
            waiting = [g for g in self.games.values()
                       if g.task == info.name and not g.named and g.free(role) > 0]
            if waiting:
                record = max(waiting, key=lambda g: (g.occupied, -len(g.name)))
            else:
                record = self._new_game(info, self._game_name(info.name), named=False)
        seat = SeatRecord(f"{self._nonce}-{next(self._seat_numbers):x}".encode(), client,
                          record.world, record.name, role, seq)
        record.taken[role] = record.taken.get(role, 0) + 1
        self.seats[seat.seat] = seat
        if seq:
            self.joins[(client, seq)] = seat.seat
        return seat

    def _game_name(self, task: str) -> str:
        counter = self._game_numbers.setdefault(task, itertools.count(1))
        while True:
            name = f"{task}-{next(counter)}"
            if name not in self.games:
                return name

    def _new_game(self, info: TaskInfo, name: str, *, named: bool) -> GameRecord:
        candidates = [w for w in self.worlds.values() if info.name in w.tasks and len(w.games) < w.capacity]
        if not candidates:
            raise PlacementError(ErrorCode.NO_WORLD, f"No live world has room for a new {info.name} game.")
        world = min(candidates, key=lambda w: (w.load, w.registered_at))
        record = GameRecord(name, info.name, world.identity, dict(info.seats), named=named)
        self.games[name] = record
        world.games.add(name)
        return record

    # ------------------------------------------------------------------ leaving
    def release(self, seat: bytes) -> None:
        record = self._forget(seat)
        if record is None:
            return
        game = self.games.get(record.game)
        if game is not None:
            game.taken[record.role] = max(game.taken.get(record.role, 0) - 1, 0)

    def release_from(self, world: WorldRecord, body: Any) -> None:
        """A world's RELEASE (PROTOCOL.md §3.4): seats that left, games that closed (its own
        only: a world cannot free another's seats). ValueError if the body is not a map;
        entries of the wrong type are skipped."""
        if not isinstance(body, dict):
            raise ValueError(f"RELEASE must be a map, not {type(body).__name__}")
        seats, closed = body.get("seats", []), body.get("closed", [])
        for seat in seats if isinstance(seats, list) else []:
            seat_id = seat.encode() if isinstance(seat, str) else seat
            record = self.seats.get(seat_id) if isinstance(seat_id, bytes) else None
            if record is not None and record.world == world.identity:
                self.release(seat_id)
        for game in closed if isinstance(closed, list) else []:
            if isinstance(game, str) and game in world.games:
                self.close_game(game)

    def close_game(self, name: str) -> None:
        game = self.games.pop(name, None)
        if game is None:
            return
        world = self.worlds.get(game.world)
        if world is not None:
            world.games.discard(name)
        for seat in [s for s, record in self.seats.items() if record.game == name]:
            self._forget(seat)

    # ------------------------------------------------------------------ status
    def status(self, now: float) -> dict[str, Any]:
        return {
            "worlds": [{"world": w.name, "tasks": sorted(w.tasks), "capacity": w.capacity,
                        "games": len(w.games),
                        "seats": sum(1 for s in self.seats.values() if s.world == w.identity),
                        "inflight": len(w.inflight),
                        "alive_for": round(now - w.registered_at, 3)} for w in self.worlds.values()],
            "tasks": sorted(self.tasks()),
            "games": [{"game": g.name, "task": g.task, "world": self.worlds[g.world].name
                       if g.world in self.worlds else None, "seats": dict(g.taken), "size": dict(g.seats)}
                      for g in self.games.values()],
            "seats": len(self.seats),
        }
