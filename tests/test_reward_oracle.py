"""Reward components against an oracle of their own (issue 14, "Weak spots": the per-reply
check ``reward == fsum(breakdown)`` is true by construction).

The oracle below computes each component of world/rewards.py's table from what the step
did, with code of its own: the seat's GameState before and after the step, the action,
whether the step ran, the seat's status after it, and for the final parts the episode's
outcome (reference netsecgame.md §3.4: attackers success or fail, defenders success if no
attacker reached its goal plus their false positives). It never calls world.rewards.
Seeded random episodes (GameSession in process, the rules of DESIGN §3) compare it with
every reply's ``info["reward_breakdown"]``, for tasks that weight every component
differently; a few hand-computed cases per component pin the numbers themselves."""

from __future__ import annotations

import ipaddress
import itertools
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from agents.policies import blocking_defender, kill_chain_attacker, random_attacker
from protocol import (
    PASS,
    Action,
    ActionType,
    AgentRole,
    AgentStatus,
    GameState,
    GameStatus,
    Observation,
)
from world import GameSession, TaskConfig

from .conftest import CLIENT, CNC, SMB, WINNING_ATTACK, block, find_data, scan
from .scripted_samples import DEFAULT, task_of

RED = "red"
BLUE = "blue"
GREEN = "green"

#: Every component, each weighted differently; new-data listed twice (its second key is "new-data#2").
RED_PARTS = [
    {"type": "netsecgame", "weight": 1.0}, {"type": "step", "weight": 0.5}, {"type": "success", "weight": 2.0},
    {"type": "fail", "weight": 3.0}, {"type": "false-positive", "weight": 1.25},
    {"type": "new-controlled-host", "weight": 1.5}, {"type": "new-data", "weight": 0.25},
    {"type": "data-exfiltrated", "weight": 5.0}, {"type": "detected", "weight": -7.0},
    {"type": "attacker-blocked", "weight": 2.0}, {"type": "new-data", "weight": -0.75},
]
BLUE_PARTS = [
    {"type": "netsecgame", "weight": 1.0}, {"type": "step", "weight": 2.0}, {"type": "success", "weight": 0.5},
    {"type": "fail", "weight": 1.5}, {"type": "false-positive", "weight": 3.0},
    {"type": "new-controlled-host", "weight": 4.0}, {"type": "new-data", "weight": 0.5},
    {"type": "data-exfiltrated", "weight": 6.0}, {"type": "detected", "weight": 9.0},
    {"type": "attacker-blocked", "weight": 2.5},
]
GREEN_PARTS = [{"type": "step", "weight": 4.0}, {"type": "new-data", "weight": 2.0}]


def shared(agent: str, weight: float) -> dict[str, Any]:
    return {"type": "shared-reward", "weight": weight, "options": {"agent": agent}}


def proxy(ref: str, team: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ref": ref, "team": team, "type": "proxy", "reward_function": {"reward_components": parts}}


# ---------------------------------------------------------------------- the oracle
def _public(host: Any) -> bool:
    return not ipaddress.ip_address(str(host)).is_private


def _new_data(before: GameState, after: GameState, *, exfiltrated: bool) -> int:
    """Data in ``after``'s known data that ``before`` did not hold at that host; for
    exfiltration only at public hosts and never a log file."""
    count = 0
    for host, data in after.known_data.items():
        if exfiltrated and not _public(host):
            continue
        old = before.known_data.get(host, frozenset())
        count += sum(1 for datum in data if datum not in old and not (exfiltrated and datum.type == "log"))
    return count


@attrs.frozen
class Step:
    """What one step of a seat did: the facts the oracle reads."""

    before: GameState
    after: GameState
    action: Any
    ran: bool                 # False: the request only told the seat its episode had ended
    detected: bool            # the step ended the seat's episode by detection (status Fail)
    attacker_hosts: frozenset[Any]
    shared: float             # the shared agent's latest step reward when the step ran


def step_value(kind: str, step: Step, step_reward: float) -> float:
    if not step.ran:
        return 0.0
    if kind in ("netsecgame", "step"):
        return step_reward
    if kind == "new-controlled-host":
        return len(step.after.controlled_hosts - step.before.controlled_hosts)
    if kind == "new-data":
        return _new_data(step.before, step.after, exfiltrated=False)
    if kind == "data-exfiltrated":
        return _new_data(step.before, step.after, exfiltrated=True)
    if kind == "detected":
        return 1.0 if step.detected else 0.0
    if kind == "attacker-blocked":
        action = step.action
        return 1.0 if (isinstance(action, Action) and action.action_type is ActionType.BlockIP
                       and step.after.known_blocks != step.before.known_blocks
                       and action.parameters["blocked_host"] in step.attacker_hosts) else 0.0
    if kind == "shared-reward":
        return step.shared
    return 0.0  # success, fail, false-positive: final only


@attrs.frozen
class Outcome:
    """An episode's end for one seat: its role, whether it won, its false positives."""

    role: AgentRole
    won: bool
    false_positives: int = 0


def final_value(kind: str, outcome: Outcome, task: TaskConfig) -> float:
    rewards = task.rewards
    if outcome.role is AgentRole.Benign:
        return 0.0
    success = rewards.success if outcome.won else 0.0
    fail = 0.0 if outcome.won else rewards.fail
    positives = outcome.false_positives * rewards.false_positive if outcome.role is AgentRole.Defender else 0.0
    return {"netsecgame": success + fail + positives, "success": success, "fail": fail,
            "false-positive": positives}.get(kind, 0.0)


def keyed(parts: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(key, type, weight) of each listed component: a type listed again is ``type#2``, ..."""
    seen: dict[str, int] = {}
    result = []
    for part in parts:
        kind = part["type"]
        seen[kind] = seen.get(kind, 0) + 1
        result.append((kind if seen[kind] == 1 else f"{kind}#{seen[kind]}", kind, float(part.get("weight", 1.0))))
    return result


def expected(parts: list[dict[str, Any]], task: TaskConfig, step: Step, outcome: Outcome | None) -> dict[str, float]:
    """The oracle's breakdown of one reply: weight * (step value + final value at the end)."""
    return {key: weight * (step_value(kind, step, task.rewards.step)
                           + (final_value(kind, outcome, task) if outcome is not None else 0.0))
            for key, kind, weight in keyed(parts)}


def step_total(parts: list[dict[str, Any]], task: TaskConfig, step: Step) -> float:
    return math.fsum(expected(parts, task, step, None).values())


# ---------------------------------------------------------------------- the driver
@attrs.define
class Seat:
    name: str
    role: AgentRole
    parts: list[dict[str, Any]]
    policy: Callable[[Observation, random.Random], Action | None]
    shares: str | None = None          # the ref whose reward its shared-reward takes


@attrs.define
class Match:
    """External seats of one GameSession played in turn with their policies; each reply's
    breakdown compared with the oracle's."""

    task: TaskConfig
    seats: list[Seat]
    seed: int
    session: GameSession = attrs.field(init=False)
    observations: dict[str, Observation] = attrs.field(factory=dict)
    latest: dict[str, float] = attrs.field(factory=dict)       # oracle: each seat's latest step reward
    pending: dict[int, tuple[Seat, Step]] = attrs.field(factory=dict)
    answered: set[int] = attrs.field(factory=set)
    checked: int = 0
    nonzero: set[str] = attrs.field(factory=set)                # component types seen with a value
    ids: Iterator[int] = attrs.field(init=False, factory=lambda: itertools.count(1))

    def __attrs_post_init__(self) -> None:
        self.session = GameSession(self.task, seed=self.seed)
        held = []
        for seat in self.seats:
            request = next(self.ids)
            held.append(request)
            for reply in self.session.join(seat.name, seat.name, seat.role, 0.0, request):
                self.answered.add(reply.request)
                self.observations[reply.seat] = reply.observation
        assert set(held) <= self.answered, "every join answered once the seats are there"

    def _shared_now(self, seat: Seat) -> float:
        if seat.shares is None:
            return 0.0
        if any(s.name == seat.shares for s in self.seats):
            return self.latest.get(seat.shares, 0.0)
        history = self.session.history(seat.shares)  # a scripted agent: its own records
        return history[-1].reward if history else 0.0

    def _attacker_hosts(self) -> frozenset[Any]:
        hosts: frozenset[Any] = frozenset()
        for entry in [*self.session.seats.values(), *self.session.scripted]:
            if entry.role is AgentRole.Attacker:
                hosts |= entry.state.controlled_hosts
        return hosts

    def episode(self, rng: random.Random, limit: int = 500) -> None:
        session = self.session
        self.latest = {}
        waiting: dict[str, int] = {}
        ended: set[str] = set()
        for _ in range(limit):
            if len(ended) == len(self.seats):
                break
            for seat in self.seats:
                if seat.name in ended or seat.name in waiting:
                    continue
                entry = session.seats[seat.name]
                action = seat.policy(self.observations[seat.name], rng) or PASS
                before, steps, hosts, share = entry.state, entry.steps, self._attacker_hosts(), self._shared_now(seat)
                request = next(self.ids)
                waiting[seat.name] = request
                replies = session.step(seat.name, action, 0.0, request)
                ran = entry.steps == steps + 1
                detected = ran and entry.role is AgentRole.Attacker and entry.status is AgentStatus.Fail
                step = Step(before, entry.state, action, ran, detected, hosts, share)
                if ran:
                    self.latest[seat.name] = step_total(seat.parts, self.task, step)
                self.pending[request] = (seat, step)
                for reply in replies:
                    observation = self._check(reply)
                    self.observations[reply.seat] = observation
                    del waiting[reply.seat]
                    if observation.end:
                        ended.add(reply.seat)
        assert len(ended) == len(self.seats) and not waiting, "the episode ended within the step limit"
        requests = [next(self.ids) for _ in self.seats]
        done = []
        for seat, request in zip(self.seats, requests, strict=True):
            done += session.reset(seat.name, 0.0, request)
        assert {reply.request for reply in done} == set(requests)
        assert all(reply.status is GameStatus.RESET_DONE for reply in done)
        for reply in done:
            self.observations[reply.seat] = reply.observation

    def _outcome(self, seat: Seat, observation: Observation) -> Outcome:
        attackers_won = any(s.role is AgentRole.Attacker and s.status is AgentStatus.Success
                            for s in [*self.session.seats.values(), *self.session.scripted])
        if seat.role is AgentRole.Attacker:
            return Outcome(seat.role, observation.info["end_reason"] == "AgentStatus.Success")
        return Outcome(seat.role, not attackers_won, self.session.world.false_positives[seat.name])

    def _check(self, reply: Any) -> Observation:
        assert reply.request in self.pending and reply.request not in self.answered, reply
        self.answered.add(reply.request)
        seat, step = self.pending.pop(reply.request)
        assert reply.status is GameStatus.OK, reply
        observation: Observation = reply.observation
        outcome = self._outcome(seat, observation) if observation.end else None
        want = expected(seat.parts, self.task, step, outcome)
        got = observation.info["reward_breakdown"]
        assert got == pytest.approx(want, abs=1e-9), (
            f"{seat.name} {step.action} (ran {step.ran}, end {observation.end}, outcome {outcome}): "
            f"breakdown {got}, oracle {want}")
        self.checked += 1
        self.nonzero |= {kind for key, kind, _ in keyed(seat.parts) if want[key] and got[key]}
        if outcome is not None and outcome.false_positives:
            self.nonzero.add("false-positive (count)")
        return observation


def attacker_policy(observation: Observation, rng: random.Random) -> Action | None:
    """Mostly the kill chain (so attackers win and exfiltrate), sometimes anything valid."""
    return (kill_chain_attacker if rng.random() < 0.7 else random_attacker)(observation, rng)


def defender_policy(observation: Observation, rng: random.Random) -> Action | None:
    """Blocks a known host at one of its hosts, looks at a known host's services from one of
    its hosts (its own blocks may refuse that: false positives, reference §6.3) or watches a
    host's data."""
    state = observation.state
    hosts, known = sorted(state.controlled_hosts), sorted(state.known_hosts)
    roll = rng.random()
    if roll < 0.4:
        return Action(ActionType.BlockIP, {"source_host": rng.choice(hosts), "target_host": rng.choice(hosts),
                                           "blocked_host": rng.choice(known)})
    if roll < 0.7:
        return Action(ActionType.FindServices, {"source_host": rng.choice(hosts), "target_host": rng.choice(known)})
    return blocking_defender(observation, rng, block_rate=0.0)


def duel(attacker_steps: int, defender_steps: int) -> TaskConfig:
    agents = [proxy(RED, "RED", [*RED_PARTS, shared(BLUE, 0.5)]), proxy(BLUE, "BLUE", BLUE_PARTS)]
    return task_of(DEFAULT, agents, **{"arena.start": {"Attacker": 1, "Defender": 1},
                                       "coordinator.agents.Attacker.max_steps": attacker_steps,
                                       "coordinator.agents.Defender.max_steps": defender_steps})


def watched() -> TaskConfig:
    """One attacker under the global defender, a scripted benign user whose reward it shares."""
    agents = [proxy(RED, "RED", [*RED_PARTS, shared(GREEN, -0.5)]),
              {"ref": GREEN, "team": "GREEN", "type": "benign", "agent_settings": {"start_step": 1, "frequency": 1},
               "reward_function": {"reward_components": GREEN_PARTS}}]
    return task_of(DEFAULT, agents, **{"env.use_global_defender": True, "arena.seats": {"Attacker": 1},
                                       "arena.start": {"Attacker": 1},
                                       "coordinator.agents.Attacker.max_steps": 40,
                                       "coordinator.agents.Benign": {"max_steps": 60}})


def red_seat(shares: str) -> Seat:
    return Seat(RED, AgentRole.Attacker, [*RED_PARTS, shared(shares, 0.5 if shares == BLUE else -0.5)],
                attacker_policy, shares)


def test_every_component_matches_the_oracle_over_seeded_random_episodes() -> None:
    """Three tasks, seeded episodes: a defender ending first (held while the attacker plays
    on), an attacker ending first (the defender told on its next request), an attacker
    under the global defender with a scripted benign agent. Every reply's breakdown equals
    the oracle's, and every component is seen with a value other than 0."""
    blue = Seat(BLUE, AgentRole.Defender, BLUE_PARTS, defender_policy)
    nonzero: set[str] = set()
    checked = 0
    plans = [(duel(attacker_steps=30, defender_steps=15), [red_seat(BLUE), blue], 4),
             (duel(attacker_steps=12, defender_steps=40), [red_seat(BLUE), blue], 4),
             (watched(), [red_seat(GREEN)], 8)]
    for index, (task, seats, episodes) in enumerate(plans):
        for seed in (1, 2):
            match = Match(task, seats, seed=seed)
            rng = random.Random(seed * 100 + index)
            for _ in range(episodes):
                match.episode(rng)
            nonzero |= match.nonzero
            checked += match.checked
    assert checked > 500
    every = {"netsecgame", "step", "success", "fail", "false-positive", "new-controlled-host", "new-data",
             "data-exfiltrated", "detected", "attacker-blocked", "shared-reward"}
    assert every <= nonzero, f"components never seen with a value: {sorted(every - nonzero)}"


# ---------------------------------------------------------------------- hand-computed cases
def _session(agents: list[dict[str, Any]], seed: int = 42, **changes: Any) -> GameSession:
    return GameSession(task_of(DEFAULT, agents, **changes), seed=seed)


def _breakdown(replies: list[Any], seat: str = RED) -> dict[str, float]:
    [reply] = [r for r in replies if r.seat == seat]
    return reply.observation.info["reward_breakdown"]


ATTACKER_ALONE = {"arena.seats": {"Attacker": 1}, "arena.start": {"Attacker": 1}}
NOTHING = {"netsecgame": 0.0, "step": 0.0, "success": 0.0, "fail": 0.0, "false-positive": 0.0,
           "new-controlled-host": 0.0, "new-data": 0.0, "data-exfiltrated": 0.0, "detected": 0.0,
           "attacker-blocked": 0.0, "new-data#2": 0.0}


def test_hand_computed_winning_attack() -> None:
    """scenario1_small's winning attack, rewards step -1, success 100, fail -10, with
    RED_PARTS' weights: each step's every component by hand."""
    session = _session([proxy(RED, "RED", RED_PARTS)], **ATTACKER_ALONE)
    session.join(RED, RED, AgentRole.Attacker, 0.0, 0)
    step = {"netsecgame": -1.0, "step": -0.5}
    want = [
        {**NOTHING, **step},                                                     # scan
        {**NOTHING, **step},                                                     # find services
        {**NOTHING, **step, "new-controlled-host": 1.5},                         # exploit the SMB server
        {**NOTHING, **step, "new-data": 4 * 0.25, "new-data#2": 4 * -0.75},      # its 3 data and its log
        {**NOTHING, "netsecgame": -1.0 + 100, "step": -0.5, "success": 2 * 100.0,  # exfiltrate: the goal
         "new-data": 0.25, "new-data#2": -0.75, "data-exfiltrated": 5.0},
    ]
    for number, (action, breakdown) in enumerate(zip(WINNING_ATTACK, want, strict=True)):
        assert _breakdown(session.step(RED, action, 0.0, number + 1)) == breakdown, f"step {number + 1}: {action}"


def test_hand_computed_timeout_and_own_cnc_log() -> None:
    """max_steps 2: reading the C&C host's own log is new data, not exfiltrated data; the
    second step times out: fail -10 (x3), netsecgame -1 - 10."""
    session = _session([proxy(RED, "RED", RED_PARTS)], **ATTACKER_ALONE,
                       **{"coordinator.agents.Attacker.max_steps": 2})
    session.join(RED, RED, AgentRole.Attacker, 0.0, 0)
    first = _breakdown(session.step(RED, find_data(CNC, CNC), 0.0, 1))
    assert first == {**NOTHING, "netsecgame": -1.0, "step": -0.5, "new-data": 0.25, "new-data#2": -0.75}
    last = _breakdown(session.step(RED, scan(CLIENT, "192.168.1.0/24"), 0.0, 2))
    assert last == {**NOTHING, "netsecgame": -11.0, "step": -0.5, "fail": 3 * -10.0}


def test_hand_computed_detection_under_the_global_defender() -> None:
    """The first seed whose repeated scans are detected: detected 1 (x -7), fail (x 3)."""
    task = task_of(DEFAULT, [proxy(RED, "RED", RED_PARTS)], **ATTACKER_ALONE, **{"env.use_global_defender": True})
    for seed in range(1, 40):
        session = GameSession(task, seed=seed)
        session.join(RED, RED, AgentRole.Attacker, 0.0, 0)
        for number in range(1, 51):
            [reply] = session.step(RED, scan(CLIENT, "192.168.1.0/24"), 0.0, number)
            if reply.observation.end:
                break
        if reply.observation.info["end_reason"] == "AgentStatus.Fail":
            break
    else:
        raise AssertionError("no seed detected the scans")
    assert reply.observation.info["reward_breakdown"] == {**NOTHING, "netsecgame": -11.0, "step": -0.5,
                                                          "fail": -30.0, "detected": -7.0}


def test_hand_computed_defender_blocks_false_positives_and_success() -> None:
    """A defender (BLUE_PARTS) blocks the C&C (the attacker controls it: attacker-blocked),
    the same again (nothing new), the SMB server (not the attacker's), then scans through its
    own block (one false positive); the attacker times out: the defender succeeds."""
    session = _session([proxy(BLUE, "BLUE", BLUE_PARTS)], **{"coordinator.agents.Attacker.max_steps": 2,
                                                              "arena.start": {"Attacker": 1, "Defender": 1}})
    session.join(RED, RED, AgentRole.Attacker, 0.0, "r0")
    session.join(BLUE, BLUE, AgentRole.Defender, 0.0, "b0")
    plain = {key: 0.0 for key, _, _ in keyed(BLUE_PARTS)} | {"netsecgame": -1.0, "step": -2.0}
    assert _breakdown(session.step(BLUE, block("192.168.2.1", CLIENT, CNC), 0.0, "b1"), BLUE) == {
        **plain, "attacker-blocked": 2.5}
    assert _breakdown(session.step(BLUE, block("192.168.2.1", CLIENT, CNC), 0.0, "b2"), BLUE) == plain
    assert _breakdown(session.step(BLUE, block("192.168.2.1", CLIENT, SMB), 0.0, "b3"), BLUE) == plain
    assert _breakdown(session.step(BLUE, scan(CLIENT, "192.168.1.0/24"), 0.0, "b4"), BLUE) == plain
    assert session.world.false_positives[BLUE] == 1, "the scan's one refused connection: CLIENT to the SMB server"
    session.step(RED, PASS, 0.0, "r1")
    session.step(RED, PASS, 0.0, "r2")  # the attacker times out
    told = _breakdown(session.step(BLUE, PASS, 0.0, "b5"), BLUE)
    assert told == {**{key: 0.0 for key in plain}, "netsecgame": 100.0 - 5.0, "success": 0.5 * 100,
                    "false-positive": 3.0 * -5.0}, "a bystander's end: the final parts only"


def test_hand_computed_shared_reward() -> None:
    """red shares blue's reward (x 0.5): 0 while blue's seat is absent or has not stepped,
    then blue's latest step reward (NetSecGame's -1, blue has no function); a scripted
    benign's step x 4 shared x -0.5 from the turn after its first."""
    session = _session([proxy(RED, "RED", [{"type": "step"}, shared(BLUE, 0.5)]),
                        proxy(BLUE, "BLUE", [{"type": "step", "weight": 3.0}])],
                       **{"arena.start": {"Attacker": 1}})
    session.join(RED, RED, AgentRole.Attacker, 0.0, "r0")
    assert _breakdown(session.step(RED, PASS, 0.0, "r1")) == {"step": -1.0, "shared-reward": 0.0}, "blue absent"
    session.join(BLUE, BLUE, AgentRole.Defender, 0.0, "b0")
    assert _breakdown(session.step(RED, PASS, 0.0, "r2")) == {"step": -1.0, "shared-reward": 0.0}, "no step yet"
    session.step(BLUE, PASS, 0.0, "b1")
    assert _breakdown(session.step(RED, PASS, 0.0, "r3")) == {"step": -1.0, "shared-reward": 0.5 * -3.0}

    green = {"ref": GREEN, "team": "GREEN", "type": "benign", "agent_settings": {"start_step": 1, "frequency": 1},
             "reward_function": {"reward_components": [{"type": "step", "weight": 4.0}]}}
    session = _session([proxy(RED, "RED", [shared(GREEN, -0.5)]), green], **ATTACKER_ALONE)
    session.join(RED, RED, AgentRole.Attacker, 0.0, "r0")
    assert _breakdown(session.step(RED, PASS, 0.0, "r1")) == {"shared-reward": 0.0}
    assert _breakdown(session.step(RED, PASS, 0.0, "r2")) == {"shared-reward": -0.5 * -4.0}
