"""Fixed action tables and catalogs (issue 8 item 1): WhiteBox's enumeration (reference
netsecgame.md §7.1) with BlockIP's key fixed, labels and indices that round-trip, table
actions that play exactly as structured ones, masks that are exactly NetSecGame's valid
actions, and slots that survive address remapping (§6.11)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.policies import kill_chain_attacker, random_attacker
from agents.utils import generate_valid_actions
from protocol import IP, Action, ActionType, AgentRole, Data, GameStatus, Network, Observation, Service
from protocol.action import validate_action
from protocol.action_table import TABLE_ORDER, ActionTable
from protocol.catalog import Catalog
from protocol.errors import ProtocolError
from world import GameSession, load_task, parse_task
from world.catalog import catalog_of
from world.game_world import GameWorld
from world.scenario import SCENARIO_FILES, load_scenario

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "world" / "tasks" / "two_networks_tiny_attacker.yaml"
SMALL = ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml"
DEFAULT = ROOT / "world" / "tasks" / "default.yaml"
COUNTS = yaml.safe_load((Path(__file__).parent / "fixtures" / "whitebox_counts.yaml").read_text())


def catalog(scenario: str) -> Catalog:
    return catalog_of(GameWorld(load_scenario(scenario), random.Random(0)))


def task_with(path: Path, **arena: Any) -> Any:
    document = yaml.safe_load(path.read_text())
    env = arena.pop("env", {})
    document["env"].update(env)
    document.setdefault("arena", {}).update(arena)
    return parse_task(document, str(path), path.parent)


# ---------------------------------------------------------------------- sizes and order
@pytest.mark.parametrize("scenario", sorted(SCENARIO_FILES))
def test_table_sizes_match_whitebox(scenario: str) -> None:
    expected = dict(COUNTS[scenario])
    table = ActionTable(catalog(scenario))
    assert len(table) == expected.pop("total")
    assert table.counts() == expected


@pytest.mark.parametrize("scenario", ["two_networks_tiny", "scenario1"])
def test_role_tables_leave_out_blocks_for_attackers_and_benign(scenario: str) -> None:
    counts = COUNTS[scenario]
    found = catalog(scenario)
    assert len(ActionTable.for_role(found, AgentRole.Defender)) == counts["total"]
    for role in (AgentRole.Attacker, AgentRole.Benign):
        table = ActionTable.for_role(found, role)
        assert len(table) == counts["total"] - counts["BlockIP"]
        assert ActionType.BlockIP not in table.action_types


def _whitebox_list(world: GameWorld) -> list[dict[str, Any]]:
    """Reference §7.1's enumeration, written out again from the world's tables (not from
    the catalog): IPs sorted as strings, networks in Network order, services in stored
    order, data the sorted union of every node's data."""
    ips = sorted(world.ip_to_node, key=str)
    networks = sorted(world.networks)
    services = {ip: list(world.scenario.node_services.get(world.ip_to_node[ip], ())) for ip in ips}
    data = sorted(set().union(*(world.node_data(node) for node in set(world.ip_to_node.values()))))

    def make(kind: ActionType, **parameters: Any) -> dict[str, Any]:
        return Action(kind, parameters).as_dict

    listed = [make(ActionType.ScanNetwork, source_host=s, target_network=n) for s in ips for n in networks]
    listed += [make(ActionType.FindServices, source_host=s, target_host=t) for s in ips for t in ips]
    listed += [make(ActionType.ExploitService, source_host=s, target_host=t, target_service=v)
               for s in ips for t in ips for v in services[t]]
    listed += [make(ActionType.FindData, source_host=s, target_host=t) for s in ips for t in ips]
    listed += [make(ActionType.ExfiltrateData, source_host=s, target_host=t, data=d)
               for s in ips for t in ips for d in data]
    listed += [make(ActionType.BlockIP, source_host=s, target_host=t, blocked_host=b)
               for s in ips for t in ips for b in ips]
    return listed


@pytest.mark.parametrize("scenario", ["two_networks_tiny", "two_networks_small", "three_net_scenario"])
def test_all_actions_is_whitebox_order_with_blocked_host(scenario: str) -> None:
    world = GameWorld(load_scenario(scenario), random.Random(0))
    found = catalog_of(world)
    listed = json.loads(ActionTable(found).as_all_actions_json(found))
    assert listed == _whitebox_list(world)
    blocks = [entry for entry in listed if entry["action_type"] == "ActionType.BlockIP"]
    assert blocks and all(set(entry["parameters"]) == {"source_host", "target_host", "blocked_host"}
                          for entry in blocks)


# ---------------------------------------------------------------------- labels and indices
@pytest.mark.parametrize("scenario", ["two_networks_tiny", "scenario1", "three_net_scenario"])
def test_labels_and_indices_round_trip(scenario: str) -> None:
    found = catalog(scenario)
    table = ActionTable(found)
    assert len(set(table.labels)) == len(table)
    for index, label in enumerate(table.labels):
        action = table.action(index, found)
        assert validate_action(action) is action
        assert table.index_of(action, found) == index
        assert table.index_of_label(label) == index
        # an equal action built afresh (a Data without size or content) finds the same index
        assert table.index_of(Action.from_dict(action.as_dict), found) == index
    assert [kind for kind in TABLE_ORDER if kind in table.action_types] == list(table.action_types)


def test_labels_name_slots_not_addresses() -> None:
    table = ActionTable(catalog("two_networks_tiny"))
    assert table.labels[0] == "ScanNetwork router1@192.168.1.0/24 -> 192.168.1.0/24"
    exploit = table.index_of_label("ExploitService client_1 -> smb_server microsoft-ds")
    assert table.entries[exploit][0] is ActionType.ExploitService
    exfiltrate = table.index_of_label("ExfiltrateData smb_server -> outside_node User1/DataFromServer1")
    assert table.entries[exfiltrate][0] is ActionType.ExfiltrateData
    with pytest.raises(KeyError, match="no action labelled"):
        table.index_of_label("ExploitService client_1 -> nowhere")


def test_actions_outside_the_table_have_no_index() -> None:
    found = catalog("two_networks_tiny")
    attacker = ActionTable.for_role(found, AgentRole.Attacker)
    client, smb = IP("192.168.2.2"), IP("192.168.1.2")
    outside = [
        Action(ActionType.ScanNetwork, {"source_host": client, "target_network": Network("192.168.3.0", 24)}),
        Action(ActionType.FindServices, {"source_host": IP("10.0.0.1"), "target_host": smb}),
        Action(ActionType.ExploitService, {"source_host": client, "target_host": smb,
                                           "target_service": Service("nginx", "passive", "1", False)}),
        Action(ActionType.ExfiltrateData, {"source_host": smb, "target_host": client,
                                           "data": Data("nobody", "nothing")}),
        Action(ActionType.BlockIP, {"source_host": client, "target_host": client, "blocked_host": smb}),
    ]
    assert [attacker.index_of(action, found) for action in outside] == [None] * len(outside)
    assert attacker.indices(outside, found) == []


# ---------------------------------------------------------------------- playing table actions
def _play_pair(task: Any, role: AgentRole, policy: Any, seed: int, steps: int) -> int:
    """Two sessions with one seed: one plays the policy's structured actions, the other the
    table's action of the same index. Returns how many steps used a table action."""
    structured, tabled = GameSession(task, seed=seed), GameSession(task, seed=seed)
    replies = [session.join("me", "me", role, 0.0, catalog=True)[0] for session in (structured, tabled)]
    assert replies[0].observation == replies[1].observation
    found = Catalog.from_wire(replies[1].message["catalog"])
    table = ActionTable.for_role(found, role)
    rng, observation, used = random.Random(seed), replies[0].observation, 0
    for _ in range(steps):
        action = policy(observation, rng)
        index = table.index_of(action, found)
        twin = action if index is None else table.action(index, found)
        used += index is not None
        first, second = structured.step("me", action, 1.0), tabled.step("me", twin, 1.0)
        assert [(r.status, r.observation) for r in first] == [(r.status, r.observation) for r in second]
        observation = first[0].observation
        if observation.end:
            break
        assert structured.world.false_positives == tabled.world.false_positives
        assert structured.world.fw_blocks == tabled.world.fw_blocks
    return used


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_table_actions_play_as_structured_ones(seed: int) -> None:
    used = _play_pair(load_task(SMALL), AgentRole.Attacker, kill_chain_attacker, seed, 60)
    used += _play_pair(load_task(TINY), AgentRole.Attacker, random_attacker, seed, 60)
    assert used > 20


def test_defender_table_actions_play_as_structured_ones() -> None:
    def blocker(observation: Observation | None, rng: random.Random) -> Action:
        assert observation is not None
        return rng.choice(sorted(generate_valid_actions(observation.state, include_blocks=True), key=str))

    task = load_task(DEFAULT)
    structured, tabled = GameSession(task, seed=5), GameSession(task, seed=5)
    for session in (structured, tabled):
        session.join("red", "red", "Attacker", 0.0)
        session.join("blue", "blue", "Defender", 0.0, catalog=True)
    found = catalog_of(tabled.world)
    table = ActionTable.for_role(found, AgentRole.Defender)
    rng, state, blocks = random.Random(5), structured.seats["blue"].state, 0
    for _ in range(40):
        action = blocker(Observation(state, 0, False, {}), rng)
        index = table.index_of(action, found)
        assert index is not None, f"a defender's valid action outside its table: {action}"
        blocks += action.action_type is ActionType.BlockIP
        first, second = structured.step("blue", action, 1.0), tabled.step("blue", table.action(index, found), 1.0)
        assert [(r.status, r.observation) for r in first] == [(r.status, r.observation) for r in second]
        state = first[0].observation.state
        assert structured.world.fw_blocks == tabled.world.fw_blocks
    assert blocks > 0


# ---------------------------------------------------------------------- masks
def _states(task: Any, role: AgentRole, seeds: range, steps: int) -> list[Any]:
    states = []
    for seed in seeds:
        session = GameSession(task, seed=seed)
        observation = session.join("me", "me", role, 0.0)[0].observation
        rng = random.Random(seed)
        for _ in range(steps):
            states.append(observation.state)
            action = kill_chain_attacker(observation, rng, explore=0.3)
            observation = session.step("me", action, 1.0)[0].observation
            if observation is None or observation.end:
                break
    return states


@pytest.mark.parametrize("path", [TINY, SMALL])
def test_mask_ones_are_exactly_the_valid_actions(path: Path) -> None:
    """A table index is allowed exactly when NetSecGame's generator produces its action; the
    valid actions the table cannot hold are scans of networks outside the world."""
    task = load_task(path)
    found = catalog_of(GameWorld(task.scenario, random.Random(0)))
    table = ActionTable.for_role(found, AgentRole.Attacker)
    world_networks = set(found.network_addresses)
    for state in _states(task, AgentRole.Attacker, range(4), 40):
        valid = generate_valid_actions(state)
        ones = table.indices(valid, found)
        assert ones == sorted(i for i in range(len(table)) if table.action(i, found) in valid)
        for action in valid:
            if table.index_of(action, found) is None:
                assert action.action_type is ActionType.ScanNetwork
                assert action.parameters["target_network"] not in world_networks


# ---------------------------------------------------------------------- remapping
def _attack_by_labels(session: GameSession, found: Catalog) -> Observation:
    table = ActionTable.for_role(found, AgentRole.Attacker)
    labels = [
        "ScanNetwork client_1 -> 192.168.1.0/24",
        "FindServices client_1 -> smb_server",
        "ExploitService client_1 -> smb_server microsoft-ds",
        "FindData smb_server -> smb_server",
        "ExfiltrateData smb_server -> outside_node User1/DataFromServer1",
    ]
    observation = None
    for label in labels:
        [reply] = session.step("me", table.action(table.index_of_label(label), found), 1.0)
        observation = reply.observation
    assert observation is not None
    return observation


def test_layout_and_labels_survive_address_remapping() -> None:
    """After a topology change every address moved, the layout and labels did not, and the
    same labelled attack wins in both episodes."""
    task = task_with(TINY, env={"use_dynamic_addresses": True})
    session = GameSession(task, seed=7)
    [joined] = session.join("me", "me", "Attacker", 0.0, catalog=True)
    before = Catalog.from_wire(joined.message["catalog"])
    first = _attack_by_labels(session, before)
    assert first.end and first.info["end_reason"] == "AgentStatus.Success"
    [reset] = session.reset("me", 2.0, seed=11, randomize_topology=True)
    assert reset.status is GameStatus.RESET_DONE
    after = Catalog.from_wire(reset.message["catalog"])
    assert after.layout == before.layout
    assert set(after.host_ips).isdisjoint(before.host_ips)
    assert ActionTable(after).labels == ActionTable(before).labels
    assert reset.observation.state.controlled_hosts <= set(after.host_ips)
    second = _attack_by_labels(session, after)
    assert second.end and second.info["end_reason"] == "AgentStatus.Success"


def test_catalog_only_when_asked() -> None:
    session = GameSession(load_task(TINY), seed=1)
    [plain] = session.join("a", "a", "Attacker", 0.0)
    assert "catalog" not in plain.message and "all_actions" not in plain.message
    [reset] = session.reset("a", 1.0)
    assert "catalog" not in reset.message


def test_task_asks_for_all_actions() -> None:
    session = GameSession(task_with(TINY, all_actions=True), seed=1)
    [joined] = session.join("a", "a", "Attacker", 0.0)
    listed = json.loads(joined.message["all_actions"])
    assert len(listed) == COUNTS["two_networks_tiny"]["total"]
    assert listed == _whitebox_list(session.world)


# ---------------------------------------------------------------------- wire form
def test_catalog_wire_round_trip_and_errors() -> None:
    found = catalog("scenario1")
    assert Catalog.from_wire(found.to_wire()) == found
    broken = found.to_wire()
    broken["services"] = broken["services"][:-1]
    with pytest.raises(ProtocolError, match=r"catalog\.services"):
        Catalog.from_wire(broken)
    for key, value, field in (("version", 99, "catalog.version"), ("hosts", [["a"]], r"catalog.hosts\[0\]"),
                              ("networks", [["n", "10.0.0.0", 999]], "catalog.networks")):
        wire = found.to_wire()
        wire[key] = value
        with pytest.raises(ProtocolError, match=field):
            Catalog.from_wire(wire)
    with pytest.raises(ProtocolError, match="catalog: expected a map"):
        Catalog.from_wire([1, 2])
