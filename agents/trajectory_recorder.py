"""Record one agent's episode (states, actions, rewards) and append it to a JSON-lines file.

The in-memory shape is NetSecGame's trajectory (reference netsecgame.md §3.7, §10.3), so
files written here can be read by tools written for NetSecGame. Saving uses
:func:`protocol.jsonl.append_jsonl_line`, as the world's trajectories do: one ``os.write``
per trajectory, and a line an earlier crash cut short is ended first, so every complete
line stays readable. Save failures are logged rather than raised, because losing a log
line must never kill a training run.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import Action, AgentRole, GameState
from protocol.jsonl import append_jsonl_line

__all__ = ["TrajectoryRecorder"]

logger = logging.getLogger(__name__)

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def _as_dict(value: Any) -> Any:
    """Actions and states are stored in their dict forms; dicts pass through."""
    return value if isinstance(value, dict) else value.as_dict


class TrajectoryRecorder:
    """Collects ``n+1`` states, ``n`` actions and ``n`` rewards for one episode.

    >>> recorder = TrajectoryRecorder("MyAgent", AgentRole.Attacker)
    >>> recorder.get_trajectory()["trajectory"]
    {'states': [], 'actions': [], 'rewards': []}
    """

    def __init__(self, agent_name: str, agent_role: AgentRole | str) -> None:
        self.agent_name = agent_name
        self.agent_role = agent_role
        self._data: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        """Start a new, empty episode (the end reason is cleared too)."""
        role = self.agent_role
        self._data = {
            "trajectory": {"states": [], "actions": [], "rewards": []},
            "end_reason": None,
            # A plain string, so any serialiser (JSON, msgpack) writes "Attacker".
            "agent_role": role.value if isinstance(role, AgentRole) else role,
            "agent_name": self.agent_name,
        }

    def add_initial_state(self, state: GameState | dict[str, Any]) -> None:
        """Record the episode's first state (s0)."""
        self._data["trajectory"]["states"].append(_as_dict(state))

    def add_step(
        self,
        action: Action | dict[str, Any],
        reward: float,
        next_state: GameState | dict[str, Any],
        end_reason: Any = None,
    ) -> None:
        """Record one step; a non-empty ``end_reason`` (e.g. ``AgentStatus.Success``) is
        stored as its string form, ``"AgentStatus.Success"``."""
        trajectory = self._data["trajectory"]
        if not trajectory["states"]:
            logger.warning(
                "Trajectory of %s: step added before any initial state; "
                "the trajectory will have as many states as actions",
                self.agent_name,
            )
        trajectory["actions"].append(_as_dict(action))
        trajectory["rewards"].append(reward)
        trajectory["states"].append(_as_dict(next_state))
        if end_reason:
            self._data["end_reason"] = (
                end_reason if isinstance(end_reason, str) else str(end_reason)
            )

    def get_trajectory(self) -> dict[str, Any]:
        """The live trajectory dict (not a copy): ``{"trajectory": {"states", "actions",
        "rewards"}, "end_reason", "agent_role", "agent_name"}``."""
        return self._data

    def default_filename(self) -> str:
        """``<YYYY-MM-DD>_<name>_<role>.jsonl``, with the role formatted as upstream does
        (``AgentRole.Attacker`` for an AgentRole) and unsafe characters replaced by ``_``."""
        name = _UNSAFE_FILE_CHARS.sub("_", str(self.agent_name))
        role = _UNSAFE_FILE_CHARS.sub("_", f"{self.agent_role}")
        return f"{datetime.now():%Y-%m-%d}_{name}_{role}.jsonl"

    def save_to_file(
        self, location: str | os.PathLike[str] = "./logs/trajectories", filename: str | None = None
    ) -> Path | None:
        """Append the trajectory as one JSON line to ``location/filename``.

        ``filename`` defaults to :meth:`default_filename`; ``.jsonl`` is added when
        missing. Returns the file's path, or None when saving failed (the error is
        logged, not raised).
        """
        if filename is None:
            filename = self.default_filename()
        elif not filename.endswith(".jsonl"):
            filename = f"{filename}.jsonl"
        path = Path(location) / filename
        try:
            append_jsonl_line(path, self._data)
        except (OSError, TypeError, ValueError) as error:
            logger.error(
                "Failed to store the trajectory of %s in %s: %s", self.agent_name, path, error
            )
            return None
        logger.info("Trajectory of %s stored in %s", self.agent_name, path)
        return path
