"""Issue 13 item 5: a misspelled task key is an error naming the file, the key path, the
line and the closest known key, at every level of the file; the keys NetSecGame 0.2.0
reads but ignores are accepted on purpose, so its files still load."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from protocol import AgentRole
from world import TaskConfigError, load_task, parse_task
from world.task_keys import NETSECGAME_IGNORED_KEYS

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "tasks"
EXAMPLE = (FIXTURES / "upstream_example.yaml").read_text()
DEFENDED = (ROOT / "world" / "tasks" / "defended_tiny.yaml").read_text()
ARENA = [sys.executable, "-m", "bin"]


def misspelled(tmp_path: Path, text: str, line: str, wrong: str, *, after: str = "") -> tuple[Path, int]:
    """Write ``text`` with the first ``line`` (after the first ``after``) changed to
    ``wrong``; the file and the changed line's number."""
    lines = text.splitlines()
    start = next(i for i, row in enumerate(lines) if after in row) if after else 0
    index = next(i for i in range(start, len(lines)) if lines[i] == line)
    lines[index] = wrong
    path = tmp_path / "typo.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, index + 1


# (file text, the line, the misspelled line, the line to search from, key path, the suggestion)
MISSPELLINGS = [
    (EXAMPLE, "env:", "envv:", "", "envv", "did you mean env?"),
    (EXAMPLE, "  agents:", "  agent:", "", "coordinator.agent", "did you mean agents?"),
    (EXAMPLE, "    Attacker:", "    Atacker:", "", "coordinator.agents.Atacker", "did you mean Attacker?"),
    (EXAMPLE, "      max_steps: 50", "      max_stpes: 50", "", "coordinator.agents.Attacker.max_stpes",
     "did you mean max_steps?"),
    (EXAMPLE, "      goal:", "      gaol:", "Defender:", "coordinator.agents.Defender.gaol", "did you mean goal?"),
    (EXAMPLE, '        description: "Block all attackers"', '        descripton: "Block all attackers"', "",
     "coordinator.agents.Defender.goal.descripton", "did you mean description?"),
    (EXAMPLE, "        known_data: {213.47.23.195: [[User1,DataFromServer1]]}",
     "        known_dta: {213.47.23.195: [[User1,DataFromServer1]]}", "",
     "coordinator.agents.Attacker.goal.known_dta", "did you mean known_data?"),
    (EXAMPLE, "        controlled_hosts: [213.47.23.195, 192.168.1.1]",
     "        controled_hosts: [213.47.23.195, 192.168.1.1]", "",
     "coordinator.agents.Attacker.start_position.controled_hosts", "did you mean controlled_hosts?"),
    (EXAMPLE, "  use_firewall: True", "  use_firewal: True", "", "env.use_firewal", "did you mean use_firewall?"),
    (EXAMPLE, "    false_positive: -5", "    false_positve: -5", "", "env.rewards.false_positve",
     "did you mean false_positive?"),
    (EXAMPLE, "  required_players: 1", "  max_steps: 1", "", "env.max_steps",
     "max_steps belongs in coordinator.agents.<Role>"),
    (DEFENDED, "  seats: {Attacker: 1}", "  seat: {Attacker: 1}", "", "arena.seat", "did you mean seats?"),
    (DEFENDED, "  seats: {Attacker: 1}", "  seats: {Atacker: 1}", "", "arena.seats.Atacker",
     "did you mean Attacker?"),
    (DEFENDED, "    agent_settings: {start_step: 1, frequency: 2}", "    agent_setings: {start_step: 1, frequency: 2}",
     "", "agents[1].agent_setings", "did you mean agent_settings?"),
    (DEFENDED, "    agent_settings: {start_step: 1, frequency: 2}", "    agent_settings: {start_stp: 1, frequency: 2}",
     "", "agents[1].agent_settings.start_stp", "did you mean start_step?"),
    (DEFENDED, "      reward_components:", "      reward_component:", "", "agents[0].reward_function.reward_component",
     "did you mean reward_components?"),
    (DEFENDED, "        - {type: netsecgame, weight: 1.0}", "        - {type: netsecgame, wieght: 1.0}", "",
     "agents[0].reward_function.reward_components[0].wieght", "did you mean weight?"),
    (DEFENDED, "        1: {action: ScanNetwork, options: {source_host: client_1, target_network: 192.168.1.0/24}}",
     "        1: {action: ScanNetwork, option: {source_host: client_1, target_network: 192.168.1.0/24}}", "",
     "agents[2].action_space.action_map.1.option", "did you mean options?"),
    (DEFENDED, "        1: {action: ScanNetwork, options: {source_host: client_1, target_network: 192.168.1.0/24}}",
     "        1: {action: ScanNetwork, options: {source_hots: client_1, target_network: 192.168.1.0/24}}", "",
     "agents[2].action_space.action_map.1.options.source_hots", "did you mean source_host?"),
    (DEFENDED, "    Benign:", "    Benign:\n      goal: {}", "", "coordinator.agents.Benign.goal",
     "NetSecGame fixes the Benign role's start and goal"),
]


@pytest.mark.parametrize(("text", "line", "wrong", "after", "key", "suggestion"), MISSPELLINGS,
                         ids=[case[4] for case in MISSPELLINGS])
def test_a_misspelled_key_names_file_path_line_and_the_closest_key(
        tmp_path: Path, text: str, line: str, wrong: str, after: str, key: str, suggestion: str) -> None:
    path, number = misspelled(tmp_path, text, line, wrong, after=after)
    if "\n" in wrong:
        number += 1   # the added key is on the next line
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    error = caught.value
    assert (error.source, error.key, error.line) == (str(path), key, number), error
    assert suggestion in error.reason, error
    assert str(error) == f"{path}:{number}: {key}: {error.reason}" and "\n" not in str(error)


def test_the_step_limit_typo_is_refused_not_played_without_a_limit(tmp_path: Path) -> None:
    """The issue's case: `max_stpes: 50` used to leave the attacker with no step limit."""
    path, number = misspelled(tmp_path, EXAMPLE, "      max_steps: 50", "      max_stpes: 50")
    with pytest.raises(TaskConfigError, match=rf":{number}: coordinator\.agents\.Attacker\.max_stpes: unknown key "
                                              r"\(did you mean max_steps\?\)"):
        load_task(path)


def test_arena_world_refuses_the_typo_with_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    """Through the real command: before, the world started serving the task without a
    step limit (and this run would time out)."""
    path, number = misspelled(tmp_path, EXAMPLE, "      max_steps: 50", "      max_stpes: 50")
    result = subprocess.run([*ARENA, "world", "--backend", "tcp://127.0.0.1:9", "--task", str(path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [f"Error: {path}:{number}: coordinator.agents.Attacker.max_stpes: unknown key "
                     "(did you mean max_steps?)"], result.stderr


def test_unknown_keys_without_a_close_one_list_the_known_keys(tmp_path: Path) -> None:
    path, number = misspelled(tmp_path, EXAMPLE, "  required_players: 1", "  colour: red")
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    assert caught.value.key == "env.colour" and caught.value.line == number
    assert "known: scenario, scenario_file, use_global_defender" in caught.value.reason


def test_netsecgame_ignored_keys_are_accepted_and_change_nothing() -> None:
    """Every key of NETSECGAME_IGNORED_KEYS loads, in its section, and the game is the same."""
    document = yaml.safe_load(EXAMPLE)
    plain = parse_task(document, "plain.yaml")
    loaded = copy.deepcopy(document)
    attacker = loaded["coordinator"]["agents"]["Attacker"]
    values = {"is_any_part_of_goal_random": True, "known_blocks": {}, "blocked_ips": {}, "random_seed": "random",
              "actions": {"scan_network": {"prob_success": 0.5}, "capture_traffic": {"discovery_probability": 0.1}},
              "store_replay_buffer": False, "goal_reward": 100, "detection_reward": -50, "step_reward": -1}
    for section, keys in NETSECGAME_IGNORED_KEYS.items():
        target = loaded["env"] if section == "env" else attacker[section]
        for key in keys:
            target[key] = values[key]
    task = parse_task(loaded, "ignored.yaml")
    assert task.roles == plain.roles and task.rewards == plain.rewards
    assert (task.use_global_defender, task.use_dynamic_addresses, task.use_firewall) == (
        plain.use_global_defender, plain.use_dynamic_addresses, plain.use_firewall)


@pytest.mark.parametrize("path", sorted((ROOT / "world" / "tasks").glob("*.yaml")) + sorted(FIXTURES.glob("*.yaml")),
                         ids=lambda path: path.name)
def test_shipped_tasks_and_netsecgame_files_load(path: Path) -> None:
    task = load_task(path)
    assert AgentRole.Attacker in task.roles


def test_a_yaml_syntax_error_is_one_line_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("env:\n  scenario: two_networks_tiny\n  rewards: {step: -1\n")
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    assert caught.value.key == "(yaml)" and caught.value.line is not None
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: (yaml): not valid YAML: ")
    assert "\n" not in str(caught.value)


def test_other_errors_carry_the_line_of_their_key(tmp_path: Path) -> None:
    """Lines are not only for unknown keys: a bad value names its key's line."""
    path, number = misspelled(tmp_path, EXAMPLE, "      max_steps: 50", "      max_steps: fifty")
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    assert (caught.value.key, caught.value.line) == ("coordinator.agents.Attacker.max_steps", number)
    path, number = misspelled(tmp_path, EXAMPLE, "        known_data: {213.47.23.195: [[User1,DataFromServer1]]}",
                              "        known_data: {213.47.23.195: [all]}")
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    assert (caught.value.key, caught.value.line) == (
        "coordinator.agents.Attacker.goal.known_data.213.47.23.195[0]", number)


def test_aliases_and_merge_keys_load_and_keep_their_lines(tmp_path: Path) -> None:
    """A node shared through an alias is walked once (no blow-up); a merged key's line is
    where it is written."""
    text = EXAMPLE.replace("    Defender:\n", "    Defender: &defender\n").replace(
        "  rewards:\n", "  rewards: &rewards\n") + "arena:\n  hold_timeout: 5\n"
    document = yaml.safe_load(text)
    assert document["env"]["rewards"]["step"] == -1
    path = tmp_path / "anchors.yaml"
    path.write_text(text.replace("    step: -1\n", "    <<: {step: -1, stepp: 2}\n"))
    number = path.read_text().splitlines().index("    <<: {step: -1, stepp: 2}") + 1
    with pytest.raises(TaskConfigError) as caught:
        load_task(path)
    assert (caught.value.key, caught.value.line) == ("env.rewards.stepp", number)
    assert "did you mean step?" in caught.value.reason
