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
    PASS,
    Action,
    ActionType,
    AgentRole,
    AgentStatus,
    ErrorCode,
    GameState,
    GameStatus,
    Observation,
    PassAction,
    ProtocolError,
)

from .catalog import all_actions_json, catalog_of
from .trajectory import Trajectory

if TYPE_CHECKING:
    from .game_world import GameWorld
    from .rewards import RewardFunction
    from .scripted import ScriptedAgent
    from .task import TaskConfig

__all__ = [
    "ENDED_INFO",
    "MALFORMED_MESSAGE",
    "HistoryRecord",
    "Reply",
    "bad_reply",
    "busy_reply",
    "finish_records",
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


@attrs.frozen
class HistoryRecord:
    """One game step of a seat, as its action history keeps it (rl-environments.md §2.6).

    ``step`` counts the seat's steps in the episode (1, 2, ...); ``tick`` is the game's tick
    when it acted (:mod:`world.scripted`); ``action`` an Action or PASS; ``changed`` whether
    the step gave the seat a new state; ``status`` its status after the step (the final
    one for the episode's last record); ``reward`` what the step earned, the end-of-episode
    reward included on the last record (so the rewards add up to the episode's return);
    ``breakdown`` the reward's components for a seat with a reward function, else None."""

    step: int
    tick: int
    action: Action | PassAction
    changed: bool
    status: AgentStatus
    reward: float
    breakdown: dict[str, float] | None = attrs.field(default=None, hash=False)

    @property
    def passed(self) -> bool:
        return self.action is PASS


@attrs.define(eq=False)
class _Held:
    kind: str                # "join", "step", "reset"
    request: Any
    deadline: float
    action: Action | PassAction | None = None
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
    ref: str | None = None        # the agents: entry it plays (scripted, or a proxy)
    script: ScriptedAgent | None = None   # a scripted seat's agent (None: an external seat)
    reward_fn: RewardFunction | None = None   # None: NetSecGame's rewards, no breakdown
    breakdown: dict[str, float] | None = None  # the last step's reward components
    #: this episode's history, rows of HistoryRecord's fields (made into records on demand)
    records: list[list[Any]] = attrs.Factory(list)
    last_records: list[list[Any]] | None = None
    #: [ref, step, compact action or None, reward] of scripted turns not yet reported
    scripted_seen: list[list[Any]] = attrs.Factory(list)
    bystander: bool = False       # its episode ended because every attacker's did
    final_part: float = 0         # what the end-of-episode assignment added


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
        message["all_actions"] = all_actions_json(world)
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


def finish_records(entry: _Seat) -> None:
    """The episode's last history record gets the final status and reward: a bystander's
    end-of-episode reward is added to it, an ended step's record takes the step's total."""
    if not entry.records:
        return
    last = entry.records[-1]
    last[4] = entry.status
    if entry.bystander:
        last[5] = last[5] + entry.reward
        if entry.breakdown is not None and last[6] is not None:
            last[6] = {key: last[6].get(key, 0.0) + value for key, value in entry.breakdown.items()}
    else:
        last[5] = entry.reward
        if entry.breakdown is not None:
            last[6] = dict(entry.breakdown)
