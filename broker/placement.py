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
from collections.abc import Iterable
from typing import Any

import attrs

from protocol import ErrorCode

__all__ = ["GameRecord", "Placement", "PlacementError", "SeatRecord", "TaskInfo", "WorldRecord"]


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


class Placement:
    """The broker's tables and the placement rule."""

    def __init__(self) -> None:
        self.worlds: dict[bytes, WorldRecord] = {}
        self.games: dict[str, GameRecord] = {}
        self.seats: dict[bytes, SeatRecord] = {}
        self._nonce = os.urandom(3).hex()
        self._seat_numbers = itertools.count(1)
        self._game_numbers: dict[str, Any] = {}

    # ------------------------------------------------------------------ worlds
    def add_world(self, world: WorldRecord, games: Iterable[dict[str, Any]] = ()) -> None:
        """Register a world, adopting the games and seats it says it hosts."""
        self.remove_world(world.identity)
        self.worlds[world.identity] = world
        for game in games:
            name, task = str(game["game"]), str(game["task"])
            info = world.tasks.get(task)
            record = GameRecord(name, task, world.identity, dict(info.seats) if info else {}, named=True)
            for seat, role in game.get("seats", []):
                seat_id = seat.encode() if isinstance(seat, str) else bytes(seat)
                self.seats[seat_id] = SeatRecord(seat_id, b"", world.identity, name, str(role))
                record.taken[str(role)] = record.taken.get(str(role), 0) + 1
            self.games[name] = record
            world.games.add(name)

    def remove_world(self, identity: bytes) -> WorldRecord | None:
        """Forget a world with its games and seats; returns it (with its inflight table)."""
        world = self.worlds.pop(identity, None)
        if world is None:
            return None
        for name in world.games:
            self.games.pop(name, None)
        for seat in [s for s, record in self.seats.items() if record.world == identity]:
            del self.seats[seat]
        return world

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

    def place_join(self, client: bytes, task: str | None, role: str, game: str | None) -> SeatRecord:
        """Choose the game and world for a new seat, and record it."""
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
                          record.world, record.name, role)
        record.taken[role] = record.taken.get(role, 0) + 1
        self.seats[seat.seat] = seat
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
        record = self.seats.pop(seat, None)
        if record is None:
            return
        game = self.games.get(record.game)
        if game is not None:
            game.taken[record.role] = max(game.taken.get(record.role, 0) - 1, 0)

    def close_game(self, name: str) -> None:
        game = self.games.pop(name, None)
        if game is None:
            return
        world = self.worlds.get(game.world)
        if world is not None:
            world.games.discard(name)
        for seat in [s for s, record in self.seats.items() if record.game == name]:
            del self.seats[seat]

    # ------------------------------------------------------------------ status
    def status(self, now: float) -> dict[str, Any]:
        return {
            "worlds": [{"world": w.name, "tasks": sorted(w.tasks), "capacity": w.capacity,
                        "games": len(w.games),
                        "seats": sum(1 for s in self.seats.values() if s.world == w.identity),
                        "alive_for": round(now - w.registered_at, 3)} for w in self.worlds.values()],
            "tasks": sorted(self.tasks()),
            "games": [{"game": g.name, "task": g.task, "world": self.worlds[g.world].name
                       if g.world in self.worlds else None, "seats": dict(g.taken)}
                      for g in self.games.values()],
            "seats": len(self.seats),
        }
