"""GameSession: one game's coordinator, free of I/O.

It takes JoinGame / game actions / ResetGame / QuitGame from several seats and returns
the replies each event releases, shaped as NetSecGame's (reference netsecgame.md §2.2,
§3), with DESIGN §3's rules:

* a game starts when its seats are filled (or the task's ``arena.start`` players are
  there) and at least one attacker is present; join replies are held until then;
* an agent whose episode ended waits for the others; the episode's final rewards are
  assigned once every agent's episode has ended (reference §3.4);
* defenders and benign agents have no goal check; their episode ends when every
  attacker's episode has ended (they are told on their next request, or in the reply to
  the step during which it happened) or at their own max_steps;
* a step may be :data:`~protocol.PASS`: a counted game step that changes nothing (steps,
  the step reward, max_steps and the goal check as for any step; no global-defender
  check, no log entry, not in the upstream-format trajectory; a trace step event with
  action None);
* a task's ``agents:`` play inside the game (:mod:`world.scripted`), and seats with a
  reward function earn it (:mod:`world.rewards`); every seat keeps an action history
  (:meth:`GameSession.history`);
* a reset is held until every agent asked; conflicting seeds or topology votes are
  answered BAD_REQUEST and nothing stops; a reset without a seed is valid;
* held replies expire after the task's ``hold_timeout``; seats expire after
  ``seat_lease`` without a request, also while their join is held (at least
  :data:`HELD_JOIN_LEASE_MIN` then: a waiting client's resent JOINs renew it);
* every request gets exactly one reply, now or later.

Time is passed in (``now``, seconds, monotonic), so a worker loop or a test drives it.
The seat records and the reply shapes it fills in live in :mod:`world.seats`.

>>> from world.task import load_task
>>> session = GameSession(load_task("world/tasks/scenario1_small_attacker.yaml"), seed=42)
>>> [reply.status for reply in session.join("seat-1", "Alice", "Attacker", now=0.0)]
[GameStatus.CREATED]
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Hashable
from typing import Any

from protocol import (
    GAME_ACTIONS,
    PASS,
    Action,
    ActionType,
    AgentInfo,
    AgentRole,
    AgentStatus,
    ErrorCode,
    GameStatus,
    Observation,
    PassAction,
    ProtocolError,
    validate_action,
)

from .game_world import GameWorld, goal_reached
from .global_defender import action_key, is_detected
from .rewards import assign_final_rewards, zero_breakdown
from .seats import (
    _PLAYING,
    ENDED_INFO,
    MALFORMED_MESSAGE,
    Reply,
    _Held,
    _Seat,
    bad_reply,
    busy_reply,
    finish_records,
    malformed_reply,
    not_joined_reply,
    sanitize_agent_name,
)
from .session_reset import ResetRules
from .task import TaskConfig
from .trajectory import Trajectory

__all__ = ["HELD_JOIN_LEASE_MIN", "MALFORMED_MESSAGE", "GameSession", "Reply", "sanitize_agent_name"]

log = logging.getLogger(__name__)

#: Seconds a seat whose join is held keeps its place without a request, at least: a waiting
#: client resends its JOIN every retry interval (2 s by default), and a task's lease may be
#: shorter than that.
HELD_JOIN_LEASE_MIN = 5.0


class GameSession(ResetRules):
    """One game of one task: its world, its seats (external ones in ``seats``, scripted
    ones in ``scripted``), its episode."""

    def __init__(self, task: TaskConfig, *, seed: int = 42, name: str = "game") -> None:
        self.task = task
        self.name = name
        self.rng = random.Random(seed)
        self.world = GameWorld(task.scenario, self.rng, use_firewall=task.use_firewall)
        self.seats: dict[Hashable, _Seat] = {}
        self.episode: int = 0
        self._rewards_assigned = False
        #: Seats that left the game since the host last drained this list.
        self.released: list[Hashable] = []
        #: Trace events since the host last drained them; None turns them off. ``steps``
        #: False keeps only join/quit/reset/episode events.
        self.events: list[dict[str, Any]] | None = None
        self.step_events = True
        self.scripted: list[_Seat] = []
        #: the game's tick this episode (world.scripted)
        self.tick_count = 0
        self._acted: set[Hashable] = set()
        self._tick_zero_due = False
        self._stepping: _Seat | None = None
        self._has_scripted = bool(task.scripted_agents)

    # ------------------------------------------------------------------ queries
    @property
    def started(self) -> bool:
        counts = Counter(seat.role for seat in self.seats.values())
        attackers = counts.get(AgentRole.Attacker, 0) + sum(s.role is AgentRole.Attacker for s in self.scripted)
        return attackers >= 1 and all(counts.get(role, 0) >= wanted for role, wanted in self.task.start.items())

    def free_seats(self, role: AgentRole) -> int:
        taken = sum(1 for seat in self.seats.values() if seat.role is role)
        return self.task.seats.get(role, 0) - taken

    def pending(self) -> list[tuple[Hashable, Any]]:
        """Requests that are held and not yet answered: (seat, request tag)."""
        return [(s.seat, s.held.request) for s in self.seats.values() if s.held is not None]

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`tick` has something to do."""
        return min((self._deadline(s) for s in self.seats.values()), default=None)

    def _deadline(self, entry: _Seat) -> float:
        held = entry.held
        if held is None:
            return entry.lease_deadline
        return min(held.deadline, self._lease_end(entry)) if held.kind == "join" else held.deadline

    def _lease_end(self, entry: _Seat) -> float:
        """When a silent seat is quit: its lease, and while its join is held at least
        :data:`HELD_JOIN_LEASE_MIN` after its last request (a waiting client resends its
        JOIN every retry interval, which renews the lease)."""
        if entry.held is not None and entry.held.kind == "join":
            return entry.lease_deadline + max(0.0, HELD_JOIN_LEASE_MIN - self.task.seat_lease)
        return entry.lease_deadline

    def renew(self, seat: Hashable, now: float) -> None:
        """A request of ``seat`` came that runs nothing (a resend of a held request): it
        still says the client is there, so it renews the lease."""
        entry = self.seats.get(seat)
        if entry is not None:
            entry.lease_deadline = max(entry.lease_deadline, now + self.task.seat_lease)

    # ------------------------------------------------------------------ entry points
    def handle(self, seat: Hashable, action: Any, now: float, request: Any = None) -> list[Reply]:
        """Dispatch any action (the NetSecGame protocol's single entry point), or PASS."""
        if action is PASS:
            return self._step_valid(seat, PASS, now, request)
        try:
            action = validate_action(action)
        except ProtocolError as error:
            return [malformed_reply(seat, request, error)]
        kind = action.action_type
        params = action.parameters
        if kind is ActionType.JoinGame:
            info: AgentInfo = params["agent_info"]
            return self.join(seat, info.name, info.role, now, request)
        if kind is ActionType.ResetGame:
            return self.reset(seat, now, request, request_trajectory=params.get("request_trajectory", False),
                              randomize_topology=params.get("randomize_topology", False),
                              seed=params.get("seed"))
        if kind is ActionType.QuitGame:
            return self.quit(seat, now, request)
        return self._step_valid(seat, action, now, request)

    def join(self, seat: Hashable, name: str, role: AgentRole | str, now: float,
             request: Any = None, *, catalog: bool = False) -> list[Reply]:
        """Take a seat; ``catalog`` puts the game's catalog in this seat's join and reset
        replies (``message["catalog"]``, PROTOCOL.md §3.3)."""
        if seat in self.seats:
            return [Reply(seat, request, GameStatus.BAD_REQUEST, None, "Agent already exists.",
                          ErrorCode.ALREADY_JOINED)]
        try:
            role = AgentRole.from_string(role) if isinstance(role, str) else AgentRole(role)
        except ValueError as error:
            return [malformed_reply(seat, request, ProtocolError("agent_info.role",
                                                                 "Attacker, Defender or Benign", str(error)))]
        if role not in self.task.allowed_roles:
            allowed = ", ".join(sorted(r.value for r in self.task.allowed_roles))
            return [bad_reply(seat, request, ErrorCode.ROLE_NOT_ALLOWED,
                              f"Role {role.value} is not allowed in task {self.task.name} (allowed: {allowed})")]
        if self.free_seats(role) <= 0:
            return [bad_reply(seat, request, ErrorCode.GAME_FULL,
                              f"Game {self.name} has no free {role.value} seat")]
        config = self.task.roles[role]
        state = self.world.start_state(config.start)
        goal = self.world.goal_state(config.goal)
        clean = sanitize_agent_name(name, f"agent_{abs(hash(seat)) % 16**8:08x}")
        entry = _Seat(seat, clean, role, state, goal, Trajectory(clean, role, state),
                      lease_deadline=now + self.task.seat_lease,
                      status=AgentStatus.PlayingWithTimeout if role is AgentRole.Attacker else AgentStatus.Playing)
        entry.held = _Held("join", request, now + self.task.hold_timeout)
        entry.wants_catalog = catalog
        self.seats[seat] = entry
        self._take_proxy(entry)
        if self.events is not None:
            self._emit("join", entry, name=clean)
        if self._has_scripted and not self.scripted:
            self._create_scripted()
        log.debug("%s: %s joined as %s", self.name, clean, role.value)  # pragma: no mutate
        return self._renewed(self._release_started(), now)

    def step(self, seat: Hashable, action: Action | PassAction, now: float, request: Any = None, *,
             validated: bool = False) -> list[Reply]:
        """One game action (ScanNetwork ... BlockIP) or PASS of one seat. ``validated`` skips
        the parameter check for actions that ``protocol.action_from_compact`` already made."""
        if action is PASS:
            return self._step_valid(seat, PASS, now, request)
        if not isinstance(action, Action) or action.action_type not in GAME_ACTIONS:
            return self.handle(seat, action, now, request)
        if not validated:
            try:
                validate_action(action)
            except ProtocolError as error:
                return [malformed_reply(seat, request, error)]
        return self._step_valid(seat, action, now, request)

    def _step_valid(self, seat: Hashable, action: Action | PassAction, now: float, request: Any) -> list[Reply]:
        entry = self.seats.get(seat)
        if entry is None:
            return [not_joined_reply(seat, request)]
        if entry.held is not None:
            return [busy_reply(seat, request, entry)]
        entry.lease_deadline = now + self.task.seat_lease
        if entry.ended:
            if not entry.told_end and self._rewards_assigned:
                self._tell_end(entry)
                return [Reply(seat, request, GameStatus.OK, self._observation(entry, end=True))]
            return [Reply(seat, request, GameStatus.FORBIDDEN, Observation(
                entry.state, entry.reward, True,
                {"end_reason": str(entry.status), "info": ENDED_INFO}), code=ErrorCode.EPISODE_ENDED)]
        replies = self._play(entry, action, now, request)
        return replies if len(replies) < 2 else self._renewed(replies, now)

    def reset(self, seat: Hashable, now: float, request: Any = None, *, request_trajectory: bool = False,
              randomize_topology: bool = False, seed: int | None = None) -> list[Reply]:
        entry = self.seats.get(seat)
        if entry is None:
            return [not_joined_reply(seat, request)]
        if entry.held is not None:
            return [busy_reply(seat, request, entry)]
        entry.lease_deadline = now + self.task.seat_lease
        if entry.ended and not entry.told_end and self._rewards_assigned:
            self._tell_end(entry)  # a bystander whose next request is a reset
        entry.reset_vote = (seed, bool(randomize_topology))
        entry.held = _Held("reset", request, now + self.task.hold_timeout,
                           request_trajectory=bool(request_trajectory))
        return self._renewed(self._maybe_reset(), now)

    def quit(self, seat: Hashable, now: float, request: Any = None) -> list[Reply]:
        entry = self.seats.get(seat)
        if entry is None:
            return [not_joined_reply(seat, request)]
        replies = self._remove(entry, "the agent quit")
        replies.append(Reply(seat, request, GameStatus.OK, None,
                             {"message": f"Agent {entry.name} quit the game."}))
        return self._renewed(replies + self._after_removal(), now)

    def tick(self, now: float) -> list[Reply]:
        """Expire held replies and seat leases whose time has come."""
        replies: list[Reply] = []
        for entry in list(self.seats.values()):
            if self.seats.get(entry.seat) is not entry:
                continue
            held = entry.held
            if held is not None and held.deadline <= now:
                # renewed at once: a seat this releases must not lose its lease below
                replies += self._renewed(self._expire(entry, held), now)
            elif (held is None or held.kind == "join") and self._lease_end(entry) <= now:
                # A held join's lease runs too: a client that vanished while waiting for its
                # game must not keep the seat until the game starts (and then for a lease).
                log.info("%s: seat of %s expired after %.0f s without a request%s",  # pragma: no mutate
                         self.name, entry.name, self.task.seat_lease,  # pragma: no mutate
                         " while its join was held" if held is not None else "",  # pragma: no mutate
                         )
                replies += self._remove(entry, "its lease expired")
                replies += self._renewed(self._after_removal(), now)
        return self._renewed(replies, now)

    def _renewed(self, replies: list[Reply], now: float) -> list[Reply]:
        """Renew the lease of every seat a reply answers: a lease counts from the seat's last
        request or the last answer to it, so a long hold never costs an agent its seat."""
        lease = now + self.task.seat_lease
        for reply in replies:
            entry = self.seats.get(reply.seat)
            if entry is not None and entry.lease_deadline < lease:
                entry.lease_deadline = lease
        return replies

    def close(self, reason: str = "the game closed") -> list[Reply]:
        """Answer every held request (BAD_REQUEST) and drop every seat."""
        replies: list[Reply] = []
        for entry in list(self.seats.values()):
            replies += self._remove(entry, reason)
        self.seats.clear()
        self.scripted.clear()
        return replies

    # ------------------------------------------------------------------ playing
    def _attacker_playing(self) -> bool:
        return any(s.role is AgentRole.Attacker and not s.ended for s in self._players())

    def _act(self, entry: _Seat, action: Action | PassAction) -> None:
        """One game step of any seat, external or scripted: state, status, reward, history."""
        task = self.task
        old_state = entry.state
        entry.steps += 1
        passing = action is PASS
        state = old_state if passing else self.world.step(old_state, action, entry.seat, entry.role)
        entry.state = state
        status = entry.status
        if (entry.role is AgentRole.Attacker and (state is not old_state or entry.steps == 1)
                and goal_reached(state, entry.goal)):
            status = AgentStatus.Success
        elif task.use_global_defender and not passing and self._detected(entry, action):
            status = AgentStatus.Fail
        else:
            max_steps = task.roles[entry.role].max_steps
            if max_steps and entry.steps >= max_steps:
                status = AgentStatus.TimeoutReached
        if task.use_global_defender and not passing:
            entry.history.append(action)
        entry.status = status
        function = entry.reward_fn
        if function is None:
            entry.reward = task.rewards.step
        else:
            entry.breakdown = function.step_breakdown(task.rewards, old_state, state, action,
                                                      status is AgentStatus.Fail, self._attacker_hosts,
                                                      self._reward_of)
            entry.reward = math.fsum(entry.breakdown.values())
        entry.records.append([entry.steps, self.tick_count, action, state is not old_state, status, entry.reward,
                              entry.breakdown])

    def _play(self, entry: _Seat, action: Action | PassAction, now: float, request: Any) -> list[Reply]:
        self._act(entry, action)
        if entry.status not in _PLAYING:
            entry.ended = True
            entry.trajectory.end_reason = entry.status
            if entry.role is AgentRole.Attacker and not self._attacker_playing():
                self._end_bystanders()
        if self.scripted:
            self._stepping = entry
            try:
                self._round_action(entry)  # the scripted turns this completes may end its episode
            finally:
                self._stepping = None
        if not entry.ended:
            if action is not PASS:
                entry.trajectory.add_step(action, entry.reward, entry.state)
            entry.episode_return += entry.reward
            self._emit_step(entry, action, False)
            return [Reply(entry.seat, request, GameStatus.OK,
                          Observation(entry.state, entry.reward, False, self._info(entry, {})))]
        entry.held = _Held("step", request, now + self.task.hold_timeout, action=action)
        return self._maybe_finish()

    def _detected(self, entry: _Seat, action: Action) -> bool:
        key = action_key(action)
        entry.repeats[key] += 1
        return is_detected(entry.history, action, entry.repeats[key], self.rng)

    def _end_bystanders(self) -> None:
        """Every attacker is done: defenders' and benign agents' episodes end too."""
        for other in self._players():
            if other.role is not AgentRole.Attacker and not other.ended:
                other.ended = True
                if other is self._stepping:  # its own step's reply tells it, with that step's reward
                    continue
                other.bystander = True
                other.told_end = False  # see _tell_end
                other.reward = 0  # their last step's reward was already given
                if other.reward_fn is not None:
                    other.breakdown = zero_breakdown(other.reward_fn)

    def _maybe_finish(self) -> list[Reply]:
        """Once every episode ended: assign final rewards (reference §3.4), release holds."""
        if not self.seats or not all(s.ended for s in self._players()):
            return []
        if not self._rewards_assigned:
            self._rewards_assigned = True
            assign_final_rewards(self._players(), self.task.rewards, self.world.false_positives)
            for s in self._players():
                finish_records(s)
            for s in self.scripted:
                s.trajectory.add_final_reward(s.final_part)
                s.episode_return += s.final_part
                self._emit_episode(s)
            for s in self.seats.values():
                if not s.told_end and s.held is not None and s.held.kind == "reset":
                    self._tell_end(s)
        replies = []
        for s in self.seats.values():
            if s.held is not None and s.held.kind == "step":
                held, s.held = s.held, None
                if held.action is PASS:
                    s.trajectory.add_final_reward(s.final_part)
                else:
                    assert isinstance(held.action, Action)
                    s.trajectory.add_step(held.action, s.reward, s.state)
                s.episode_return += s.reward
                if held.action is not None:
                    self._emit_step(s, held.action, True)
                self._emit_episode(s)
                replies.append(Reply(s.seat, held.request, GameStatus.OK, self._observation(s, end=True)))
                s.told_end = True
        return replies

    def _tell_end(self, entry: _Seat) -> None:
        """A bystander's end-of-episode reward (assigned, not yet told) reaches its return, its
        trajectory's last step and an ``episode`` trace event, once: on its next step, on its next
        reset, or, if it holds a reset when the final rewards are assigned, then (reference
        netsecgame.md §3.4, §3.7; PROTOCOL.md §6)."""
        entry.told_end = True
        entry.episode_return += entry.reward
        entry.trajectory.add_final_reward(entry.reward)
        self._emit_episode(entry)

    def _observation(self, entry: _Seat, *, end: bool) -> Observation:
        info = {} if entry.status in _PLAYING else {"end_reason": str(entry.status)}
        return Observation(entry.state, entry.reward, end, self._info(entry, info))

    def _info(self, entry: _Seat, info: dict[str, Any]) -> dict[str, Any]:
        """A step reply's info: the reward's breakdown for a seat with a reward function;
        the scripted turns since the seat's last step reply in a task with scripted agents."""
        if entry.reward_fn is not None and entry.breakdown is not None:
            info["reward_breakdown"] = dict(entry.breakdown)
        if self._has_scripted:
            info["scripted"], entry.scripted_seen = entry.scripted_seen, []
        return info

    # ------------------------------------------------------------------ leaving
    def _remove(self, entry: _Seat, reason: str) -> list[Reply]:
        self.seats.pop(entry.seat, None)
        self.released.append(entry.seat)
        if self.events is not None:
            self._emit("quit", entry, reason=reason)
        held = entry.held
        entry.held = None
        if held is None:
            return []
        return [bad_reply(entry.seat, held.request, ErrorCode.SEAT_RELEASED,
                          f"The seat was released before this request was answered: {reason}.")]

    def _after_removal(self) -> list[Reply]:
        if not self.seats:
            # Nobody left: the next session starts from a fresh world (DESIGN §3).
            self._drop_scripted("the last external seat left")
            self.world.reset()
            self._rewards_assigned = False
            return []
        if self.scripted:
            self._end_round_if_done()
            self._end_unwatched()
        if not self._attacker_playing():
            self._end_bystanders()
        replies = self._maybe_finish()
        if all(s.held is not None and s.held.kind == "reset" for s in self.seats.values()):
            replies += self._maybe_reset()
        return replies

    def _expire(self, entry: _Seat, held: _Held) -> list[Reply]:
        timeout = self.task.hold_timeout
        if held.kind == "join":
            self.seats.pop(entry.seat, None)
            self.released.append(entry.seat)
            entry.held = None
            reply = bad_reply(entry.seat, held.request, ErrorCode.HOLD_TIMEOUT,
                              f"The game did not start within {timeout:g} s; the seat was freed.")
            return [reply, *self._after_removal()]
        if held.kind == "reset":
            entry.held = None
            entry.reset_vote = None
            return [bad_reply(entry.seat, held.request, ErrorCode.HOLD_TIMEOUT,
                              f"Not every agent asked for a reset within {timeout:g} s; "
                              "the reset request was dropped.")]
        # An ended agent waited too long for the others: they are treated as having quit.
        replies: list[Reply] = []
        for other in list(self.seats.values()):
            if not other.ended:
                log.info("%s: %s did not finish its episode in time; its seat is released",  # pragma: no mutate
                         self.name, other.name)  # pragma: no mutate
                replies += self._remove(other, "the episode-end hold timed out waiting for it")
        return replies + self._after_removal()

    def reject(self, seat: Hashable, error: ProtocolError, request: Any = None) -> Reply:
        """The reply to a request that could not even be parsed (BAD_REQUEST, MALFORMED)."""
        return malformed_reply(seat, request, error)

