"""The global defender against reference/netsecgame.md §8: the tables, the window rules
(ratio, consecutive run, exact repeats), the never-detected types and the roll.

An rng whose ``random()`` returns 0.0 detects whenever a roll happens, so counting rolls
with a stub shows exactly when the window rules let a roll through.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs
import pytest

from protocol import IP, Action, ActionType, AgentInfo, AgentRole, Data, Network, Service
from world.global_defender import DETECTION_RULES, WINDOW, DetectionRule, action_key, is_detected

SRC, DST = IP("192.168.2.2"), IP("192.168.1.2")
MS_DS = Service("microsoft-ds", "passive", "10.0.19041", False)
GAME_TYPES = [ActionType.ScanNetwork, ActionType.FindServices, ActionType.FindData,
              ActionType.ExploitService, ActionType.ExfiltrateData, ActionType.BlockIP]


class StubRng:
    """Returns a fixed value from random() and counts the calls."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value
        self.rolls = 0

    def random(self) -> float:
        self.rolls += 1
        return self.value


def make(kind: ActionType, n: int = 0) -> Action:
    """The n-th distinct action of a type (n varies a parameter)."""
    target = IP(f"192.168.1.{n + 2}")
    if kind is ActionType.ScanNetwork:
        return Action(kind, {"source_host": SRC, "target_network": Network(f"192.168.{n + 1}.0", 24)})
    if kind in (ActionType.FindServices, ActionType.FindData):
        return Action(kind, {"source_host": SRC, "target_host": target})
    if kind is ActionType.ExploitService:
        return Action(kind, {"source_host": SRC, "target_host": target, "target_service": MS_DS})
    if kind is ActionType.ExfiltrateData:
        return Action(kind, {"source_host": SRC, "target_host": DST, "data": Data("User1", f"D{n}")})
    if kind is ActionType.BlockIP:
        return Action(kind, {"source_host": SRC, "target_host": DST, "blocked_host": target})
    raise AssertionError(kind)


def other(kind: ActionType, n: int = 0) -> Action:
    """A filler action of a different type that never helps ``kind``'s counts."""
    filler = ActionType.BlockIP if kind is not ActionType.BlockIP else ActionType.FindServices
    return make(filler, 100 + n)


def window(kind: ActionType, pattern: str) -> list[Action]:
    """Actions from a pattern like "x..x" (x: a distinct action of ``kind``, .: filler)."""
    return [make(kind, i) if c == "x" else other(kind, i) for i, c in enumerate(pattern)]


def repeats(history: Sequence[Action], action: Action) -> int:
    """How the session counts them: episode actions, the current one included, whose whole
    dict equals the current action's."""
    key = action_key(action)
    return sum(action_key(a) == key for a in history) + 1


def rolls_for(history: Sequence[Action], action: Action) -> tuple[bool, int]:
    rng = StubRng(0.0)
    detected = is_detected(history, action, repeats(history, action), rng)  # type: ignore[arg-type]
    return detected, rng.rolls


# ---------------------------------------------------------------------------- tables
def test_tables_match_the_reference() -> None:
    """Reference §8 table: probability, window ratio and the consecutive / repeat
    thresholds per type; the window is 5; BlockIP has no rule (issue #471)."""
    assert WINDOW == 5
    expected = {
        ActionType.ScanNetwork: DetectionRule(0.05, 0.25, consecutive=2),
        ActionType.FindServices: DetectionRule(0.075, 0.3, consecutive=3),
        ActionType.ExploitService: DetectionRule(0.1, 0.25, repeats=2),
        ActionType.FindData: DetectionRule(0.025, 0.5, repeats=2),
        ActionType.ExfiltrateData: DetectionRule(0.025, 0.25, consecutive=2),
    }
    assert dict(DETECTION_RULES) == expected


# ---------------------------------------------------------------------------- window rules
@pytest.mark.parametrize("kind", GAME_TYPES[:5], ids=str)
def test_no_detection_before_the_fifth_action(kind: ActionType) -> None:
    """Reference §8 decision step 2: a history shorter than the window (current action
    included) is never detected and no roll happens, however suspicious."""
    same = [make(kind, 0)] * 10
    for earlier in range(WINDOW - 1):
        assert rolls_for(same[:earlier], same[earlier]) == (False, 0)
    assert rolls_for(same[:WINDOW - 1], same[WINDOW - 1]) == (True, 1)


# (type, window pattern with the current action last, rolls?) per the "practical reading"
# table of reference §8: each type's count threshold, with distinct actions (no repeats).
RATIO_CASES = [
    (ActionType.ScanNetwork, "....x", False),
    (ActionType.ScanNetwork, "x...x", True),       # 2 scans: ratio 0.4 >= 0.25
    (ActionType.FindServices, "....x", False),
    (ActionType.FindServices, "x...x", True),      # ratio 0.4 >= 0.3
    (ActionType.ExploitService, "....x", False),
    (ActionType.ExploitService, ".x..x", True),    # ratio 0.4 >= 0.25
    (ActionType.FindData, "x...x", False),         # ratio 0.4 < 0.5
    (ActionType.FindData, "...xx", False),         # a run does not matter for FindData
    (ActionType.FindData, ".xx.x", True),          # 3 of 5: ratio 0.6 >= 0.5
    (ActionType.ExfiltrateData, "....x", False),
    (ActionType.ExfiltrateData, "x...x", True),    # ratio 0.4 >= 0.25
]


@pytest.mark.parametrize(("kind", "pattern", "rolled"), RATIO_CASES,
                         ids=[f"{k.value}-{p}" for k, p, _ in RATIO_CASES])
def test_window_ratio_threshold_decides_the_roll(kind: ActionType, pattern: str, rolled: bool) -> None:
    """Reference §8 decision steps 3-5 and the "practical reading" table."""
    actions = window(kind, pattern)
    assert rolls_for(actions[:-1], actions[-1]) == (rolled, int(rolled))


def test_window_is_the_last_five_actions_current_included() -> None:
    """Reference §8 step 3: earlier actions outside the window do not count for the ratio."""
    scans = [make(ActionType.ScanNetwork, i) for i in range(10)]
    fillers = [other(ActionType.ScanNetwork, i) for i in range(4)]
    assert rolls_for(scans + fillers, make(ActionType.ScanNetwork, 50)) == (False, 0)
    assert rolls_for(scans + fillers[:3], make(ActionType.ScanNetwork, 50)) == (True, 1)


@pytest.mark.parametrize(("kind", "run"), [(ActionType.ScanNetwork, 2), (ActionType.FindServices, 3),
                                           (ActionType.ExfiltrateData, 2)], ids=str)
def test_consecutive_run_threshold(monkeypatch: pytest.MonkeyPatch, kind: ActionType, run: int) -> None:
    """Reference §8 step 4: with the ratio rule out of reach, the longest run of the type
    inside the window decides: a run of exactly the threshold rolls, one less does not,
    and the same count spread out does not."""
    monkeypatch.setitem(DETECTION_RULES, kind, attrs.evolve(DETECTION_RULES[kind], window_ratio=1.01))
    below = "." * (WINDOW - run + 1) + "x" * (run - 1)
    at = "." * (WINDOW - run) + "x" * run
    spread = ".".join("x" * run).rjust(WINDOW, ".")
    assert spread.count("x") == run and "xx" not in spread
    for pattern, rolled in ((below, False), (at, True), (spread, False)):
        actions = window(kind, pattern)
        assert rolls_for(actions[:-1], actions[-1]) == (rolled, int(rolled)), pattern
    if run == 2:  # the run may end before the current action
        actions = window(kind, ".xx.x")
        assert rolls_for(actions[:-1], actions[-1]) == (True, 1)


@pytest.mark.parametrize("kind", [ActionType.ExploitService, ActionType.FindData], ids=str)
def test_exact_repeat_threshold(kind: ActionType) -> None:
    """Reference §8 step 5: the same action (whole dict) for the 2nd time in the episode
    rolls even when the window ratio is low, wherever the first one was."""
    first = make(kind, 7)
    history = [first] + [other(kind, i) for i in range(10)]
    assert rolls_for(history, make(kind, 8)) == (False, 0)  # a different one: no repeat
    assert rolls_for(history, first) == (True, 1)            # the same one again
    assert repeats(history, first) == 2


@pytest.mark.parametrize("kind", [ActionType.ExploitService, ActionType.FindData], ids=str)
def test_repeat_threshold_is_exactly_two(monkeypatch: pytest.MonkeyPatch, kind: ActionType) -> None:
    """Reference §8 step 5 with the ratio rule out of reach: repeats 1 no roll, 2 rolls
    (is_detected takes the count, the current action included)."""
    monkeypatch.setitem(DETECTION_RULES, kind, attrs.evolve(DETECTION_RULES[kind], window_ratio=1.01))
    action = make(kind, 3)
    history = [action] * 4
    for count, rolled in ((1, False), (2, True), (5, True)):
        rng = StubRng(0.0)
        assert is_detected(history, action, count, rng) is rolled  # type: ignore[arg-type]
        assert rng.rolls == int(rolled)


def test_service_fields_make_a_different_exploit() -> None:
    """Reference §8 step 3 "whole dict, parameters included": an exploit of the same host
    with a service differing in one field is not a repeat."""
    first = make(ActionType.ExploitService, 0)
    variant = Action(ActionType.ExploitService, {**first.parameters,
                                                 "target_service": attrs.evolve(MS_DS, is_local=True)})
    history = [first] + [other(ActionType.ExploitService, i) for i in range(6)]
    assert rolls_for(history, variant) == (False, 0)
    assert rolls_for(history, first) == (True, 1)


# ---------------------------------------------------------------------------- action_key
def test_action_key_compares_the_whole_dict_including_all_data_fields() -> None:
    """Reference §8 step 3: repeats compare the action dicts, so Data parameters count
    with size and content too, although Data equality ignores them (§1.4)."""
    plain = make(ActionType.ExfiltrateData, 0)
    datum = plain.parameters["data"]
    for changed in (attrs.evolve(datum, content="x"), attrs.evolve(datum, size=5),
                    attrs.evolve(datum, type="log")):
        variant = Action(ActionType.ExfiltrateData, {**plain.parameters, "data": changed})
        assert action_key(variant) != action_key(plain)
        assert (variant.as_dict == plain.as_dict) is False
    same = Action(ActionType.ExfiltrateData, {"data": Data("User1", "D0"), "target_host": DST,
                                              "source_host": SRC})  # other key order
    assert action_key(same) == action_key(plain)
    assert same.as_dict == plain.as_dict


def test_action_key_agrees_with_dict_equality() -> None:
    """action_key(a) == action_key(b) exactly when a.as_dict == b.as_dict."""
    base = [make(kind, n) for kind in GAME_TYPES for n in range(3)]
    datum = Data("User1", "D0")
    base += [Action(ActionType.ExfiltrateData, {"source_host": SRC, "target_host": DST,
                                                "data": attrs.evolve(datum, content=c)}) for c in ("", "a")]
    base += [Action(ActionType.FindData, {"source_host": DST, "target_host": SRC}),
             Action(ActionType.FindServices, {"source_host": SRC, "target_host": IP("192.168.1.2")})]
    for a in base:
        for b in base:
            assert (action_key(a) == action_key(b)) == (a.as_dict == b.as_dict), (a, b)


def test_exfiltration_with_different_data_content_is_not_a_repeat() -> None:
    """The Data content difference keeps two otherwise-equal exfiltrations apart."""
    plain = make(ActionType.ExfiltrateData, 0)
    variant = Action(ActionType.ExfiltrateData,
                     {**plain.parameters, "data": attrs.evolve(plain.parameters["data"], content="x")})
    assert variant == plain  # Action equality follows Data equality ...
    assert repeats([plain, plain], variant) == 1  # ... repeats do not
    assert repeats([plain, plain], plain) == 3


# ---------------------------------------------------------------------------- never detected
@pytest.mark.parametrize("action", [
    make(ActionType.BlockIP, 0),
    Action(ActionType.JoinGame, {"agent_info": AgentInfo("a", AgentRole.Attacker)}),
    Action(ActionType.ResetGame, {}),
    Action(ActionType.QuitGame, {}),
], ids=lambda a: a.action_type.value)
def test_block_ip_and_protocol_actions_are_never_detected(action: Action) -> None:
    """Reference §8 step 6 (issue #471): BlockIP and protocol actions are never detected,
    no roll happens, however often they are repeated."""
    history = [action] * 20
    rng = StubRng(0.0)
    assert is_detected(history, action, 21, rng) is False  # type: ignore[arg-type]
    assert rng.rolls == 0
    assert action.action_type not in DETECTION_RULES


# ---------------------------------------------------------------------------- the roll
@pytest.mark.parametrize("kind", GAME_TYPES[:5], ids=str)
def test_roll_is_strictly_below_the_probability(kind: ActionType) -> None:
    """Reference §8 step 4: detected when ``random.random() < probability``."""
    probability = DETECTION_RULES[kind].probability
    actions = [make(kind, i) for i in range(WINDOW)]
    for value, detected in ((probability, False), (probability - 1e-9, True), (0.999, False)):
        rng = StubRng(value)
        assert is_detected(actions[:-1], actions[-1], 1, rng) is detected  # type: ignore[arg-type]
        assert rng.rolls == 1


@pytest.mark.parametrize("kind", GAME_TYPES[:5], ids=str)
def test_detection_rate_matches_the_probability(kind: ActionType) -> None:
    """Reference §8 table: over a bounded number of suspicious windows with a seeded rng,
    the detection rate is the type's probability (bound: about 6 standard deviations)."""
    rng = random.Random(20240601)
    actions = [make(kind, i) for i in range(WINDOW)]
    trials = 20000
    hits = sum(is_detected(actions[:-1], actions[-1], 1, rng) for _ in range(trials))
    probability = DETECTION_RULES[kind].probability
    sd = (probability * (1 - probability) / trials) ** 0.5
    assert abs(hits / trials - probability) < 6 * sd


def test_rolls_are_reproducible_with_the_same_seed() -> None:
    """Reference §6.12 / §9: the rolls come from the seeded game rng."""
    actions = [make(ActionType.ExploitService, i) for i in range(WINDOW)]

    def run(seed: int) -> list[bool]:
        rng = random.Random(seed)
        return [is_detected(actions[:-1], actions[-1], 1, rng) for _ in range(300)]

    assert run(7) == run(7)
    assert run(7) != run(8)
