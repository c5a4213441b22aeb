"""A game session's trace events (PROTOCOL.md §6), kept apart from its rules.

:class:`~world.session.GameSession` appends events to ``events`` (None turns them off) for
the world worker to publish; this mixin only shapes them.
"""

from __future__ import annotations

from typing import Any

from protocol import Action, PassAction, action_to_compact

from .seats import _PLAYING, _Seat
from .task import TaskConfig

__all__ = ["TraceEvents"]


class TraceEvents:
    """The event-shaping half of a session: join/quit/reset, step and episode events."""

    task: TaskConfig
    name: str
    episode: int
    events: list[dict[str, Any]] | None
    step_events: bool

    def _emit(self, kind: str, entry: _Seat, **fields: Any) -> None:
        assert self.events is not None
        if entry.script is not None:
            fields["scripted"] = True
        self.events.append({"kind": kind, "task": self.task.name, "game": self.name, "seat": entry.seat,
                            "role": entry.role.value, "episode": self.episode, **fields})

    def _emit_step(self, entry: _Seat, action: Action | PassAction, end: bool) -> None:
        """A step event; ``action`` is None for a PASS."""
        if self.events is not None and self.step_events:
            self._emit("step", entry, step=entry.steps, action=action_to_compact(action), reward=entry.reward,
                       end=end, end_reason=None if entry.status in _PLAYING else str(entry.status))

    def _emit_episode(self, entry: _Seat) -> None:
        if self.events is not None:
            self._emit("episode", entry, steps=entry.steps, end_reason=str(entry.status),
                       **{"return": entry.episode_return})
