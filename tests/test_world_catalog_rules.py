"""A world's catalog: slot names, order, services and data, and the binding to current addresses.

The rules are those of protocol/catalog.py's module docstring (host slots named by node id,
``node@network`` for a node with several interfaces, ordered as the original IPs sorted as
strings; network slots in network order; services per slot in stored order; data the union of
every node's data plus the log file, in Data order) and reference netsecgame.md §6.11 (a
remap changes the binding, never the layout) and §7.1 (``all_actions``). Every test builds a
fresh scenario from a file, so no layout or catalog cached by another test is reused.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import yaml

from protocol import IP, Data, Network, Service
from protocol.action_table import ActionTable
from world.catalog import all_actions_json, catalog_of, scenario_layout
from world.game_world import GameWorld
from world.scenario import LOG_FILE, Scenario, load_scenario

SSH = Service("ssh", "passive", "8.1.0", False)
BASH = Service("bash", "passive", "5.0.0", True)
LAN_A, LAN_B, PUBLIC = Network("10.0.0.0", 24), Network("10.0.1.0", 24), Network("1.2.3.0", 24)


def _doc() -> dict[str, Any]:
    """Node "dual" has two interfaces; "a"'s 10.0.0.10 sorts before 10.0.0.2 as a string;
    the router has no services; nodes list their data out of Data order."""
    return {
        "name": "catalog-rules",
        "nodes": [
            {"id": "dual", "interfaces": [{"ip": "10.0.1.5", "network": "10.0.1.0/24"},
                                          {"ip": "10.0.0.2", "network": "10.0.0.0/24"}],
             "services": [{"name": "ssh", "version": "8.1.0", "local": False},
                          {"name": "bash", "version": "5.0.0", "local": True}],
             "data": [{"owner": "b", "id": "x"}, {"owner": "a", "id": "y"}]},
            {"id": "a", "interfaces": [{"ip": "10.0.0.10", "network": "10.0.0.0/24"}],
             "data": [{"owner": "a", "id": "y"}, {"owner": "a", "id": "b"}]},
            {"id": "p", "interfaces": [{"ip": "1.2.3.4", "network": "1.2.3.0/24"}],
             "services": [{"name": "ssh", "version": "8.1.0", "local": False}]},
        ],
        "routers": [
            {"id": "r", "interfaces": [{"ip": "10.0.1.1", "network": "10.0.1.0/24"}]},
        ],
        "start_candidates": ["10.0.0.10"],
    }


def _scenario(tmp_path: Path, public_id: str = "p") -> Scenario:
    doc = _doc()
    doc["nodes"][2]["id"] = public_id
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_scenario(path)


def test_slots_names_order_services_and_data(tmp_path: Path) -> None:
    """Host slots by original IP as strings, a multi-interface node named per network, routers
    without services, networks in CIDR order, data the union plus the log file, sorted."""
    catalog = catalog_of(GameWorld(_scenario(tmp_path), random.Random(0)))
    assert catalog.hosts == ("p", "a", "dual@10.0.0.0/24", "r", "dual@10.0.1.0/24")
    assert catalog.host_ips == tuple(IP(x) for x in ("1.2.3.4", "10.0.0.10", "10.0.0.2", "10.0.1.1", "10.0.1.5"))
    assert catalog.services == ((SSH,), (), (SSH, BASH), (), (SSH, BASH))
    assert catalog.networks == ("1.2.3.0/24", "10.0.0.0/24", "10.0.1.0/24")
    assert catalog.network_addresses == (PUBLIC, LAN_A, LAN_B)
    assert catalog.data == (Data("a", "b"), Data("a", "y"), Data("b", "x"), LOG_FILE)


def test_layout_of_a_scenario_without_data_tables(tmp_path: Path) -> None:
    """The log file is a data slot even when a scenario lists no node data at all."""
    scenario = Scenario(name="bare", ip_to_node={IP("10.0.0.2"): "a"}, networks={LAN_A: (IP("10.0.0.2"),)},
                        node_services={}, node_data={}, allow_rules=(), start_candidates=(IP("10.0.0.2"),))
    layout = scenario_layout(scenario)
    assert layout.data == (LOG_FILE,)
    assert layout.hosts == ("a",)
    assert layout.services == ((),)


def test_slot_names_of_an_interface_outside_the_network_tables() -> None:
    """A hand-built Scenario whose network table omits an interface: the slot is named after
    the network containing the address, or after the address when none does."""
    ips = {IP("10.0.0.2"): "m", IP("10.0.1.7"): "m", IP("10.0.9.9"): "m"}
    scenario = Scenario(name="hand", ip_to_node=ips,
                        networks={LAN_A: (IP("10.0.0.2"),), Network("10.0.0.0", 16): (), LAN_B: ()},
                        node_services={"m": (SSH,)}, node_data={"m": frozenset({LOG_FILE})},
                        allow_rules=(), start_candidates=(IP("10.0.0.2"),))
    layout = scenario_layout(scenario)
    assert layout.hosts == ("m@10.0.0.0/24", "m@10.0.0.0/16", "m@10.0.0.0/16")
    assert layout.networks == (Network("10.0.0.0", 16), LAN_A, LAN_B)
    scenario = Scenario(name="hand", ip_to_node={IP("10.0.0.2"): "m", IP("192.168.5.5"): "m"},
                        networks={LAN_A: (IP("10.0.0.2"),)}, node_services={}, node_data={},
                        allow_rules=(), start_candidates=())
    assert scenario_layout(scenario).hosts == ("m@10.0.0.0/24", "m@192.168.5.5")


def test_a_remap_rebinds_addresses_but_keeps_the_layout(tmp_path: Path) -> None:
    """§6.11: after a topology change the slots keep their names and order and follow the
    world's address map; the catalog is rebuilt for the new addresses."""
    world = GameWorld(_scenario(tmp_path), random.Random(3))
    before = catalog_of(world)
    assert catalog_of(world) == before
    world.reset(randomize_topology=True)
    after = catalog_of(world)
    layout = scenario_layout(world.scenario)
    assert after.layout == before.layout
    assert after.host_ips == tuple(world.ip_map[ip] for ip in layout.ips)
    assert after.network_addresses == tuple(world.network_map[n] for n in layout.networks)
    assert after.host_ips != before.host_ips
    assert catalog_of(world) == after


def test_all_actions_follow_the_current_addresses(tmp_path: Path) -> None:
    """§7.1: ``all_actions`` is the action table of the world's current catalog, as JSON text;
    after a remap it names the new addresses. The texts are cached per catalog value, so the
    scenario gets a name no earlier run in this process can have built."""
    world = GameWorld(_scenario(tmp_path, f"p-{uuid.uuid4()}"), random.Random(5))
    first = catalog_of(world)
    text = all_actions_json(world)
    assert text == ActionTable(first).as_all_actions_json(first)
    assert all_actions_json(world) == text
    assert json.loads(text)
    world.reset(randomize_topology=True)
    second = catalog_of(world)
    moved = all_actions_json(world)
    assert moved == ActionTable(second).as_all_actions_json(second)
    assert moved != text
