"""GameSession: joins, steps, resets, quits, holds and leases (reference netsecgame.md
§2.2-§3, with DESIGN §3's fixes). Every test ends with every request answered once
(the ``games`` fixture checks it)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from protocol import IP, AgentRole, AgentStatus, Data, ErrorCode, GameStatus
from world import parse_task

from .conftest import (
    CLIENT,
    CNC,
    QUIT,
    SECRET,
    SMB,
    TASKS,
    WINNING_ATTACK,
    block,
    exfiltrate,
    find_data,
    find_services,
    join,
    reset,
    scan,
)

DEFAULT = yaml.safe_load((TASKS / "default.yaml").read_text())


def task_with(changes: dict[str, Any]) -> Any:
    """The default task (attacker vs defender, scenario1_small) with nested changes; both
    seats needed to start unless ``arena.start`` is given."""
    document = copy.deepcopy(DEFAULT)
    document["arena"]["start"] = {"Attacker": 1, "Defender": 1}
    for path, value in changes.items():
        node = document
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_task(document, "test-task.yaml")


ATTACKERS_ONLY = {"arena.seats": {"Attacker": 1}, "arena.start": {"Attacker": 1}}
TWO_ATTACKERS = {"arena.seats": {"Attacker": 2}, "arena.start": {"Attacker": 2}}


def start_pair(games: Any, task: Any = None) -> Any:
    game = games(task or task_with({}))
    held = game.send("red", join("Red", "Attacker"))
    assert game.reply(held) is None, "the attacker waits for the defender"
    assert game.call("blue", join("Blue", "Defender")).status is GameStatus.CREATED
    assert game.reply(held).status is GameStatus.CREATED
    return game


def test_join_reply_is_held_until_the_seats_are_filled(games: Any) -> None:
    """DESIGN §3: a game starts when its seats are filled and an attacker is present."""
    game = start_pair(games)
    welcome = game.inbox["red"][0].message
    assert welcome["message"] == "Welcome Red, registred as AgentRole.Attacker"
    assert welcome["max_steps"] == 50 and len(welcome["actions"]) == 9
    assert len(welcome["configuration_hash"]) == 64
    defender_state = game.inbox["blue"][0].observation.state
    assert IP("192.168.1.1") in defender_state.controlled_hosts  # all_local includes routers


def test_defenders_alone_never_start_and_their_join_times_out(games: Any) -> None:
    game = games(task_with({}))
    waiting = game.send("blue", join("Blue", "Defender"))
    assert game.reply(waiting) is None
    assert game.advance(59.0) == []
    expired = game.advance(2.0)
    assert [r.code for r in expired] == [ErrorCode.HOLD_TIMEOUT]
    assert game.session.seats == {}, "the join's seat is freed"


def test_attacker_and_defender_play_to_the_end(games: Any) -> None:
    """The defender keeps acting while the attacker plays; when the attack succeeds the
    defender's episode ends too, with reward fail + false positives (reference §3.4)."""
    game = start_pair(games)
    for action in WINNING_ATTACK[:-1]:
        assert game.call("red", action).observation.end is False
        defender_step = game.call("blue", scan("192.168.1.1", "192.168.1.0/24"))
        assert defender_step.status is GameStatus.OK and defender_step.observation.end is False
    final = game.call("red", WINNING_ATTACK[-1])
    assert final.observation.end is True and final.observation.reward == 99
    assert final.observation.info == {"end_reason": "AgentStatus.Success"}
    told = game.call("blue", scan("192.168.1.1", "192.168.1.0/24"))
    assert told.status is GameStatus.OK and told.observation.end is True
    assert told.observation.reward == -10
    assert told.observation.info == {"end_reason": "AgentStatus.Fail"}
    defender = game.session.seats["blue"].trajectory
    assert sum(defender.rewards) == len(WINNING_ATTACK[:-1]) * -1 - 10, "the told reward is in the trajectory"
    assert defender.end_reason is AgentStatus.Fail and len(defender.actions) == len(WINNING_ATTACK[:-1])
    after = game.call("blue", scan("192.168.1.1", "192.168.1.0/24"))
    assert after.status is GameStatus.FORBIDDEN and after.code is ErrorCode.EPISODE_ENDED
    assert after.observation.info["info"].startswith("Episode ended.")
    forbidden = game.call("red", WINNING_ATTACK[0])
    assert forbidden.status is GameStatus.FORBIDDEN and forbidden.observation.reward == 99
    first = game.send("red", reset())
    assert game.reply(first) is None, "a reset waits for every agent"
    assert game.call("blue", reset()).status is GameStatus.RESET_DONE
    assert game.reply(first).status is GameStatus.RESET_DONE


def test_defender_wins_with_false_positives_when_the_attacker_times_out(games: Any) -> None:
    """Attacker timeout: attacker step -1 + fail -10; defender success 100 plus
    false_positive -5 for each refusal its own block caused a defender (reference §3.4, §6.3)."""
    game = start_pair(games, task_with({"coordinator.agents.Attacker.max_steps": 3}))
    assert game.call("blue", block("192.168.2.1", CLIENT, "192.168.1.2")).status is GameStatus.OK
    refused = game.call("blue", find_services(CLIENT, "192.168.1.2"))  # its own block refuses it
    assert refused.observation.reward == -1
    assert game.session.world.false_positives["blue"] == 1
    for _ in range(2):
        assert game.call("red", scan(CLIENT, "192.168.1.0/24")).observation.end is False
    last = game.call("red", scan(CLIENT, "192.168.1.0/24"))
    assert last.observation.end is True and last.observation.reward == -11
    assert last.observation.info == {"end_reason": "AgentStatus.TimeoutReached"}
    told = game.call("blue", scan("192.168.1.1", "192.168.1.0/24"))
    assert told.observation.reward == 100 - 5
    assert told.observation.info == {"end_reason": "AgentStatus.Success"}
    for seat in ("red", "blue"):
        game.send(seat, QUIT)


def test_an_ended_agent_waits_for_the_other_attacker(games: Any) -> None:
    """Reference §2.3: a finished agent's last reply is held until every agent finished."""
    game = games(task_with(TWO_ATTACKERS))
    first, second = game.send("a", join("A")), game.send("b", join("B"))
    assert game.reply(first) and game.reply(second)
    for action in WINNING_ATTACK[:-1]:
        game.call("a", action)
    held = game.send("a", WINNING_ATTACK[-1])
    assert game.reply(held) is None
    busy = game.call("a", reset())
    assert busy.code is ErrorCode.BUSY, "one request at a time per seat"
    game.call("b", scan(CLIENT, "192.168.1.0/24"))
    assert game.reply(held) is None
    for _ in range(48):
        game.call("b", scan(CLIENT, "192.168.1.0/24"))
    timed_out = game.call("b", scan(CLIENT, "192.168.1.0/24"))
    assert timed_out.observation.reward == -11
    released = game.reply(held)
    assert released.observation.reward == 99 and released.observation.end is True


def test_episode_end_hold_times_out_as_if_the_missing_agent_quit(games: Any) -> None:
    """DESIGN §3: on expiry an episode-end hold releases as if the missing agent quit."""
    game = games(task_with(TWO_ATTACKERS))
    game.send("a", join("A"))
    game.send("b", join("B"))
    for action in WINNING_ATTACK[:-1]:
        game.call("a", action)
    held = game.send("a", WINNING_ATTACK[-1])
    assert game.reply(held) is None
    game.advance(61.0)
    assert game.reply(held).observation.reward == 99
    gone = game.call("b", scan(CLIENT, "192.168.1.0/24"))
    assert gone.code is ErrorCode.NOT_JOINED


def test_bad_requests_get_a_reason_and_change_nothing(games: Any) -> None:
    game = games(task_with(ATTACKERS_ONLY))
    assert game.call("x", scan(CLIENT, "192.168.1.0/24")).code is ErrorCode.NOT_JOINED
    game.call("a", join("A"))
    again = game.call("a", join("A"))
    assert (again.status, again.message, again.observation) == (
        GameStatus.BAD_REQUEST, "Agent already exists.", None)
    assert game.call("b", join("B", "Benign")).code is ErrorCode.ROLE_NOT_ALLOWED
    assert game.call("c", join("C")).code is ErrorCode.GAME_FULL
    before = game.session.seats["a"].state
    broken = scan(CLIENT, "192.168.1.0/24")
    del broken.parameters["source_host"]
    reply = game.call("a", broken)
    assert reply.code is ErrorCode.MALFORMED and "parameters.source_host" in reply.message["reason"]
    assert reply.message["message"] == "Bad request received: Malformed Action"
    assert game.call("a", "not an action").code is ErrorCode.MALFORMED
    assert game.session.seats["a"].state is before and game.session.seats["a"].steps == 0


def test_failed_preconditions_still_cost_a_step(games: Any) -> None:
    """Reference §6.1: an impossible action leaves the state unchanged, costs a step."""
    game = games(task_with(ATTACKERS_ONLY))
    start = game.call("a", join("A")).observation.state
    reply = game.call("a", find_services("192.168.1.3", "192.168.1.3"))
    assert reply.observation.state == start and reply.observation.reward == -1
    assert game.session.seats["a"].steps == 1


def test_reset_consensus_conflicts_are_answered_and_nothing_stops(games: Any) -> None:
    """Reference §3.5: distinct seeds (or topology votes) are invalid; unlike upstream the
    game goes on and the agents may ask again (DESIGN §3)."""
    game = games(task_with(TWO_ATTACKERS))
    game.send("a", join("A"))
    game.send("b", join("B"))
    first = game.send("a", reset(seed=1))
    conflict = game.call("b", reset(seed=2))
    assert conflict.code is ErrorCode.SEED_CONFLICT
    assert game.reply(first).code is ErrorCode.SEED_CONFLICT
    assert game.call("a", scan(CLIENT, "192.168.1.0/24")).status is GameStatus.OK
    first = game.send("a", reset(seed=3, randomize=True))
    assert game.call("b", reset(seed=3, randomize=False)).code is ErrorCode.TOPOLOGY_CONFLICT
    assert game.reply(first).code is ErrorCode.TOPOLOGY_CONFLICT
    first = game.send("a", reset(seed=None))
    assert game.call("b", reset(seed=5)).status is GameStatus.RESET_DONE, "one seed is agreement"
    assert game.reply(first).status is GameStatus.RESET_DONE
    assert game.session.seats["a"].steps == 0


def test_seedless_reset_is_valid_and_returns_the_trajectory(games: Any) -> None:
    """Upstream's main branch: a reset without a seed is valid (reference §0.1)."""
    game = games(task_with(ATTACKERS_ONLY))
    game.call("a", join("A"))
    for action in WINNING_ATTACK:
        game.call("a", action)
    done = game.call("a", reset(trajectory=True))
    assert done.status is GameStatus.RESET_DONE
    trajectory = done.message["last_trajectory"].as_dict()
    assert len(trajectory["trajectory"]["actions"]) == 5
    assert len(trajectory["trajectory"]["states"]) == 6
    assert trajectory["trajectory"]["rewards"] == [-1, -1, -1, -1, 99]
    assert trajectory["end_reason"] == "AgentStatus.Success"
    assert "last_trajectory" not in game.call("a", reset()).message


def test_reset_hold_times_out_and_drops_the_vote(games: Any) -> None:
    game = games(task_with(TWO_ATTACKERS))
    game.send("a", join("A"))
    game.send("b", join("B"))
    waiting = game.send("a", reset(seed=1))
    game.advance(61.0)
    assert game.reply(waiting).code is ErrorCode.HOLD_TIMEOUT
    second = game.send("b", reset(seed=2))
    assert game.reply(second) is None, "a's dropped vote no longer counts"
    game.send("a", QUIT)
    assert game.reply(second) is None, "the reset ran but the game waits for a second attacker"
    assert game.call("c", join("C")).status is GameStatus.CREATED
    assert game.reply(second).status is GameStatus.RESET_DONE


def test_quit_is_answered_frees_the_seat_and_answers_its_held_request(games: Any) -> None:
    game = games(task_with({}))
    held = game.send("red", join("Red"))
    bye = game.call("red", QUIT)
    assert bye.status is GameStatus.OK and "quit" in bye.message["message"]
    assert game.reply(held).code is ErrorCode.SEAT_RELEASED
    assert game.session.free_seats(AgentRole.Attacker) == 1
    assert game.call("red", QUIT).code is ErrorCode.NOT_JOINED


def test_the_world_is_reset_between_sessions(games: Any) -> None:
    """Reference §6.10 / §12.1.11: upstream keeps a previous session's exfiltrated data;
    here the last agent leaving resets the world."""
    game = games(task_with(ATTACKERS_ONLY))
    game.call("a", join("A"))
    for action in WINNING_ATTACK:
        game.call("a", action)
    assert SECRET in game.session.world.node_data("outside_node")
    game.call("a", QUIT)
    assert SECRET not in game.session.world.node_data("outside_node")
    fresh = game.call("b", join("B"))
    assert fresh.observation.state.known_data == {}


def test_silent_seats_expire_after_their_lease(games: Any) -> None:
    game = games(task_with(ATTACKERS_ONLY | {"arena.seat_lease": 30}))
    game.call("a", join("A"))
    game.advance(20.0)
    game.call("a", scan(CLIENT, "192.168.1.0/24"))  # renews the lease
    game.advance(20.0)
    assert "a" in game.session.seats
    game.advance(11.0)
    assert "a" not in game.session.seats
    assert game.call("a", scan(CLIENT, "192.168.1.0/24")).code is ErrorCode.NOT_JOINED


def test_goal_beats_detection_on_the_same_step(games: Any) -> None:
    """Reference §3.2 step 4: ties go to the attacker; detection beats the timeout."""
    game = games(task_with(ATTACKERS_ONLY | {"env.use_global_defender": True}))
    game.session.rng.random = lambda: 0.0  # every roll detects
    game.call("a", join("A"))
    for action in WINNING_ATTACK[:-1]:
        game.call("a", action)
    game.call("a", exfiltrate(SMB, CNC, Data("User2", "Data2FromServer1")))
    won = game.call("a", WINNING_ATTACK[-1])  # second exfiltration in the window: a roll
    assert won.observation.info == {"end_reason": "AgentStatus.Success"}


def test_detection_ends_the_episode_with_fail(games: Any) -> None:
    game = games(task_with(ATTACKERS_ONLY | {"env.use_global_defender": True}))
    game.session.rng.random = lambda: 0.0
    game.call("a", join("A"))
    for action in WINNING_ATTACK[:-1]:
        game.call("a", action)
    game.call("a", exfiltrate(SMB, CNC, Data("User2", "Data2FromServer1")))
    caught = game.call("a", exfiltrate(SMB, CNC, Data("User1", "Data3FromServer1")))
    assert caught.observation.info == {"end_reason": "AgentStatus.Fail"}
    assert caught.observation.reward == -11 and caught.observation.end is True
    assert game.session.seats["a"].status is AgentStatus.Fail


def test_defender_timeout_waits_for_the_attacker(games: Any) -> None:
    game = start_pair(games, task_with({"coordinator.agents.Defender.max_steps": 2}))
    game.call("blue", find_data("192.168.1.2", "192.168.1.2"))
    held = game.send("blue", find_data("192.168.1.2", "192.168.1.2"))
    assert game.reply(held) is None, "its episode ended; the attacker still plays"
    for action in WINNING_ATTACK:
        game.call("red", action)
    assert game.reply(held).observation.reward == -1 - 10
    assert game.reply(held).observation.info == {"end_reason": "AgentStatus.Fail"}


def test_benign_agents_use_netsecgame_fixed_views(games: Any) -> None:
    """Reference §4.1: benign start is one to three random start hosts; goal unreachable."""
    game = games(task_with({"arena.seats": {"Attacker": 1, "Benign": 1}, "arena.start": {"Attacker": 1, "Benign": 1}}))
    game.send("a", join("A"))
    benign = game.call("g", join("G", "Benign"))
    assert benign.status is GameStatus.CREATED
    assert 1 <= len(benign.observation.state.controlled_hosts) <= 3
    assert game.session.seats["g"].goal.known_data == {IP("1.1.1.1"): frozenset({Data("User1", "DataFromInternet")})}
    assert benign.message["goal_description"] == ""


def test_trajectories_are_saved_at_reset(games: Any, tmp_path: Any) -> None:
    """Reference §3.7: one JSON line per agent per episode, named date_name_role."""
    game = games(task_with(ATTACKERS_ONLY | {"env.save_trajectories": True,
                                             "arena.trajectory_dir": str(tmp_path)}))
    game.call("a", join("My Agent!"))
    for action in WINNING_ATTACK:
        game.call("a", action)
    game.call("a", reset(seed=1))
    game.call("a", reset(seed=1))
    (path,) = tmp_path.iterdir()
    assert path.name.endswith("_My_Agent_AgentRole.Attacker.jsonl")
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    import json
    assert json.loads(lines[0])["trajectory"]["rewards"] == [-1, -1, -1, -1, 99]
    assert json.loads(lines[1])["trajectory"]["actions"] == []


@pytest.mark.parametrize("seed", [1, 7, 42])
def test_same_seed_same_episode(games: Any, seed: int) -> None:
    """DESIGN §3: one Random per game; same seed, same draws."""
    document = copy.deepcopy(DEFAULT)
    document["coordinator"]["agents"]["Attacker"]["start_position"]["controlled_hosts"] = ["random"]
    document["coordinator"]["agents"]["Attacker"]["goal"]["known_data"] = {CNC: ["random"]}
    document["arena"]["seats"] = document["arena"]["start"] = {"Attacker": 1}
    task = parse_task(document, "random.yaml")
    starts = []
    for _ in range(2):
        game = games(task, seed=seed)
        starts.append((game.call("a", join("A")).observation.state, game.session.seats["a"].goal))
    assert starts[0][0] == starts[1][0] and starts[0][1] == starts[1][1]


def test_trace_events_and_released_seats(games: Any) -> None:
    """The host drains ``events`` (the trace) and ``released`` (seats to free)."""
    game = games(task_with(ATTACKERS_ONLY))
    game.session.events = []
    game.call("a", join("A"))
    for action in WINNING_ATTACK:
        game.call("a", action)
    kinds = [event["kind"] for event in game.session.events]
    assert kinds == ["join"] + ["step"] * 5 + ["episode"]
    last_step, episode = game.session.events[-2:]
    assert last_step["end"] is True and last_step["reward"] == 99 and last_step["action"][0] == 4
    assert episode["return"] == 95 and episode["end_reason"] == "AgentStatus.Success"
    assert episode["steps"] == 5 and episode["task"] == "default"
    game.session.step_events = False
    game.session.events.clear()
    game.call("a", reset())
    game.call("a", WINNING_ATTACK[0])
    game.call("a", QUIT)
    assert [event["kind"] for event in game.session.events] == ["reset", "quit"]
    assert game.session.released == ["a"]


def test_a_task_may_start_games_before_every_seat_is_taken(games: Any) -> None:
    """``arena.start``: the default task starts with its attacker; a defender joins the
    running episode and plays until the attacker's episode ends."""
    game = games()
    assert game.call("red", join("Red")).status is GameStatus.CREATED
    game.call("red", WINNING_ATTACK[0])
    assert game.call("blue", join("Blue", "Defender")).status is GameStatus.CREATED
    for action in WINNING_ATTACK[1:]:
        game.call("blue", scan("192.168.1.1", "192.168.1.0/24"))
        game.call("red", action)
    assert game.call("blue", scan("192.168.1.1", "192.168.1.0/24")).observation.info == {
        "end_reason": "AgentStatus.Fail"}
