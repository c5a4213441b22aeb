"""Per-agent trajectories: kept cheaply in memory, rendered in NetSecGame's shape on demand.

The shape (reference netsecgame.md §3.7)::

    {"trajectory": {"states": [...], "actions": [...], "rewards": [...]},
     "end_reason": null | "AgentStatus.X", "agent_role": "Attacker", "agent_name": "..."}

n actions, n rewards and n + 1 states. States and actions are kept as the immutable
objects the game already made (no copies, no dicts) until someone asks for the dict
form. Files get one whole line per write on an O_APPEND descriptor (:mod:`protocol.jsonl`);
a kill can cut a long write short, but the next append ends that line first, so every
complete line stays readable and readers skip and report the cut one.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from protocol import Action, AgentRole, AgentStatus, GameState
from protocol.jsonl import append_jsonl_line

__all__ = ["Trajectory", "append_line", "trajectory_file_name"]


class Trajectory:
    """One agent's episode so far."""

    __slots__ = ("actions", "agent_name", "agent_role", "end_reason", "rewards", "states")

    def __init__(self, agent_name: str, agent_role: AgentRole, initial_state: GameState) -> None:
        self.agent_name = agent_name
        self.agent_role = agent_role
        self.states: list[GameState] = [initial_state]
        self.actions: list[Action] = []
        self.rewards: list[float] = []
        self.end_reason: AgentStatus | None = None

    def add_step(self, action: Action, reward: float, state: GameState) -> None:
        self.actions.append(action)
        self.rewards.append(reward)
        self.states.append(state)

    def add_final_reward(self, reward: float) -> None:
        """A reward that came with no action of its own: a defender's or benign agent's
        end-of-episode reward, told on its next request after the attackers finished. It
        goes on the last step, so the trajectory's rewards add up to what the agent got."""
        if self.rewards:
            self.rewards[-1] += reward

    def __len__(self) -> int:
        return len(self.actions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trajectory": {
                "states": [state.as_dict for state in self.states],
                "actions": [action.as_dict for action in self.actions],
                "rewards": list(self.rewards),
            },
            "end_reason": None if self.end_reason is None else str(self.end_reason),
            "agent_role": self.agent_role.value,
            "agent_name": self.agent_name,
        }


def trajectory_file_name(agent_name: str, agent_role: AgentRole, day: datetime.date | None = None) -> str:
    """``<YYYY-MM-DD>_<name>_AgentRole.<Role>.jsonl``, as NetSecGame names them (without
    its trimming of trailing j/s/o/n/l letters from the name)."""
    day = day or datetime.date.today()
    return f"{day.isoformat()}_{agent_name}_{agent_role}.jsonl"


def append_line(path: str | os.PathLike[str], record: Any) -> None:
    """Append one compact JSON line through :func:`protocol.jsonl.append_jsonl_line`:
    one write on an O_APPEND descriptor, after ending a line an earlier crash cut short."""
    append_jsonl_line(path, record, compact=True)
