"""``arena replay`` on real trajectories: episodes played in process on scenario1_small
(a winning attack, random attackers, an episode reset half way) and saved by the world
itself (``env.save_trajectories``), then replayed and checked against the file."""

from __future__ import annotations

import doctest
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

import bin.replay
import bin.replay_diff
from agents.policies import random_attacker
from bin.cli import main
from bin.replay import Episode, action_text, read_episodes, replay
from bin.replay_diff import StateChange, StateDelta
from protocol import IP, Action, ActionType, Data, GameState, Network, Service
from world import GameSession, parse_task

from .conftest import TASKS, WINNING_ATTACK, join, reset

ROOT = Path(__file__).resolve().parents[1]

ATTACKER_TASK = TASKS / "scenario1_small_attacker.yaml"


def _session(directory: Path, seed: int) -> GameSession:
    document = yaml.safe_load(ATTACKER_TASK.read_text())
    document["env"]["save_trajectories"] = True
    document["arena"] = {"trajectory_dir": str(directory)}
    return GameSession(parse_task(document, "replay.yaml"), seed=seed, name="replay")


def _play(directory: Path, name: str, seed: int, plans: list[Any]) -> Path:
    """Play one episode per plan (a list of actions, or ``("random", steps or None)``),
    resetting after each, so the world appends each episode's line; returns the file."""
    session, rng, request = _session(directory, seed), random.Random(seed), 0

    def send(action: Action) -> Any:
        nonlocal request
        request += 1
        (reply,) = session.handle("seat", action, 0.0, request)
        return reply.observation

    observation = send(join(name))
    for plan in plans:
        if isinstance(plan, list):
            for action in plan:
                observation = send(action)
        else:
            limit = plan[1]
            while not observation.end and limit != 0:
                observation = send(random_attacker(observation, rng))
                limit = None if limit is None else limit - 1
        observation = send(reset(seed=seed))
    (path,) = directory.glob(f"*_{name}_AgentRole.Attacker.jsonl")
    return path


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("trajectories")
    alice = _play(directory, "Alice", 3, [WINNING_ATTACK, ("random", None), ("random", 6), ("random", None)])
    bob = _play(directory, "Bob", 4, [("random", None), WINNING_ATTACK])
    mixed = directory / "mixed.jsonl"
    mixed.write_bytes(alice.read_bytes() + bob.read_bytes())
    return {"alice": alice, "bob": bob, "mixed": mixed}


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(*arguments: Any, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(replay, [str(a) for a in arguments], input=stdin)


# --------------------------------------------------------------------------- the diff


def _parts_of_dict(state: dict[str, Any]) -> dict[str, set[Any]]:
    """A state dict's parts as plain sets, without the protocol types."""
    return {
        "networks": {(n["ip"], n["mask"]) for n in state["known_networks"]},
        "hosts": {h["ip"] for h in state["known_hosts"]},
        "controlled": {h["ip"] for h in state["controlled_hosts"]},
        "services": {(ip, s["name"], s["type"], s["version"], s["is_local"])
                     for ip, services in state["known_services"].items() for s in services},
        "data": {(ip, d["owner"], d["id"], d["type"]) for ip, data in state["known_data"].items() for d in data},
        "blocks": {(ip, b["ip"]) for ip, blocks in state.get("known_blocks", {}).items() for b in blocks},
    }


def _parts_of_delta(delta: StateDelta) -> dict[str, set[Any]]:
    return {
        "networks": {(n.ip, n.mask) for n in delta.networks},
        "hosts": {h.ip for h in delta.hosts},
        "controlled": {h.ip for h in delta.controlled_hosts},
        "services": {(h.ip, s.name, s.type, s.version, s.is_local) for h, s in delta.services},
        "data": {(h.ip, d.owner, d.id, d.type) for h, d in delta.data},
        "blocks": {(h.ip, b.ip) for h, b in delta.blocks},
    }


def test_each_steps_change_is_the_set_difference_of_its_states(played: dict[str, Path]) -> None:
    episodes, report = read_episodes(played["mixed"])
    assert report.skipped == [] and len(episodes) == 6
    kinds_seen: set[str] = set()
    for episode, record in zip(episodes, _records(played["mixed"]), strict=True):
        states = record["trajectory"]["states"]
        steps = episode.replay().steps
        assert len(steps) == len(states) - 1 == episode.steps
        for step, before, after in zip(steps, states, states[1:], strict=False):
            old, new = _parts_of_dict(before), _parts_of_dict(after)
            added, removed = _parts_of_delta(step.change.added), _parts_of_delta(step.change.removed)
            assert added == {kind: new[kind] - old[kind] for kind in old}
            assert removed == {kind: old[kind] - new[kind] for kind in old}
            assert step.change.is_empty == (old == new)
            kinds_seen |= {kind for kind, items in added.items() if items}
    assert {"hosts", "services", "controlled", "data"} <= kinds_seen


def test_removals_and_blocks_are_shown() -> None:
    host, web = IP("10.0.0.3"), Service("http", "passive", "2.4", False)
    before = GameState(controlled_hosts={IP("10.0.0.2"), host}, known_hosts={IP("10.0.0.2"), host},
                       known_services={host: {web}}, known_data={host: {Data("User1", "D")}},
                       known_networks={Network("10.0.0.0", 24)})
    after = GameState(controlled_hosts={IP("10.0.0.2")}, known_hosts={IP("10.0.0.2"), host},
                      known_networks={Network("10.0.0.0", 24), Network("10.0.1.0", 24)},
                      known_blocks={IP("10.0.0.2"): {host}})
    change = StateChange.between(before, after)
    assert change.lines() == [
        "+ network 10.0.1.0/24",
        "+ block 10.0.0.3 on 10.0.0.2",
        "- controlled 10.0.0.3",
        "- service http on 10.0.0.3",
        "- data (User1, D) on 10.0.0.3",
    ]
    assert StateChange.from_dict(json.loads(json.dumps(change.as_dict))) == change
    assert str(StateChange.between(after, after)) == "(no change)"


def test_hosts_are_listed_in_address_order() -> None:
    after = GameState(known_hosts={IP("10.0.0.10"), IP("10.0.0.9"), IP("9.0.0.1")})
    assert StateChange.between(GameState(), after).lines() == [
        "+ host 9.0.0.1", "+ host 10.0.0.9", "+ host 10.0.0.10"]


# --------------------------------------------------------------------------- the text


def test_the_text_lists_every_action_in_order_with_its_reward(played: dict[str, Path]) -> None:
    records = _records(played["alice"])
    for number, record in enumerate(records, start=1):
        result = _run(played["alice"], "--episode", number)
        assert result.exit_code == 0, result.output
        trajectory = record["trajectory"]
        expected = [f"step {k}: {action_text(Action.from_dict(action))}  reward {reward:g}"
                    for k, (action, reward) in enumerate(zip(trajectory["actions"], trajectory["rewards"],
                                                             strict=True), start=1)]
        assert [line for line in result.stdout.splitlines() if line.startswith("step ")] == expected
        total = sum(trajectory["rewards"])
        assert result.stdout.startswith(f"episode {number} of {len(records)} (line {number}): Alice (Attacker), "
                                        f"{len(expected)} steps, return {total:g}, end reason ")


def test_the_winning_attack_reads_as_a_kill_chain(played: dict[str, Path]) -> None:
    result = _run(played["alice"])  # episode 1 by default
    assert result.exit_code == 0, result.output
    steps = re.split(r"\n(?=step )", result.stdout.strip())
    assert steps[0].splitlines()[0] == ("episode 1 of 4 (line 1): Alice (Attacker), 5 steps, return 95, "
                                        "end reason Success")
    assert "  + controlled 192.168.2.2" in steps[0] and "  + controlled 213.47.23.195" in steps[0]
    assert steps[1:] == [
        "step 1: ScanNetwork 192.168.2.2 -> 192.168.1.0/24  reward -1\n"
        "  + host 192.168.1.2\n  + host 192.168.1.3\n  + host 192.168.1.4",
        "step 2: FindServices 192.168.2.2 -> 192.168.1.2  reward -1\n"
        "  + service microsoft-ds on 192.168.1.2\n  + service ms-wbt-server on 192.168.1.2",
        "step 3: ExploitService 192.168.2.2 -> 192.168.1.2 microsoft-ds  reward -1\n"
        "  + controlled 192.168.1.2",
        "step 4: FindData 192.168.1.2 -> 192.168.1.2  reward -1\n"
        "  + data (User1, Data3FromServer1) on 192.168.1.2\n  + data (User1, DataFromServer1) on 192.168.1.2\n"
        "  + data (User2, Data2FromServer1) on 192.168.1.2\n  + data (system, logfile) on 192.168.1.2",
        "step 5: ExfiltrateData (User1, DataFromServer1) 192.168.1.2 -> 213.47.23.195  reward 99\n"
        "  + data (User1, DataFromServer1) on 213.47.23.195",
    ]


def test_an_unfinished_episode_has_no_end_reason(played: dict[str, Path]) -> None:
    result = _run(played["alice"], "--episode", 3)  # reset after 6 random steps
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("6 steps, return -6, end reason -")


def test_repeated_actions_show_no_change(played: dict[str, Path]) -> None:
    changes = [step.change for episode in read_episodes(played["mixed"])[0] for step in episode.replay().steps]
    assert any(change.is_empty for change in changes), "random attackers repeat themselves"
    assert "  (no change)" in _run(played["alice"], "--episode", 2).stdout


# --------------------------------------------------------------------------- options


def _table(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines()[1:]]


def test_list_matches_the_file(played: dict[str, Path]) -> None:
    records = _records(played["mixed"])
    result = _run(played["mixed"], "--list")
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n", 1)[0].split() == ["#", "line", "agent", "role", "steps", "return", "end",
                                                      "reason"]
    rows = _table(result)
    assert len(rows) == len(records) == 6
    for number, (row, record) in enumerate(zip(rows, records, strict=True), start=1):
        rewards = record["trajectory"]["rewards"]
        end = (record["end_reason"] or "-").removeprefix("AgentStatus.")
        assert row == [str(number), str(number), record["agent_name"], "Attacker", str(len(rewards)),
                       f"{sum(rewards):g}", end]
    as_json = [json.loads(line) for line in _run(played["mixed"], "--list", "--json").stdout.splitlines()]
    assert [entry["steps"] for entry in as_json] == [len(r["trajectory"]["actions"]) for r in records]
    assert [entry["return"] for entry in as_json] == [sum(r["trajectory"]["rewards"]) for r in records]
    assert [entry["end_reason"] for entry in as_json] == [r["end_reason"] for r in records]


def test_json_round_trips(played: dict[str, Path]) -> None:
    record = _records(played["alice"])[1]
    result = _run(played["alice"], "--episode", 2, "--json")
    assert result.exit_code == 0, result.output
    header, *steps = (json.loads(line) for line in result.stdout.splitlines())
    trajectory = record["trajectory"]
    assert header["episode"] == 2 and header["episodes"] == 4 and header["agent_name"] == "Alice"
    assert header["steps"] == len(steps) == len(trajectory["actions"])
    assert header["return"] == sum(trajectory["rewards"]) and header["end_reason"] == record["end_reason"]
    assert GameState.from_dict(header["start"]) == GameState.from_dict(trajectory["states"][0])
    states = [GameState.from_dict(state) for state in trajectory["states"]]
    for k, step in enumerate(steps):
        assert step["step"] == k + 1
        assert Action.from_dict(step["action"]) == Action.from_dict(trajectory["actions"][k])
        assert step["action_text"] == action_text(Action.from_dict(trajectory["actions"][k]))
        assert step["reward"] == trajectory["rewards"][k]
        assert StateChange.from_dict(step) == StateChange.between(states[k], states[k + 1])


def test_agent_picks_one_agents_episodes(played: dict[str, Path]) -> None:
    rows = _table(_run(played["mixed"], "--agent", "Bob", "--list"))
    assert [(row[0], row[1], row[2]) for row in rows] == [("1", "5", "Bob"), ("2", "6", "Bob")]
    result = _run(played["mixed"], "--agent", "Bob", "--episode", 2)
    assert result.stdout.startswith("episode 2 of 2 (line 6): Bob (Attacker), 5 steps, return 95")
    unknown = _run(played["mixed"], "--agent", "Carol")
    assert unknown.exit_code == 2 and "no episode of 'Carol'" in unknown.output and "Alice, Bob" in unknown.output


def test_negative_episodes_count_from_the_end(played: dict[str, Path]) -> None:
    assert _run(played["mixed"], "--episode", -1).stdout == _run(played["mixed"], "--episode", 6).stdout


def test_standard_input(played: dict[str, Path]) -> None:
    from_file = _run(played["alice"], "--episode", 2)
    from_stdin = _run("-", "--episode", 2, stdin=played["alice"].read_bytes())
    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout == from_file.stdout


def test_registered_with_arena() -> None:
    result = CliRunner().invoke(main, ["replay", "--help"])
    assert result.exit_code == 0 and "--episode" in result.output


# --------------------------------------------------------------------------- bad input


def test_a_cut_line_is_reported_and_skipped(played: dict[str, Path], tmp_path: Path) -> None:
    lines = played["alice"].read_bytes().splitlines(keepends=True)
    path = tmp_path / "cut.jsonl"
    path.write_bytes(lines[0] + lines[1][: len(lines[1]) // 2] + b"\n" + lines[2] + b"garbage\n" + lines[3][:100])
    result = _run(path, "--list")
    assert result.exit_code == 0, result.output
    assert [row[:2] for row in _table(result)] == [["1", "1"], ["2", "3"]]
    assert result.stderr.splitlines() == [f"{path}: skipped 3 lines (2 cut short, 1 not JSON): lines 2, 4, 5"]
    assert _run(path, "--episode", 2).stdout == _run(played["alice"], "--episode", 3).stdout.replace(
        "episode 3 of 4 (line 3)", "episode 2 of 2 (line 3)")


def test_a_file_that_is_not_a_trajectory_is_summed_up_in_one_line(tmp_path: Path) -> None:
    """A text file of 40 lines: one summary line (how many, what kind, the first few
    numbers), then the error; not a line per skipped line."""
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"line {n}: not JSON\n" for n in range(1, 41)) + "[1, 2")
    done = subprocess.run([sys.executable, "-m", "bin", "replay", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}: skipped 41 lines (1 cut short, 40 not JSON): lines 1, 2, 3, 4, 5, ...",
        f"Error: {path}: no episodes: not one line is a trajectory in NetSecGame's JSON-lines shape "
        "(is it a trajectory file?)"]


@pytest.mark.parametrize("number", [0, 5, -5, 99])
def test_an_episode_out_of_range_is_a_usage_error(played: dict[str, Path], number: int) -> None:
    result = _run(played["alice"], "--episode", number)
    assert result.exit_code == 2
    assert f"Invalid value for --episode: {number} is out of range" in result.stderr
    assert "has 4 episodes (1 to 4, or -1 to -4)" in result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path / "nope.jsonl")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_an_empty_file_has_no_episodes(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    result = _run(tmp_path / "empty.jsonl")
    assert result.exit_code == 1 and "no episodes" in result.stderr


def test_a_line_that_is_not_a_trajectory_is_named(played: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(played["alice"].read_text().splitlines()[0] + "\n\n" + json.dumps({"topic": "step"}) + "\n")
    result = _run(path, "--list")
    assert result.exit_code == 1
    assert f"{path}: line 3 is not a trajectory: expected an object with a 'trajectory' object" in result.stderr
    record = _records(played["alice"])[0]
    record["trajectory"]["states"].pop()
    path.write_text(json.dumps(record) + "\n")
    assert "5 actions need 5 rewards and 6 states, got 5 and 5" in _run(path).stderr


def test_a_state_that_is_not_a_state_is_named(played: dict[str, Path], tmp_path: Path) -> None:
    record = _records(played["alice"])[0]
    record["trajectory"]["states"][2]["known_hosts"] = "everything"
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert _run(path, "--list").exit_code == 0, "listing does not parse states"
    result = _run(path)
    assert result.exit_code == 1
    assert f"{path}: line 1: a state is not a NetSecGame state:" in result.stderr
    assert "known_hosts" in result.stderr


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(("action", "text"), [
    (Action(ActionType.BlockIP, {"source_host": IP("1.1.1.1"), "target_host": IP("1.1.1.2"),
                                 "blocked_host": IP("6.6.6.6")}), "BlockIP 1.1.1.1 -> 1.1.1.2 block 6.6.6.6"),
    (Action(ActionType.BlockIP, {"source_host": IP("1.1.1.1"), "target_host": IP("1.1.1.2"),
                                 "blocked_ip": IP("6.6.6.6")}), "BlockIP 1.1.1.1 -> 1.1.1.2 block 6.6.6.6"),
    (Action(ActionType.FindData, {"source_host": IP("1.1.1.1")}), "FindData source_host=1.1.1.1"),
    (Action(ActionType.QuitGame, {}), "QuitGame"),
])
def test_action_text(action: Action, text: str) -> None:
    assert action_text(action) == text


def test_episode_from_record_rejects_bad_rewards() -> None:
    with pytest.raises(ValueError, match="every reward to be a number"):
        Episode.from_record({"trajectory": {"states": [{}, {}], "actions": [{}], "rewards": [True]}},
                            index=1, line=1)


@pytest.mark.parametrize("module", [bin.replay, bin.replay_diff])
def test_doctests(module: Any) -> None:
    assert doctest.testmod(module).failed == 0
