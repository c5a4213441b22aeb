"""``arena demo``: a stack of its own, every seat of one named game played by a scripted
policy, live figures, a summary, and everything stopped.

Every external seat the task's game has (``arena.seats``: attackers, defenders, benign
agents) is played from this one process, over one :class:`~agents.ParallelBaseAgent`
socket, **lock-step in a fixed order**: each round, every seat still playing chooses its
action from its own ``random.Random`` (seeded from ``--seed`` and its index) and the
round's steps go to the world as one batch, handled in seat order. Two client processes
stepping on their own would interleave as the scheduler pleases, and a defender's block
would land before or after a given attack step from run to run; in lock-step the same
``--seed`` plays the same episodes (the game itself is seeded from ``--seed`` and its
name, DESIGN §3). The task's scripted agents (``agents:``) play inside the world and need
no seat here.

Episodes end the game's way: a seat whose episode ended has its reply held until every
seat's has (PROTOCOL.md §4). The world answers a batch with one message carrying every
reply it released, so after each round the seats still waiting are exactly those the game
holds; they sit out until the episode ends. Then every seat resets (no seed: the game's
RNG goes on, as NetSecGame's does).

Ctrl-C or SIGTERM stops at once: the stack goes down first and the client's seats with it
(no QUIT to send to a stack that is gone), the summary so far is printed, marked
interrupted, and the exit status is 130 (143 for SIGTERM).
"""

from __future__ import annotations

import gc
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import click

from agents.policies import POLICIES
from protocol import PASS, AgentRole, AgentStatus, Observation
from world import TaskConfig, TaskConfigError, load_task

from .signals import Interrupted, ignore_interrupts, interrupts
from .stack import Stack

__all__ = ["DEMO_GAME", "MAX_DEMO_SEATS", "DemoError", "DemoSummary", "EpisodeRecord", "SeatResult", "demo",
           "play_demo", "seat_plan"]

#: The named game the demo plays in (its RNG: derived from ``--seed`` and this name).
DEMO_GAME = "demo"
#: A game with more seats is not a demo.
MAX_DEMO_SEATS = 64
#: Seconds to wait for any one reply of the demo's own stack.
REPLY_TIMEOUT = 60.0

_ROLE_ORDER = (AgentRole.Attacker, AgentRole.Defender, AgentRole.Benign)
_ROLE_POLICIES = {AgentRole.Defender: "defender", AgentRole.Benign: "benign"}
#: How the start line names a seat's policy.
_SEAT_LABELS = {"kill-chain": "kill-chain attacker", "random": "random attacker", "defender": "blocking defender",
                "benign": "benign user"}


class DemoError(Exception):
    """The demo cannot play: one line saying why."""


@attrs.frozen
class SeatResult:
    """One seat's episode."""

    role: AgentRole
    agent: str
    episode_return: float
    steps: int
    end_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role.value, "agent": self.agent, "return": self.episode_return, "steps": self.steps,
                "end_reason": self.end_reason}


@attrs.frozen
class EpisodeRecord:
    """One episode of the game: every seat's result, in seat order."""

    episode: int
    seats: tuple[SeatResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"episode": self.episode, "seats": [seat.as_dict() for seat in self.seats]}


def seat_plan(task: TaskConfig) -> list[tuple[AgentRole, str]]:
    """The demo's seats, in play order: per role of ``arena.seats`` (attackers, then
    defenders, then benign agents) its seats, each with a policy of
    :data:`agents.policies.POLICIES`: attackers alternate kill-chain and random.

    >>> [(role.value, agent) for role, agent in seat_plan(load_task())]
    [('Attacker', 'kill-chain'), ('Defender', 'defender')]
    """
    plan: list[tuple[AgentRole, str]] = []
    for role in _ROLE_ORDER:
        for index in range(task.seats.get(role, 0)):
            if role is AgentRole.Attacker:
                plan.append((role, "kill-chain" if index % 2 == 0 else "random"))
            else:
                plan.append((role, _ROLE_POLICIES[role]))
    if not plan:
        raise DemoError(f"task {task.name} has no seat for an outside agent (arena.seats): nothing to demo")
    if len(plan) > MAX_DEMO_SEATS:
        raise DemoError(f"task {task.name} has {len(plan)} seats per game (arena.seats); "
                        f"the demo plays at most {MAX_DEMO_SEATS}")
    return plan


@attrs.define
class DemoSummary:
    """The figures so far: attackers' outcomes, mean returns per role, every episode."""

    task: str
    seed: int
    plan: list[tuple[AgentRole, str]]
    #: the task's scripted agents (``agents:``): played by the world, seen here only by their effects
    scripted: list[dict[str, str]] = attrs.Factory(list)
    started: float = attrs.Factory(time.perf_counter)
    records: list[EpisodeRecord] = attrs.Factory(list)
    interrupted: bool = False

    def add(self, record: EpisodeRecord) -> None:
        self.records.append(record)

    def _results(self, role: AgentRole) -> list[SeatResult]:
        return [seat for record in self.records for seat in record.seats if seat.role is role]

    def as_dict(self) -> dict[str, Any]:
        attackers = self._results(AgentRole.Attacker)
        steps = sum(seat.steps for record in self.records for seat in record.seats)
        seconds = time.perf_counter() - self.started
        by_role = {}
        for role in dict.fromkeys(role for role, _ in self.plan):
            results = self._results(role)
            by_role[role.value] = sum(r.episode_return for r in results) / len(results) if results else 0.0
        summary: dict[str, Any] = {
            "task": self.task,
            "game": DEMO_GAME,
            "seed": self.seed,
            "seats": [{"role": role.value, "agent": agent} for role, agent in self.plan],
            "scripted": self.scripted,
            "episodes": len(self.records),
            "wins": sum(r.end_reason == str(AgentStatus.Success) for r in attackers),
            "detections": sum(r.end_reason == str(AgentStatus.Fail) for r in attackers),
            "timeouts": sum(r.end_reason == str(AgentStatus.TimeoutReached) for r in attackers),
            "mean_return": by_role.get(AgentRole.Attacker.value, 0.0),
            "mean_return_by_role": by_role,
            "steps": steps,
            "steps_per_second": steps / seconds if seconds > 0 else 0.0,
            "interrupted": self.interrupted,
            "per_episode": [record.as_dict() for record in self.records],
        }
        if AgentRole.Defender.value in by_role:
            summary["mean_defender_return"] = by_role[AgentRole.Defender.value]
        return summary

    def lines(self) -> list[str]:
        """The summary for people."""
        figures = self.as_dict()
        attackers = sum(role is AgentRole.Attacker for role, _ in self.plan)
        who = "the attacker" if attackers == 1 else f"{attackers} attackers"
        lines = [f"{figures['episodes']} episodes: {who} {figures['wins']} wins, {figures['detections']} detections, "
                 f"{figures['timeouts']} timeouts; mean return {figures['mean_return']:.1f}"]
        for role, mean in figures["mean_return_by_role"].items():
            if role != AgentRole.Attacker.value:
                lines.append(f"{role.lower()} mean return {mean:.1f}")
        lines.append(f"{figures['steps']} steps, {figures['steps_per_second']:,.0f} steps/s")
        return lines


def play_demo(agent: Any, plan: list[tuple[AgentRole, str]], episodes: int, seed: int,
              timeout: float = REPLY_TIMEOUT) -> Iterator[EpisodeRecord]:
    """Join every seat of ``agent`` (a ParallelBaseAgent, one env per entry of ``plan``,
    all in one game on one world) and play ``episodes`` episodes lock-step; each finished
    episode is yielded. DemoError says what failed."""
    count = len(plan)
    policies = [POLICIES[name] for _, name in plan]
    rngs = [random.Random(seed + index) for index in range(count)]
    agent.send_joins()
    observations = _answers(agent.collect(timeout=timeout), "joining the game", expected=count)
    for episode in range(episodes):
        if episode:
            agent.send_resets({env: (None, False) for env in range(count)})
            observations = _answers(agent.collect(timeout=timeout), "the reset", expected=count)
        returns, steps = [0.0] * count, [0] * count
        ends: list[str | None] = [None] * count
        ended = [False] * count
        waiting: set[int] = set()  # seats whose step the game holds until the episode ends
        for _ in range(100_000):  # bounded: every episode ends by its roles' max_steps
            if all(ended):
                break
            actions: dict[int, Any] = {}
            for env in range(count):
                if not ended[env] and env not in waiting:
                    action = policies[env](observations[env], rngs[env])
                    actions[env] = PASS if action is None else action  # nothing to do: a counted no-op
            if actions:
                agent.send_steps(actions)
            answered = _answers(agent.collect(need=1, timeout=timeout), "a step")
            for env, observation in answered.items():
                waiting.discard(env)
                observations[env] = observation
                returns[env] += observation.reward
                steps[env] += 1
                if observation.end:
                    ended[env] = True
                    ends[env] = observation.info.get("end_reason")
            waiting |= actions.keys() - answered.keys()
        else:
            raise DemoError(f"episode {episode} did not end within 100,000 rounds")
        yield EpisodeRecord(episode, tuple(SeatResult(role, name, returns[env], steps[env], ends[env])
                                           for env, (role, name) in enumerate(plan)))


def _answers(results: dict[int, Any], what: str, *, expected: int | None = None) -> dict[int, Observation]:
    """The Observations of a collect; DemoError naming the first failure, or a seat
    missing when every one of ``expected`` seats must have answered."""
    answers: dict[int, Observation] = {}
    for env, result in sorted(results.items()):
        if not isinstance(result, Observation):
            raise DemoError(f"{what} failed for seat {env}: {result}")
        answers[env] = result
    missing = sorted(set(range(expected or 0)) - answers.keys())
    if missing:
        raise DemoError(f"{what}: no answer for seats {missing}")
    return answers


class _Progress:
    """Live figures on stderr: a progress bar on a terminal, one line per episode
    otherwise, nothing with ``--json``."""

    def __init__(self, episodes: int, label: str, *, quiet: bool) -> None:
        self.episodes = episodes
        self.label = label
        self.quiet = quiet
        self._bar: Any = None

    def __enter__(self) -> Callable[[EpisodeRecord], None]:
        if not self.quiet and sys.stderr.isatty():
            self._bar = click.progressbar(length=self.episodes, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        return self.report

    def report(self, record: EpisodeRecord) -> None:
        if self._bar is not None:
            self._bar.update(1)
        elif not self.quiet:
            seats = ", ".join(f"{seat.agent} {seat.episode_return:+.1f}" for seat in record.seats)
            first = record.seats[0]
            end = (first.end_reason or "?").removeprefix("AgentStatus.")
            click.echo(f"episode {record.episode + 1}/{self.episodes}: {first.agent} {end} in {first.steps} steps; "
                       f"returns {seats}", err=True)

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@click.command()
@click.option("--task", "task_location", default=None, metavar="TASK",
              help="A task file, an http(s) URL or a shipped task's name (default: the built-in "
                   "attacker-vs-defender task).")
@click.option("--episodes", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", default=42, show_default=True, type=int,
              help="Seeds the stack, the game and every seat's policy: the same seed plays the same episodes.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object (with every episode).")
def demo(task_location: str | None, episodes: int, seed: int, as_json: bool) -> None:
    """Start a stack, seat every role of the task's game (attackers kill-chain and random,
    defenders blocking, benign users) with scripted policies played lock-step from this
    process, show live figures and a summary, and stop everything. The same --seed plays
    the same episodes. Ctrl-C stops at once and prints the summary so far (exit 130)."""
    try:
        task = load_task(task_location)
        plan = seat_plan(task)
    except (TaskConfigError, DemoError) as error:
        raise click.ClickException(str(error)) from None
    scripted = [{"ref": spec.ref, "role": spec.role.value, "type": spec.type} for spec in task.scripted_agents]
    summary = DemoSummary(task.name, seed, plan, scripted)
    names = ", ".join(_SEAT_LABELS.get(agent, f"{agent} {role.value.lower()}") for role, agent in plan)
    if scripted:
        names += "; in the world: " + ", ".join(f"{entry['ref']} ({entry['type']})" for entry in scripted)
    try:
        with interrupts():
            _run(task, task_location, plan, episodes, seed, summary, names, as_json)
    except Interrupted as interrupted:
        summary.interrupted = True
        _print(summary, as_json, f"arena demo: interrupted after {len(summary.records)} of {episodes} episodes")
        raise click.exceptions.Exit(interrupted.exit_status) from None
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    _print(summary, as_json)


def _run(task: TaskConfig, task_location: str | None, plan: list[tuple[AgentRole, str]], episodes: int, seed: int,
         summary: DemoSummary, names: str, as_json: bool) -> None:
    """The stack up, the episodes played into ``summary``, everything down (on every path)."""
    from agents import ParallelBaseAgent

    stack = Stack(tasks=[task_location] if task_location else [], worlds=1, seed=seed, log_level=_children_log_level())
    agent: Any = None
    finished = False
    try:
        try:
            stack.start()
            stack.wait_registered()  # the joins go to a broker that knows the world
        except (RuntimeError, TimeoutError) as error:
            raise DemoError(f"the stack did not start: {error}") from None
        if not as_json:
            click.echo(f"arena demo: {task.name}, game {DEMO_GAME!r}, seed {seed}: {names}; Ctrl-C stops", err=True)
        agent = ParallelBaseAgent(stack.endpoints["frontend"], [role for role, _ in plan], len(plan),
                                  task=task.name, game=DEMO_GAME, name="arena-demo", timeout=REPLY_TIMEOUT)
        summary.started = time.perf_counter()  # time the play, not the start-up
        with _Progress(episodes, f"{task.name}, game {DEMO_GAME!r}", quiet=as_json) as report:
            for record in play_demo(agent, plan, episodes, seed):
                summary.add(record)
                report(record)
        finished = True
    finally:
        try:
            ignore_interrupts()  # the cleanup runs to its end
        finally:
            if finished and agent is not None:
                agent.terminate_connection()  # the seats QUIT: the stack still answers
            stack.stop()
            if agent is not None and not finished:
                del agent  # the stack is gone: the sockets close as the client is collected, no QUIT
                gc.collect()


def _children_log_level() -> str:
    """The stack's log level: ERROR unless ``arena --log-level`` asked for more. The demo's
    stack is its own: its warnings on the way down (a world leaving with the demo's game on
    Ctrl-C) are not the user's business; the demo says itself what failed."""
    level = logging.getLogger().getEffectiveLevel()
    return logging.getLevelName(level) if level < logging.WARNING else "ERROR"


def _print(summary: DemoSummary, as_json: bool, note: str | None = None) -> None:
    if note:
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    elif summary.records:
        for line in summary.lines():
            click.echo(line)
