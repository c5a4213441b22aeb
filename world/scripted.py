"""Scripted agents inside a game: their seats, schedules, turns and the game's tick.

A task's ``agents:`` entries (:mod:`world.agents_config`) other than ``proxy`` are
*scripted seats* of every game of the task. The rules:

* **Seats.** They are created with the game's first external join and removed when the
  last external seat leaves. They do not take ``arena.seats`` (those are for external
  agents), never get a reply, have no lease and no hold, and are not listed to the broker
  (READY, RELEASE). They count as present for the start rule: a scripted attacker lets a
  game start with only a defender (a learner) in it. Their seat id is ``scripted:<ref>``
  (trace events mark them ``"scripted": true``).
* **The tick.** The tick is 0 when an episode starts (the game starts, or a reset is
  done); scripted agents scheduled at tick 0 act then, before any external action. A
  *round* ends when at least one external game action (a PASS counts) was made since the
  last round ended and every external seat still playing its episode (not ended, no
  request held) has made one; then the tick advances by one and every scripted agent
  still playing whose turn falls on the new tick acts once, in ``agents:`` order. External
  actions are recorded with the tick in force when they were made (the number of rounds
  completed before them). Ticks and schedules restart every episode.
* **Schedules.** An agent's first turn is at tick ``start_step``; after each turn the next
  is ``frequency + randint(-variance, variance)`` ticks later (no draw when variance is 0).
  A ``periodic`` agent stops after ``max_executions`` turns.
* **Turns.** ``random``: a uniform entry of its action map, else a uniform choice among
  NetSecGame's valid actions of its state (``agents.utils.sorted_valid_actions``, blocks
  included for defenders; PASS when there is none). ``probabilistic``: an entry drawn with
  ``action_probabilities``. ``periodic``: the map's entries in index order, cycling, one
  per turn. ``kill-chain``, ``blocking-defender``, ``benign``: the policy of
  :mod:`agents.policies` on its own observation (PASS when it has no action). A map entry
  is bound to the game's current addresses when it is played; ``do-nothing`` is PASS. A
  turn chooses the action first, then draws the next turn's gap.
* **Randomness.** Each scripted agent has its own ``random.Random``, seeded per episode
  with ``getrandbits(64)`` of the game's RNG, in ``agents:`` order, after every start state
  of that episode was built (so tasks without scripted agents draw exactly as NetSecGame
  does). Same seed and same external actions, same game.
* **Episodes.** A turn is a game step of the agent, with the session's rules: its steps
  count towards its role's max_steps, a scripted attacker reaches its goal, times out or
  is detected by the global defender; defenders and benign agents end when every attacker
  ended; final rewards (reference netsecgame.md §3.4) apply to them; they reset with the
  external agents (they do not vote). When no external seat is still playing, the
  scripted agents still playing end too: attackers with TimeoutReached (the game they had
  is over), then the others as bystanders.
* **Replies.** When the tick that an external step completes ends that seat's episode
  (a scripted attacker won, say), the reply to that step already says so: it is held
  like any episode-ending step and released, with the final reward, once every episode
  ended (at once, when no one else is playing). In a task with scripted agents every
  step reply of an external seat carries ``info["scripted"]``: ``[[ref, step, compact
  action or None, reward], ...]`` for the scripted turns taken since that seat's previous
  step reply (the turns the tick just ran, in a game with one external seat).
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any

from agents.policies import Policy, benign_agent, blocking_defender, kill_chain_attacker
from agents.utils import sorted_valid_actions
from protocol import PASS, Action, AgentRole, AgentStatus, Observation, PassAction, action_to_compact

from .agents_config import AgentSpec
from .catalog import catalog_of
from .seats import _PLAYING, HistoryRecord, _Seat
from .session_trace import TraceEvents
from .trajectory import Trajectory

if TYPE_CHECKING:
    from .game_world import GameWorld
    from .task import TaskConfig

__all__ = ["ScriptedAgent", "ScriptedPlay", "reset_seat", "scripted_seat_id"]


#: The policies (agents.policies, DESIGN §1) of the types that choose their own actions.
_POLICIES: dict[str, Policy] = {"kill-chain": kill_chain_attacker, "blocking-defender": blocking_defender,
                                "benign": benign_agent}


def scripted_seat_id(ref: str) -> str:
    """The seat id of a scripted agent (broker seat ids never look like this)."""
    return f"scripted:{ref}"


class ScriptedAgent:
    """One scripted entry playing in one game: its RNG, its next turn, its turns taken."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.rng = random.Random(0)
        self.next_turn = spec.start_step
        self.executions = 0

    def new_episode(self, seed: int) -> None:
        self.rng.seed(seed)
        self.next_turn = self.spec.start_step
        self.executions = 0

    def due(self, tick: int) -> bool:
        limit = self.spec.max_executions
        return tick == self.next_turn and (limit is None or self.executions < limit)

    def turn(self, entry: _Seat, world: GameWorld) -> Action | PassAction:
        """This turn's action; then the next turn is scheduled."""
        action = self._choose(entry, world)
        self.executions += 1
        spec = self.spec
        gap = spec.frequency + (self.rng.randint(-spec.variance, spec.variance) if spec.variance else 0)
        self.next_turn += gap
        return action

    def _choose(self, entry: _Seat, world: GameWorld) -> Action | PassAction:
        spec, rng = self.spec, self.rng
        kind = spec.type
        if spec.action_map and kind in ("random", "probabilistic", "periodic"):
            size = len(spec.action_map)
            if kind == "random":
                index = rng.randrange(size)
            elif kind == "probabilistic":
                index = rng.choices(range(size), weights=spec.action_probabilities)[0]
            else:
                index = self.executions % size
            return spec.mapped_action(index, catalog_of(world))
        if kind == "random":
            actions = sorted_valid_actions(entry.state, include_blocks=entry.role is AgentRole.Defender)
            return rng.choice(actions) if actions else PASS
        action = _POLICIES[kind](Observation(entry.state, entry.reward, False, {}), rng)
        return PASS if action is None else action


class ScriptedPlay(TraceEvents):
    """The scripted-agent half of a :class:`~world.session.GameSession` (a mixin): the
    scripted seats, the tick, the reward functions' context and the action histories."""

    task: TaskConfig
    world: GameWorld
    rng: random.Random
    seats: dict[Hashable, _Seat]
    scripted: list[_Seat]
    tick_count: int
    _acted: set[Hashable]
    _tick_zero_due: bool
    _stepping: _Seat | None

    if TYPE_CHECKING:  # the session's own rules
        def _act(self, entry: _Seat, action: Action | PassAction) -> None: ...
        def _end_bystanders(self) -> None: ...
        def _attacker_playing(self) -> bool: ...

    # ------------------------------------------------------------------ queries
    def _players(self) -> Iterator[_Seat]:
        """Every seat of the game: external ones, then scripted ones."""
        yield from self.seats.values()
        yield from self.scripted

    def history(self, seat: Hashable, *, last: bool = False) -> tuple[HistoryRecord, ...]:
        """A seat's action history this episode (``last``: the previous episode's), by its
        seat id or, for a scripted agent or a proxy's seat, its ref. KeyError if unknown."""
        entry = self.seats.get(seat)
        if entry is None:
            entry = next((s for s in self._players() if s.ref == seat or s.seat == seat), None)
        if entry is None:
            raise KeyError(f"no seat or agent {seat!r} in this game")
        rows = entry.last_records if last else entry.records
        return tuple(HistoryRecord(*row[:6], None if row[6] is None else dict(row[6])) for row in rows or ())

    def _reward_of(self, ref: str) -> float:
        """shared-reward: the agent's most recent step reward (0 when it is not here)."""
        for s in self._players():
            if s.ref == ref:
                return s.reward
        return 0.0

    def _attacker_hosts(self) -> frozenset[Any]:
        hosts: frozenset[Any] = frozenset()
        for s in self._players():
            if s.role is AgentRole.Attacker:
                hosts = hosts | s.state.controlled_hosts
        return hosts

    # ------------------------------------------------------------------ seats
    def _take_proxy(self, entry: _Seat) -> None:
        """An external seat plays its role's first proxy entry no present seat plays."""
        taken = {s.ref for s in self.seats.values() if s is not entry}
        for spec in self.task.proxies(entry.role):
            if spec.ref not in taken:
                entry.ref, entry.reward_fn = spec.ref, spec.reward
                return

    def _create_scripted(self) -> None:
        """The scripted seats, at the game's first external join (after its start state)."""
        for spec in self.task.scripted_agents:
            config = self.task.roles[spec.role]
            state = self.world.start_state(config.start)
            goal = self.world.goal_state(config.goal)
            entry = _Seat(scripted_seat_id(spec.ref), spec.ref, spec.role, state, goal,
                          Trajectory(spec.ref, spec.role, state), lease_deadline=math.inf,
                          status=_start_status(spec.role), ref=spec.ref, script=ScriptedAgent(spec),
                          reward_fn=spec.reward)
            self.scripted.append(entry)
            if self.events is not None:
                self._emit("join", entry, name=spec.ref)
        self._seed_scripted()

    def _seed_scripted(self) -> None:
        for entry in self.scripted:
            assert entry.script is not None
            entry.script.new_episode(self.rng.getrandbits(64))
        self.tick_count = 0
        self._acted.clear()
        self._tick_zero_due = bool(self.scripted)

    def _drop_scripted(self, reason: str) -> None:
        if self.events is not None:
            for entry in self.scripted:
                self._emit("quit", entry, reason=reason)
        self.scripted.clear()

    # ------------------------------------------------------------------ the tick
    def _episode_started(self) -> None:
        """Tick 0: the turns scheduled at the start of the episode."""
        if self._tick_zero_due:
            self._tick_zero_due = False
            self._run_tick()

    def _round_action(self, entry: _Seat) -> None:
        """An external game action was made: the round may be over."""
        self._acted.add(entry.seat)
        self._end_round_if_done()

    def _end_round_if_done(self) -> None:
        acted = self._acted
        if not acted or any(s.seat not in acted for s in self.seats.values() if not s.ended and s.held is None):
            return
        acted.clear()
        self.tick_count += 1
        self._run_tick()

    def _run_tick(self) -> None:
        tick = self.tick_count
        for entry in self.scripted:
            script = entry.script
            assert script is not None
            if not entry.ended and script.due(tick):
                self._scripted_turn(entry, script.turn(entry, self.world))
        self._end_unwatched()

    def _scripted_turn(self, entry: _Seat, action: Action | PassAction) -> None:
        self._act(entry, action)
        if action is not PASS:
            assert isinstance(action, Action)
            entry.trajectory.add_step(action, entry.reward, entry.state)
        entry.episode_return += entry.reward
        ended = entry.status not in _PLAYING
        self._emit_step(entry, action, ended)
        report = [entry.ref, entry.steps, action_to_compact(action), entry.reward]
        for external in self.seats.values():
            external.scripted_seen.append(report)
        if ended:
            entry.ended = True
            entry.trajectory.end_reason = entry.status
            if entry.role is AgentRole.Attacker and not self._attacker_playing():
                self._end_bystanders()

    def _end_unwatched(self) -> None:
        """No external seat is still playing: the scripted agents' episodes end too."""
        if not self.scripted or not self.seats or any(not s.ended for s in self.seats.values()):
            return
        for entry in self.scripted:
            if entry.role is AgentRole.Attacker and not entry.ended:
                entry.ended = True
                entry.status = AgentStatus.TimeoutReached
                entry.trajectory.end_reason = entry.status
                if entry.records:
                    entry.records[-1][4] = entry.status
        self._end_bystanders()

    def _new_scripted_episode(self) -> None:
        """The scripted seats' part of a new episode (after the external seats' start states)."""
        for entry in self.scripted:
            config = self.task.roles[entry.role]
            entry.state = self.world.start_state(config.start)
            entry.goal = self.world.goal_state(config.goal)
            reset_seat(entry)
        self._seed_scripted()


def _start_status(role: AgentRole) -> AgentStatus:
    return AgentStatus.PlayingWithTimeout if role is AgentRole.Attacker else AgentStatus.Playing


def reset_seat(entry: _Seat) -> None:
    """A seat's per-episode records back to the start (its new state already in place)."""
    entry.last_trajectory = entry.trajectory
    entry.trajectory = Trajectory(entry.name, entry.role, entry.state)
    entry.steps, entry.reward, entry.ended, entry.told_end, entry.episode_return = 0, 0, False, True, 0
    entry.status = _start_status(entry.role)
    entry.history.clear()
    entry.repeats.clear()
    entry.reset_vote = None
    entry.last_records, entry.records = entry.records, []
    entry.scripted_seen = []
    entry.breakdown = None
    entry.bystander = False
    entry.final_part = 0
