"""A game session's records and reply shapes: the seat and held-request records, the
:class:`Reply` a request gets (shaped as NetSecGame's, reference netsecgame.md §2.2, §3),
the join, reset and error replies, and agent-name sanitising.

:class:`~world.session.GameSession` owns the rules; this module only holds the shapes it
fills in, so it has no game logic and no I/O.

>>> Reply("seat-1", None, GameStatus.BAD_REQUEST, None, {"message": "no"}).as_netsecgame_dict()
{'status': 'GameStatus.BAD_REQUEST', 'observation': None, 'message': {'message': 'no'}}
>>> sanitize_agent_name("Alice & Bob!")
'Alice_Bob'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import attrs

from protocol import (
    Action,
    ActionType,
    AgentRole,
    AgentStatus,
    ErrorCode,
    GameState,
    GameStatus,
    Observation,
    ProtocolError,
)
from protocol.action_table import ActionTable

from .catalog import catalog_of
from .trajectory import Trajectory

if TYPE_CHECKING:
    from .game_world import GameWorld
    from .task import TaskConfig

__all__ = [
    "ENDED_INFO",
    "MALFORMED_MESSAGE",
    "Reply",
    "bad_reply",
    "busy_reply",
    "malformed_reply",
    "not_joined_reply",
    "reset_reply",
    "sanitize_agent_name",
    "welcome_reply",
]

MALFORMED_MESSAGE = "Bad request received: Malformed Action"
ENDED_INFO = "Episode ended. Request reset for starting new episode."
_ACTION_NAMES = [str(action_type) for action_type in ActionType]
_PLAYING = (AgentStatus.Playing, AgentStatus.PlayingWithTimeout)


@attrs.frozen
class Reply:
    """One reply to one request. ``request`` echoes the caller's tag for it."""

    seat: Hashable
    request: Any
    status: GameStatus
    observation: Observation | None = None
    message: dict[str, Any] | str | None = None
    code: ErrorCode | None = None

    def as_netsecgame_dict(self) -> dict[str, Any]:
        """NetSecGame's reply object, without ``to_agent`` (the gateway adds it)."""
        result: dict[str, Any] = {"status": str(self.status)}
        if self.observation is not None:
            state, reward, end, info = self.observation
            result["observation"] = {"state": state.as_dict, "reward": reward, "end": end, "info": info}
        elif self.status is GameStatus.BAD_REQUEST and isinstance(self.message, dict):
            result["observation"] = None
        if self.message is not None:
            result["message"] = _message_as_json(self.message)
        return result


def _message_as_json(message: Any) -> Any:
    if isinstance(message, dict):
        return {key: (value.as_dict() if isinstance(value, Trajectory) else value)
                for key, value in message.items()}
    return message


def sanitize_agent_name(name: str, fallback: str = "agent") -> str:
    """Letters, digits, ``_`` and ``-`` only; runs of ``_`` collapsed; at most 200 chars."""
    cleaned = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_-]", "_", str(name))).strip("_")[:200]
    return cleaned or fallback


@attrs.define(eq=False)
class _Held:
    kind: str                # "join", "step", "reset"
    request: Any
    deadline: float
    action: Action | None = None
    request_trajectory: bool = False
    done: bool = False       # a reset that ran and waits for the game to start


@attrs.define(eq=False)
class _Seat:
    seat: Hashable
    name: str
    role: AgentRole
    state: GameState
    goal: GameState
    trajectory: Trajectory
    lease_deadline: float
    status: AgentStatus = AgentStatus.Playing
    steps: int = 0
    reward: float = 0
    ended: bool = False
    told_end: bool = True     # False while an end the agent did not cause is unannounced
    history: list[Action] = attrs.Factory(list)
    repeats: Counter[Any] = attrs.Factory(Counter)
    reset_vote: tuple[int | None, bool] | None = None
    held: _Held | None = None
    last_trajectory: Trajectory | None = None
    episode_return: float = 0
    wants_catalog: bool = False   # join and reset replies carry the game's catalog


# ---------------------------------------------------------------------- replies that start play
def welcome_reply(task: TaskConfig, world: GameWorld, entry: _Seat, held: _Held) -> Reply:
    """The CREATED reply to a held JoinGame, once the game starts."""
    config = task.roles[entry.role]
    message: dict[str, Any] = {
        "message": f"Welcome {entry.name}, registred as {entry.role}",
        "max_steps": config.max_steps,
        "goal_description": world.describe_goal(config.goal_description),
        "actions": list(_ACTION_NAMES),
        "configuration_hash": task.configuration_hash,
    }
    if task.all_actions:
        message["all_actions"] = ActionTable(catalog_of(world)).as_all_actions_json(catalog_of(world))
    if entry.wants_catalog:
        message["catalog"] = catalog_of(world).to_wire()
    return Reply(entry.seat, held.request, GameStatus.CREATED, Observation(entry.state, 0, False, {}), message)


def reset_reply(task: TaskConfig, world: GameWorld, entry: _Seat, held: _Held) -> Reply:
    """The RESET_DONE reply to a held ResetGame, once the reset ran and the game started."""
    config = task.roles[entry.role]
    message: dict[str, Any] = {
        "message": "Resetting Game and starting again.",
        "max_steps": config.max_steps,
        "goal_description": world.describe_goal(config.goal_description),
        "configuration_hash": task.configuration_hash,
    }
    if held.request_trajectory and entry.last_trajectory is not None:
        message["last_trajectory"] = entry.last_trajectory
    if entry.wants_catalog:
        message["catalog"] = catalog_of(world).to_wire()
    return Reply(entry.seat, held.request, GameStatus.RESET_DONE,
                 Observation(entry.state, 0, False, {}), message)


# ---------------------------------------------------------------------- error replies
def bad_reply(seat: Hashable, request: Any, code: ErrorCode, text: str) -> Reply:
    return Reply(seat, request, GameStatus.BAD_REQUEST, None, {"message": text}, code)


def malformed_reply(seat: Hashable, request: Any, error: ProtocolError) -> Reply:
    return Reply(seat, request, GameStatus.BAD_REQUEST, None,
                 {"message": MALFORMED_MESSAGE, "reason": str(error)}, ErrorCode.MALFORMED)


def not_joined_reply(seat: Hashable, request: Any) -> Reply:
    return bad_reply(seat, request, ErrorCode.NOT_JOINED,
                     "This seat has not joined the game (or has left it); send JoinGame first.")


def busy_reply(seat: Hashable, request: Any, entry: _Seat) -> Reply:
    assert entry.held is not None
    return bad_reply(seat, request, ErrorCode.BUSY,
                     f"A {entry.held.kind} request of this seat is still waiting for its reply.")
