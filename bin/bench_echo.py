"""The echo world of ``arena bench``: a world worker that does no game work.

It is a real :class:`~world.worker.WorldWorker` (same DEALER socket, READY, HEARTBEAT,
RELEASE and REPLY framing, same batching) whose :class:`~world.game_host.GameHost` is
swapped for an :class:`EchoHost`: every STEP, RESET and JOIN gets a canned reply of
realistic size, pre-encoded from a real game (an observation ten steps into an
episode), and nothing is decoded or played. Episodes never end and no trace events are
made. A figure measured against it is what the sockets, the broker and the client allow,
so each real figure can also be read as a fraction of that ceiling.

``arena world --echo`` starts one (hidden option; ``arena bench`` uses it through
:class:`~bin.stack.Stack`).

>>> from protocol import PROTOCOL_FRAME, Command, decode_reply, pack, seq_bytes
>>> from world import load_task
>>> host = EchoHost({"default": load_task()}, "w-echo")
>>> join = pack({"task": "default", "role": "Attacker", "game": "g1", "name": "me"})
>>> [reply] = host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"agent", Command.JOIN.frame,
...                         b"s-1", seq_bytes(1), join], now=0.0)
>>> body = decode_reply(reply[6])
>>> body.status.name, body.message["seat"], body.message["world"], sorted(host.games)
('CREATED', 's-1', 'w-echo', ['g1'])
>>> [step] = host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"agent", Command.STEP.frame,
...                        b"s-1", seq_bytes(2), b"\\x90"], now=0.0)
>>> decode_reply(step[6]).observation.end
False
"""

from __future__ import annotations

import logging
import random
from typing import Any

import attrs

from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    Action,
    ActionType,
    AgentInfo,
    AgentRole,
    Command,
    ErrorCode,
    GameStatus,
    Observation,
    ProtocolError,
    encode_reply,
    pack,
    unpack,
)
from world import GameSession, TaskConfig
from world.worker import WorldWorker

__all__ = ["EchoHost", "use_echo_host"]

log = logging.getLogger(__name__)

_JOIN, _STEP, _BATCH, _RESET, _QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                       Command.RESET.frame, Command.QUIT.frame)
_RELEASE, _REPLY = Command.RELEASE.frame, Command.REPLY.frame
#: Steps played into a real episode before its observation is canned (replies of mid-episode size).
CANNED_STEPS = 10


@attrs.frozen
class Canned:
    """The pre-encoded replies of one task."""

    join_observation: Observation
    join_message: dict[str, Any]
    step: bytes
    reset: bytes


def canned_replies(task: TaskConfig, seed: int = 42) -> Canned:
    """Play a real game of ``task`` a few seeded random steps and keep its replies' bodies."""
    from agents.policies import random_attacker

    session = GameSession(task, seed=seed, name="echo")
    role = next(iter(task.start), AgentRole.Attacker)
    [joined] = session.handle("echo", Action(ActionType.JoinGame, {"agent_info": AgentInfo("echo", role)}), 0.0)
    if joined.observation is None:
        raise ValueError(f"task {task.name}: a lone {role.value} cannot start a game, so it cannot be echoed")
    message = joined.message if isinstance(joined.message, dict) else {}
    observation, rng = joined.observation, random.Random(seed)
    for _ in range(CANNED_STEPS):
        action = random_attacker(observation, rng)
        if action is None:
            break
        replies = session.step("echo", action, 0.0)
        if not replies or replies[0].observation is None or replies[0].observation.end:
            break
        observation = replies[0].observation
    step = encode_reply(GameStatus.OK, Observation(observation.state, observation.reward, False, {}))
    [reset] = session.reset("echo", 0.0)
    reset_message = reset.message if isinstance(reset.message, dict) else None
    reset_body = encode_reply(GameStatus.RESET_DONE, reset.observation, reset_message)
    return Canned(joined.observation, message, step, reset_body)


@attrs.define(eq=False)
class _EchoSeat:
    text: str
    role: str
    game: str
    canned: Canned
    client: bytes = b""
    join_seq: bytes = b""


class EchoHost:
    """A :class:`~world.game_host.GameHost` look-alike (same methods and attributes, as the
    worker uses them) that answers from canned replies."""

    def __init__(self, tasks: dict[str, TaskConfig], name: str, *, seed: int = 42, capacity: int = 1000) -> None:
        self.tasks = tasks
        self.name = name
        self.capacity = capacity
        self.stopping = False
        self.games: dict[str, dict[bytes, _EchoSeat]] = {}
        self.game_tasks: dict[str, str] = {}
        self.seats: dict[bytes, _EchoSeat] = {}
        self.timers: list[tuple[float, int, Any]] = []   # never any: nothing is held
        self.released: list[str | bytes] = []
        self.closed: list[str] = []
        self.dirty: set[Any] = set()                     # never any: no trace events
        self._canned = {task_name: canned_replies(task, seed) for task_name, task in tasks.items()}
        self._world_frame = name.encode()
        self._quit_body = encode_reply(GameStatus.OK, None, {"message": "Agent quit the game."})

    def hosted(self) -> list[dict[str, Any]]:
        return [{"game": game, "task": self.game_tasks[game],
                 "seats": [[seat.text, seat.role, seat.client, seat.join_seq] for seat in seats.values()]}
                for game, seats in self.games.items()]

    def request(self, frames: list[bytes], now: float) -> list[list[bytes]]:
        """The reply to one REQUEST message: canned, batched as a real world batches."""
        if len(frames) < 7:
            return []
        client, command = frames[2], frames[3]
        if command == _BATCH:
            inner = frames[5]
            out = [PROTOCOL_FRAME, _REPLY, client, _BATCH, self._world_frame, inner]
            for index in range(6, len(frames) - 2, 3):
                seat, seq = frames[index], frames[index + 1]
                out += (seat, seq, self._body(inner, seat))
            return [out]
        seat, seq = frames[4], frames[5]
        if command == _JOIN:
            body = self._join(client, seat, seq, frames[6])
        elif command == _QUIT:
            body = self._quit(seat)
        else:
            body = self._body(command, seat)
        return [[PROTOCOL_FRAME, _REPLY, client, command, seat, seq, body]]

    def _body(self, command: bytes, seat: bytes) -> bytes:
        entry = self.seats.get(seat)
        if entry is None:
            return encode_reply(GameStatus.BAD_REQUEST, None, {"message": "Echo world: no such seat."},
                                ErrorCode.GAME_LOST)
        entry.join_seq = b""
        return entry.canned.step if command == _STEP else entry.canned.reset

    def _join(self, client: bytes, seat: bytes, seq: bytes, body: bytes) -> bytes:
        try:
            request = unpack(body, MAX_BODY_BYTES)
            task, game, role = request["task"], request["game"], request["role"]
            canned = self._canned[task]
            text = seat.decode()
        except (ProtocolError, KeyError, TypeError, UnicodeDecodeError) as error:
            self.released.append(seat.decode(errors="replace"))
            return encode_reply(GameStatus.BAD_REQUEST, None, {"message": f"Echo world: bad join ({error})."},
                                ErrorCode.MALFORMED)
        entry = self.seats[seat] = _EchoSeat(text, role, game, canned, client, seq)
        self.games.setdefault(game, {})[seat] = entry
        self.game_tasks[game] = task
        message = {**canned.join_message, "seat": text, "world": self.name, "game": game, "task": task}
        return encode_reply(GameStatus.CREATED, canned.join_observation, message)

    def _quit(self, seat: bytes) -> bytes:
        entry = self.seats.pop(seat, None)
        if entry is None:
            return encode_reply(GameStatus.BAD_REQUEST, None, {"message": "Echo world: no such seat."},
                                ErrorCode.GAME_LOST)
        self.released.append(entry.text)
        seats = self.games.get(entry.game, {})
        seats.pop(seat, None)
        if not seats:
            self.games.pop(entry.game, None)
            self.game_tasks.pop(entry.game, None)
            self.closed.append(entry.game)
        return self._quit_body

    def run_timers(self, now: float) -> list[list[bytes]]:
        return []

    def release_message(self) -> list[bytes]:
        message = [PROTOCOL_FRAME, _RELEASE, pack({"seats": self.released, "closed": self.closed})]
        self.released, self.closed = [], []
        return message

    def take_events(self) -> list[tuple[bytes, list[dict[str, Any]]]]:
        return []

    def drop_games(self, reason: str) -> list[list[bytes]]:
        log.info("echo world %s: dropping %d games: %s", self.name, len(self.games), reason)
        self.games.clear()
        self.game_tasks.clear()
        self.seats.clear()
        self.released, self.closed = [], []
        return []


def use_echo_host(worker: WorldWorker, seed: int = 42) -> WorldWorker:
    """Make ``worker`` an echo world (before :meth:`~world.worker.WorldWorker.run`)."""
    worker._host = EchoHost(worker.tasks, worker.name, seed=seed, capacity=worker.capacity)  # type: ignore[assignment]
    return worker
