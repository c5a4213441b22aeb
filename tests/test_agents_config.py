"""The ``agents:`` section of a task (world.agents_config): a strict schema whose every
problem is a TaskConfigError naming the key path; names resolved against the scenario."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from protocol import PASS, Action, ActionType, AgentRole
from world import TaskConfigError, load_task, parse_task
from world.catalog import catalog_of
from world.game_world import GameWorld

from .conftest import TASKS

DEFENDED = yaml.safe_load((TASKS / "defended_tiny.yaml").read_text())


def with_agents(agents: list[dict[str, Any]], **arena: Any) -> Any:
    """defended_tiny with another agents: list (and arena changes)."""
    document = copy.deepcopy(DEFENDED)
    document["agents"] = agents
    document["arena"].update(arena)
    return parse_task(document, "agents-task.yaml", TASKS)


def green(**changes: Any) -> dict[str, Any]:
    entry = copy.deepcopy(DEFENDED["agents"][2])
    entry.update(changes)
    return entry


def fails(agents: list[dict[str, Any]], key: str, words: str = "", **arena: Any) -> TaskConfigError:
    with pytest.raises(TaskConfigError) as info:
        with_agents(agents, **arena)
    assert info.value.key == key, info.value
    assert words in info.value.reason, info.value
    return info.value


def test_defended_tiny_resolves_names_to_actions_at_current_addresses() -> None:
    task = load_task(TASKS / "defended_tiny.yaml")
    assert task.name == "defended_tiny" and task.seats == {AgentRole.Attacker: 1}
    red, blue, benign = task.agents
    assert (red.type, red.role, red.scripted) == ("proxy", AgentRole.Attacker, False)
    assert [c.key for c in red.reward.components] == ["netsecgame", "new-controlled-host", "data-exfiltrated"]
    assert (blue.type, blue.role, blue.start_step, blue.frequency, blue.variance) == (
        "blocking-defender", AgentRole.Defender, 1, 2, 0)
    assert [entry.label for entry in benign.action_map] == [
        "do-nothing", "ScanNetwork client_1 -> 192.168.1.0/24", "FindServices client_1 -> smb_server",
        "FindData client_1 -> client_1"]
    assert benign.action_probabilities == (0.4, 0.2, 0.2, 0.2)
    assert task.scripted_agents == (blue, benign) and task.proxies(AgentRole.Attacker) == (red,)
    world = GameWorld(task.scenario, __import__("random").Random(0))
    catalog = catalog_of(world)
    assert benign.mapped_action(0, catalog) is PASS
    scan = benign.mapped_action(1, catalog)
    assert isinstance(scan, Action) and scan.action_type is ActionType.ScanNetwork
    assert str(scan.parameters["source_host"]) == "192.168.2.2"


def test_unknown_keys_are_refused_with_their_path() -> None:
    fails([green(colour="green")], "agents[0].colour", "unknown key")
    fails([green(agent_settings={"start_step": 1, "often": 2, "action_probabilities": {0: 1}})],
          "agents[0].agent_settings.often", "unknown setting")
    entry = green()
    entry["action_space"]["action_map"][1]["options"]["target_host"] = "smb_server"
    fails([entry], "agents[0].action_space.action_map.1.options.target_host", "not an option of ScanNetwork")
    entry = green()
    entry["action_space"]["extra"] = 1
    fails([entry], "agents[0].action_space.extra", "unknown key")
    fails([{"ref": "r", "team": "RED", "type": "proxy",
            "reward_function": {"reward_components": [{"type": "step", "scale": 2}]}}],
          "agents[0].reward_function.reward_components[0].scale", "unknown key")


def test_bad_team_type_and_ref() -> None:
    fails([green(team="PURPLE")], "agents[0].team", "RED, BLUE or GREEN")
    fails([green(type="sleepy")], "agents[0].type", "expected one of")
    fails([green(ref="has space")], "agents[0].ref")
    fails([green(), green()], "agents[1].ref", "used by another agent")
    fails([{"ref": "k", "team": "BLUE", "type": "kill-chain"}], "agents[0].team", "plays team RED")
    fails([{"ref": "k", "team": "RED", "type": "kill-chain", "action_space": {"action_map": {0: {
        "action": "do-nothing"}}}}], "agents[0].action_space", "chooses its own actions")


def test_unknown_names_in_an_action_map() -> None:
    def entry_with(index: int, **options: str) -> dict[str, Any]:
        entry = green()
        entry["action_space"]["action_map"][index]["options"].update(options)
        return entry

    where = "agents[0].action_space.action_map"
    error = fails([entry_with(1, source_host="client_9")], f"{where}.1.options.source_host", "no host slot 'client_9'")
    assert "client_1" in error.reason, "the known slots are listed"
    fails([entry_with(1, target_network="10.0.0.0/24")], f"{where}.1.options.target_network", "no network slot")
    entry = green()
    entry["action_space"]["action_map"][2] = {"action": "ExploitService", "options": {
        "source_host": "client_1", "target_host": "smb_server", "target_service": "telnet"}}
    fails([entry], f"{where}.2.options.target_service", "no service 'telnet'")
    entry = green()
    entry["action_space"]["action_map"][2] = {"action": "ExfiltrateData", "options": {
        "source_host": "client_1", "target_host": "outside_node", "data": "User1/Nothing"}}
    fails([entry], f"{where}.2.options.data", "no datum")
    entry = green()
    entry["action_space"]["action_map"][2] = {"action": "Teleport"}
    fails([entry], f"{where}.2.action", "do-nothing or one of")
    entry = green()
    entry["action_space"]["action_map"][2] = {"action": "FindData", "options": {"source_host": "client_1"}}
    fails([entry], f"{where}.2.options.target_host", "required by FindData")
    entry = green()
    entry["action_space"]["action_map"][2] = {"action": "BlockIP", "options": {
        "source_host": "client_1", "target_host": "client_1", "blocked_host": "smb_server"}}
    fails([entry], f"{where}.2.action", "only BLUE agents block")
    entry = green()
    entry["action_space"]["action_map"][0] = {"action": "do-nothing", "options": {"source_host": "client_1"}}
    fails([entry], f"{where}.0.options", "no options")


def test_map_keys_must_be_zero_to_n_minus_one() -> None:
    entry = green()
    entry["action_space"]["action_map"][7] = entry["action_space"]["action_map"].pop(3)
    fails([entry], "agents[0].action_space.action_map", "keys must be 0..3")


def test_probabilities_must_match_the_map_and_sum_to_one() -> None:
    settings = {"start_step": 1, "frequency": 1}
    where = "agents[0].agent_settings.action_probabilities"
    fails([green(agent_settings={**settings, "action_probabilities": {0: 0.5, 1: 0.2, 2: 0.2, 3: 0.2}})],
          where, "sum to 1")
    fails([green(agent_settings={**settings, "action_probabilities": {0: 0.5, 1: 0.5}})], where, "exactly")
    fails([green(agent_settings={**settings, "action_probabilities": {0: 1.2, 1: -0.2, 2: 0, 3: 0}})],
          f"{where}.1", "probability >= 0")
    fails([green(agent_settings=settings)], where, "required")
    # within 1e-6 is fine
    task = with_agents([green(agent_settings={**settings, "action_probabilities": {
        0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4 + 5e-7}})])
    assert task.agents[0].action_probabilities == (0.1, 0.2, 0.3, 0.4 + 5e-7)


def test_schedule_settings() -> None:
    where = "agents[0].agent_settings"
    probabilities = {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25}
    fails([green(agent_settings={"frequency": 2, "variance": 2, "action_probabilities": probabilities})],
          f"{where}.variance", "below frequency")
    fails([green(agent_settings={"frequency": 0, "action_probabilities": probabilities})], f"{where}.frequency",
          ">= 1")
    fails([green(agent_settings={"start_step": -1, "action_probabilities": probabilities})],
          f"{where}.start_step", ">= 0")
    fails([green(agent_settings={"start_step": 1.5, "action_probabilities": probabilities})],
          f"{where}.start_step", "whole number")
    fails([green(agent_settings={"max_executions": 2, "action_probabilities": probabilities})],
          f"{where}.max_executions", "unknown setting")
    default = with_agents([{"ref": "b", "team": "BLUE", "type": "blocking-defender"}]).agents[0]
    assert (default.start_step, default.frequency, default.variance, default.max_executions) == (5, 5, 0, None)
    fails([{"ref": "r", "team": "RED", "type": "proxy", "agent_settings": {"start_step": 1}}],
          "agents[0].agent_settings.start_step", "played from outside")
    fails([{"ref": "p", "team": "GREEN", "type": "periodic"}], "agents[0].action_space", "required")


def test_reward_functions_and_shared_reward_cycles() -> None:
    def sharing(ref: str, other: str, team: str = "BLUE", kind: str = "blocking-defender") -> dict[str, Any]:
        return {"ref": ref, "team": team, "type": kind, "reward_function": {"reward_components": [
            {"type": "netsecgame"}, {"type": "shared-reward", "weight": 0.5, "options": {"agent": other}}]}}

    error = fails([sharing("a", "b"), sharing("b", "a")], "agents[1].reward_function", "cycle")
    assert "a -> b -> a" in error.reason
    fails([sharing("a", "a")], "agents[0].reward_function", "cycle")
    fails([sharing("a", "nobody")], "agents[0].reward_function", "names no agent 'nobody'")
    task = with_agents([sharing("a", "b"), {"ref": "b", "team": "GREEN", "type": "benign"}])
    assert task.agents[0].reward.shared == ("b",)
    fails([{"ref": "r", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [
        {"type": "bonus"}]}}], "agents[0].reward_function.reward_components[0].type", "expected one of")
    fails([{"ref": "r", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [
        {"type": "step", "weight": "heavy"}]}}], "agents[0].reward_function.reward_components[0].weight")
    fails([{"ref": "r", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [
        {"type": "step", "options": {"agent": "x"}}]}}],
          "agents[0].reward_function.reward_components[0].options", "no options")
    twice = with_agents([{"ref": "r", "team": "RED", "type": "proxy", "reward_function": {"reward_components": [
        {"type": "step"}, {"type": "step", "weight": 2}]}}])
    assert [c.key for c in twice.agents[0].reward.components] == ["step", "step#2"]


def test_roles_and_seats_of_agents() -> None:
    fails([{"ref": "r", "team": "RED", "type": "proxy"}, {"ref": "s", "team": "RED", "type": "proxy"}],
          "agents[1]", "needs its own arena.seats Attacker seat")
    document = copy.deepcopy(DEFENDED)
    del document["coordinator"]["agents"]["Defender"]
    with pytest.raises(TaskConfigError) as info:
        parse_task(document, "agents-task.yaml", TASKS)
    assert info.value.key == "agents[1].team" and "coordinator.agents.Defender" in info.value.reason
    # A scripted attacker lets a task have defender seats only; without one it is refused.
    scripted_red = {"ref": "red", "team": "RED", "type": "kill-chain"}
    task = with_agents([scripted_red], seats={"Defender": 1})
    assert task.seats == {AgentRole.Defender: 1} and task.start == {AgentRole.Defender: 1}
    fails([green()], "arena.seats", "at least one Attacker seat", seats={"Defender": 1})
    fails("not a list", "agents", "expected a list")  # type: ignore[arg-type]


def test_tasks_without_agents_are_unchanged() -> None:
    task = load_task()
    assert task.agents == () and task.scripted_agents == ()
