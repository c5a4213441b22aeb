"""The global defender: NetSecGame's stochastic, non-agent detector (reference §8).

It looks at every agent's game action right after the world step (only when the goal
was not reached on that step) and may detect it, which ends the agent's episode with
status Fail. Detection is possible only from an episode's fifth action on, and only
for suspicious windows; then a roll on the game's RNG decides.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

from protocol import Action, ActionType

__all__ = ["DETECTION_RULES", "WINDOW", "DetectionRule", "action_key", "is_detected"]

#: Window size: the last five actions, the current one included.
WINDOW = 5


@attrs.frozen
class DetectionRule:
    probability: float
    window_ratio: float
    consecutive: int | None = None  # longest run of this type in the window
    repeats: int | None = None      # exact repeats of this action in the episode


DETECTION_RULES: dict[ActionType, DetectionRule] = {
    ActionType.ScanNetwork: DetectionRule(0.05, 0.25, consecutive=2),
    ActionType.FindServices: DetectionRule(0.075, 0.3, consecutive=3),
    ActionType.ExploitService: DetectionRule(0.1, 0.25, repeats=2),
    ActionType.FindData: DetectionRule(0.025, 0.5, repeats=2),
    ActionType.ExfiltrateData: DetectionRule(0.025, 0.25, consecutive=2),
    # BlockIP is listed upstream (0.01, ratio 1) but never detected (issue #471).
}


def action_key(action: Action) -> tuple[Any, ...]:
    """A hashable key equal exactly when the actions' dict forms are equal (a Data
    parameter is compared on all five fields, as upstream compares dicts)."""
    items = []
    for name, value in action.parameters.items():
        if value.__class__.__name__ == "Data":
            value = (value.owner, value.id, value.size, value.type, value.content)
        items.append((name, value))
    return (action.action_type, tuple(sorted(items, key=lambda item: item[0])))


def is_detected(history: Sequence[Action], action: Action, repeats: int, rng: random.Random) -> bool:
    """Whether ``action`` is detected.

    ``history`` is the episode's earlier actions (not including ``action``); ``repeats``
    how many of the episode's actions, ``action`` included, equal it exactly.
    """
    rule = DETECTION_RULES.get(action.action_type)
    if rule is None or len(history) + 1 < WINDOW:
        return False
    action_type = action.action_type
    window = [*history[-(WINDOW - 1):], action]
    same = [entry.action_type is action_type for entry in window]
    ratio = sum(same) / WINDOW
    if rule.consecutive is not None:
        run = longest = 0
        for flag in same:
            run = run + 1 if flag else 0
            longest = max(longest, run)
        suspicious = ratio >= rule.window_ratio or longest >= rule.consecutive
    else:
        suspicious = ratio >= rule.window_ratio or repeats >= (rule.repeats or 0)
    return suspicious and rng.random() < rule.probability
