"""The policy of ``arena bench``: random episodes recorded once, replayed by every client.

NetSecGame's benchmark agent plays a uniformly random valid action each step. Choosing
one costs the client more than the server's step (``generate_valid_actions`` and a sort,
~45 µs here), and how much depends on which states the client happened to see before
(its state cache): a bench that chose live would measure the client and the order of
the cases. So the episodes are played once in process by that random agent (seeded),
and the clients replay them: the server sees a random agent's actions, and the client
spends nothing choosing. Without a global defender or dynamic addresses the game is
deterministic, so a replay reaches the same states; if it did not, the recorded actions
stay valid ones (a lone attacker's knowledge only grows), cycled to the episode's end.

>>> from world import load_task
>>> script = record_script(load_task(), seed=1, episodes=2)
>>> len(script), all(len(episode) > 0 for episode in script)
(2, True)
>>> cursor = Cursor(script, 1)
>>> cursor.next() is script[1][0], cursor.next() is script[1][1 % len(script[1])]
(True, True)
"""

from __future__ import annotations

import random

import attrs

from agents.policies import action_sort_key
from agents.utils import generate_valid_actions
from protocol import Action, AgentRole
from world import GameSession, TaskConfig

__all__ = ["POLICY", "SCRIPT_EPISODES", "Cursor", "Script", "ScriptError", "record_script"]

#: Episodes recorded (each env starts at its own one and moves on to the next).
SCRIPT_EPISODES = 64
POLICY = "uniformly random valid actions, recorded in process and replayed (no choosing on the client)"

Script = tuple[tuple[Action, ...], ...]


class ScriptError(RuntimeError):
    """The task cannot be scripted (its attacker cannot start a game alone, or has no action)."""


def record_script(task: TaskConfig, seed: int = 42, episodes: int = SCRIPT_EPISODES) -> Script:
    """``episodes`` episodes of a seeded random attacker playing ``task`` alone."""
    session = GameSession(task, seed=seed, name="bench-script")
    [joined] = session.join("script", "script", AgentRole.Attacker, 0.0)
    if joined.observation is None:
        raise ScriptError(f"a lone attacker cannot start a game of task {task.name}")
    observation, rng = joined.observation, random.Random(seed)
    recorded: list[tuple[Action, ...]] = []
    for _ in range(episodes):
        actions: list[Action] = []
        while not observation.end and len(actions) < 10_000:
            valid = sorted(generate_valid_actions(observation.state), key=action_sort_key)
            if not valid:
                raise ScriptError(f"task {task.name}: the attacker has no valid action")
            actions.append(rng.choice(valid))
            [reply] = session.step("script", actions[-1], 0.0)
            observation = reply.observation
        recorded.append(tuple(actions))
        [reset] = session.reset("script", 0.0)
        observation = reset.observation
    return tuple(recorded)


@attrs.define
class Cursor:
    """Where one client (or env) is in the script: the next action, and a new episode
    when the server says the last one ended."""

    script: Script
    episode: int = 0
    position: int = 0

    def next(self) -> Action:
        actions = self.script[self.episode % len(self.script)]
        action = actions[self.position % len(actions)]
        self.position += 1
        return action

    def new_episode(self) -> None:
        self.episode += 1
        self.position = 0
