"""Task configuration: NetSecGame task files load unchanged (reference netsecgame.md §4),
our `arena:` extensions, and broken files rejected naming the key (DESIGN §3)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from protocol import IP, AgentRole, Data, Network, Service
from world import TaskConfigError, load_task, parse_task

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
EXAMPLE = yaml.safe_load((FIXTURES / "upstream_example.yaml").read_text())


def with_changes(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for path, value in changes.items():
        node = document
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return document


def test_upstream_example_format_loads_unchanged() -> None:
    """Reference §4.4: examples/example_task_configuration.yaml."""
    task = load_task(FIXTURES / "upstream_example.yaml")
    attacker = task.roles[AgentRole.Attacker]
    assert task.scenario.name == "two_networks_tiny"
    assert attacker.max_steps == 50
    assert attacker.start.controlled_hosts == (IP("213.47.23.195"), IP("192.168.1.1"))
    assert attacker.goal.known_data == {IP("213.47.23.195"): (Data("User1", "DataFromServer1"),)}
    assert attacker.goal_description.startswith("Exfiltrate data from Samba")
    assert task.roles[AgentRole.Defender].goal.known_blocks == {IP("213.47.23.195"): ()}
    assert task.use_dynamic_addresses is True and task.use_firewall is True
    assert (task.rewards.success, task.rewards.step, task.rewards.fail, task.rewards.false_positive) == (
        100, -1, -10, -5)
    assert task.seats == {AgentRole.Attacker: 1}, "default: required_players attackers"
    assert task.allowed_roles == frozenset({AgentRole.Attacker})
    assert task.name == "upstream_example"
    assert len(task.configuration_hash) == 64


def test_upstream_testing_format_legacy_keys_and_all_local(caplog: pytest.LogCaptureFixture) -> None:
    """Reference §4.2/§4.4: legacy reward keys are ignored (rewards all 0); all_local in
    known_networks and as a map key is ignored as upstream ignores it, with a warning."""
    with caplog.at_level(logging.WARNING):
        task = load_task(FIXTURES / "upstream_testing.yaml")
    assert (task.rewards.step, task.rewards.success, task.rewards.fail) == (0, 0, 0)
    defender = task.roles[AgentRole.Defender]
    assert defender.start.controlled_hosts == ("all_local",)
    assert defender.start.known_networks == ()
    assert defender.start.known_services == {} and defender.start.known_data == {}
    assert "all_local" in caplog.text
    assert task.use_firewall is True, "the code's default, not the docs'"
    assert task.roles[AgentRole.Benign].start.controlled_hosts == ("random", "random", "random")


def test_tokens_and_entries_parse() -> None:
    """Reference §4.1/§4.3: host tokens, services as 4-lists, data pairs, random in any case."""
    document = with_changes(EXAMPLE, {
        "coordinator.agents.Attacker.start_position.controlled_hosts": ["random", "random", "192.168.2.2"],
        "coordinator.agents.Attacker.start_position.known_networks": ["192.168.1.0/24"],
        "coordinator.agents.Attacker.start_position.known_services": {
            "192.168.1.2": [["ssh", "passive", "8.1.0", False], "random"]},
        "coordinator.agents.Attacker.goal.known_data": {"213.47.23.195": ["RANDOM", ["User2", "X"]]},
    })
    attacker = parse_task(document, "t.yaml").roles[AgentRole.Attacker]
    assert attacker.start.controlled_hosts == ("random", IP("192.168.2.2")), "a set: one random"
    assert attacker.start.known_networks == (Network("192.168.1.0", 24),)
    assert attacker.start.known_services[IP("192.168.1.2")] == (Service("ssh", "passive", "8.1.0", False),
                                                                 "random")
    assert attacker.goal.known_data[IP("213.47.23.195")] == ("random", Data("User2", "X"))


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, None), (7, 7), (7.9, 7), ("12", 12)])
def test_max_steps_rules(value: Any, expected: int | None) -> None:
    """Reference §4.1: int() conversion; missing, null and 0 mean no limit."""
    task = parse_task(with_changes(EXAMPLE, {"coordinator.agents.Attacker.max_steps": value}), "t.yaml")
    assert task.roles[AgentRole.Attacker].max_steps == expected


def test_reward_defaults_are_zero() -> None:
    task = parse_task(with_changes(EXAMPLE, {"env.rewards": {"step": -1}}), "t.yaml")
    assert (task.rewards.step, task.rewards.success, task.rewards.fail, task.rewards.false_positive) == (
        -1, 0, 0, 0)


def test_arena_extensions() -> None:
    document = with_changes(EXAMPLE, {"arena": {"name": "duel", "seats": {"attacker": 2, "Defender": 1},
                                                "hold_timeout": 5, "seat_lease": 30}})
    task = parse_task(document, "t.yaml")
    assert task.name == "duel" and task.seats == {AgentRole.Attacker: 2, AgentRole.Defender: 1}
    assert task.allowed_roles == frozenset({AgentRole.Attacker, AgentRole.Defender})
    assert (task.hold_timeout, task.seat_lease, task.seats_per_game) == (5.0, 30.0, 3)


def test_own_topology_file(tmp_path: Path) -> None:
    """A task can name its own topology file, relative to the task file."""
    source = Path(__file__).resolve().parents[1] / "world" / "scenarios" / "two_networks_tiny.yaml"
    (tmp_path / "net.yaml").write_text(source.read_text().replace("name: two_networks_tiny", "name: mine"))
    document = with_changes(EXAMPLE, {"env.scenario": KeyError, "env.scenario_file": "net.yaml"})
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(document))
    task = load_task(tmp_path / "task.yaml")
    assert len(task.scenario.ip_to_node) == 5


BROKEN = [
    ({"env.scenario": "three_nets"}, "env.scenario"),
    ({"env.scenario": KeyError}, "env.scenario"),
    ({"coordinator.agents.Attacker.max_steps": "fifty"}, "coordinator.agents.Attacker.max_steps"),
    ({"coordinator.agents.Attacker.max_steps": -3}, "coordinator.agents.Attacker.max_steps"),
    ({"coordinator.agents.Attacker.goal.known_data": {"213.47.23.195": ["all"]}},
     "coordinator.agents.Attacker.goal.known_data.213.47.23.195[0]"),
    ({"coordinator.agents.Attacker.goal.known_data": {"213.47.23.999": [["User1", "X"]]}},
     "coordinator.agents.Attacker.goal.known_data.213.47.23.999"),
    ({"coordinator.agents.Attacker.start_position.known_services": {"server": []}},
     "coordinator.agents.Attacker.start_position.known_services.server"),
    ({"coordinator.agents.Attacker.start_position.controlled_hosts": ["my_laptop"]},
     "coordinator.agents.Attacker.start_position.controlled_hosts[0]"),
    ({"coordinator.agents.Attacker.start_position.known_networks": ["192.168.1.0"]},
     "coordinator.agents.Attacker.start_position.known_networks[0]"),
    ({"coordinator.agents.Attacker.goal.known_blocks": KeyError}, "coordinator.agents.Attacker.goal.known_blocks"),
    ({"coordinator.agents.Attacker.start_position.known_data": KeyError},
     "coordinator.agents.Attacker.start_position.known_data"),
    ({"coordinator.agents.Attacker.goal.known_blocks": 5}, "coordinator.agents.Attacker.goal.known_blocks"),
    ({"coordinator.agents.Attacker.start_position.known_services": {"192.168.1.2": [["ssh", "8.1.0"]]}},
     "coordinator.agents.Attacker.start_position.known_services.192.168.1.2[0]"),
    ({"coordinator.agents.Attacker.start_position.known_services": {"10.9.9.9": ["random"]}},
     "coordinator.agents.Attacker.start_position.known_services.10.9.9.9"),
    ({"env.rewards": {"success": "lots"}}, "env.rewards.success"),
    ({"env.rewards": {"win": 5}}, "env.rewards.win"),
    ({"env.required_players": "two"}, "env.required_players"),
    ({"env.use_firewall": "maybe"}, "env.use_firewall"),
    ({"arena.seats": {"Attacker": 0, "Defender": 1}}, "arena.seats"),
    ({"arena.seats": {"Wizard": 1}}, "arena.seats.Wizard"),
    ({"arena.seats": {"Attacker": 1, "Benign": 1}, "arena.allowed_roles": ["Attacker"]}, "arena.allowed_roles"),
    ({"arena.colour": "red"}, "arena.colour"),
    ({"arena.seats": {"Attacker": 1, "Defender": 1}, "arena.start": {"Defender": 2}}, "arena.start.Defender"),
    ({"arena.seats": {"Attacker": 1, "Defender": 1}, "arena.start": {"Defender": 1}}, "arena.start"),
    ({"arena.hold_timeout": 0}, "arena"),
    ({"arena.seats": {"Attacker": 1, "Defender": 1}, "coordinator.agents.Defender": KeyError},
     "coordinator.agents.Defender"),
]


@pytest.mark.parametrize(("changes", "key"), BROKEN, ids=[key for _, key in BROKEN])
def test_broken_files_are_rejected_naming_the_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(TaskConfigError) as caught:
        parse_task(with_changes(EXAMPLE, changes), "broken.yaml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"broken.yaml: {key}: ")


def test_unreadable_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(TaskConfigError, match="cannot read"):
        load_task(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("coordinator: [unclosed")
    with pytest.raises(TaskConfigError, match="not valid YAML"):
        load_task(tmp_path / "bad.yaml")


def test_default_task_is_attacker_against_defender() -> None:
    task = load_task()
    assert task.name == "default" and task.scenario.name == "scenario1_small"
    assert task.seats == {AgentRole.Attacker: 1, AgentRole.Defender: 1}
    assert task.start == {AgentRole.Attacker: 1}


def test_configuration_hash_depends_on_content_only(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((FIXTURES / "upstream_example.yaml").read_text())
    same = load_task(tmp_path / "a.yaml").configuration_hash
    assert same == load_task(FIXTURES / "upstream_example.yaml").configuration_hash
    changed = parse_task(with_changes(EXAMPLE, {"env.rewards.step": -2}), "x.yaml").configuration_hash
    assert changed != same
