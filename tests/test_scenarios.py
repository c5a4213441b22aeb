"""Scenario tables against reference/netsecgame.md §5.

The expected values come from ``tests/fixtures/scenario_tables.yaml``, a hand transcription of
the §5.3 tables made independently of ``world/scenarios/*.yaml``; the firewall checks follow
the four derivation rules of §5.1.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from protocol import IP, Data, Network, Service
from world.scenario import (
    LOG_FILE,
    SCENARIO_FILES,
    Scenario,
    ScenarioError,
    is_private_network,
    load_scenario,
)

TABLES: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "scenario_tables.yaml").read_text(encoding="utf-8"))
NAMES = list(SCENARIO_FILES)
C2 = IP("213.47.23.195")


def test_registry_names_match_the_reference() -> None:
    """Reference §5.3: exactly eight registry names, all transcribed in the fixture."""
    assert sorted(SCENARIO_FILES) == sorted(TABLES)
    assert len(SCENARIO_FILES) == 8


@pytest.fixture(params=NAMES)
def case(request: pytest.FixtureRequest) -> tuple[Scenario, dict[str, Any]]:
    return load_scenario(request.param), TABLES[request.param]


def _network_of(scenario: Scenario) -> dict[IP, Network]:
    return {ip: net for net, ips in scenario.networks.items() for ip in ips}


def test_counts(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.3 "Counts": world IPs / networks / distinct data (log counted once)."""
    scenario, table = case
    assert len(scenario.all_ips) == table["world_ips"]
    assert len(set(scenario.all_ips)) == table["world_ips"]
    assert len(scenario.networks) == table["networks"]
    assert len(frozenset().union(*scenario.node_data.values())) == table["distinct_data"]


def test_networks_and_their_sizes(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.3 "Networks:" lines; §5.1: each interface adds its IP to its network."""
    scenario, table = case
    assert {str(net): len(ips) for net, ips in scenario.networks.items()} == table["network_sizes"]
    assert sorted(ip for ips in scenario.networks.values() for ip in ips) == sorted(
        scenario.all_ips)


def test_start_candidates_keep_order_and_duplicates(
        case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 and §5.2: the candidate list is a list, duplicates weight `random`."""
    scenario, table = case
    assert [str(ip) for ip in scenario.start_candidates] == table["start_candidates"]


def test_node_ids_and_ip_order(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1: nodes in list order, then routers; the ip -> node map follows it."""
    scenario, table = case
    assert list(scenario.node_services) == table["nodes"]
    assert set(scenario.node_data) == set(table["nodes"]) | set(table["routers"])
    owners = list(dict.fromkeys(scenario.ip_to_node.values()))
    assert owners == table["nodes"] + [r for r in table["routers"] if r != "internet"]


def test_internet_router_is_ignored(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 "Routers" and §5.3 shared facts: 213.47.23.193 does not exist."""
    scenario, _ = case
    internet = IP("213.47.23.193")
    assert internet not in scenario.ip_to_node
    assert all(internet not in ips for ips in scenario.networks.values())
    assert internet not in scenario.firewall()
    assert "internet" not in scenario.ip_to_node.values()


def test_every_node_and_router_has_the_log_file(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 "Log files": every node and router, internet included, gets the log."""
    scenario, table = case
    for node_id in table["nodes"] + table["routers"]:
        logs = [d for d in scenario.node_data[node_id] if d == LOG_FILE]
        assert len(logs) == 1, node_id
        assert (logs[0].owner, logs[0].id, logs[0].type) == ("system", "logfile", "log")
        assert (logs[0].size, logs[0].content) == (0, "")


def test_services_are_passive_and_c2_is_as_published(
        case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 (passive services) and §5.3 shared facts (the C&C host)."""
    scenario, _ = case
    for services in scenario.node_services.values():
        assert all(s.type == "passive" and isinstance(s.version, str) for s in services)
    assert scenario.ip_to_node[C2] == "outside_node"
    assert scenario.node_services["outside_node"] == (
        Service("bash", "passive", "5.0.0", True), Service("listener", "passive", "1.0.0", False))
    assert scenario.node_data["outside_node"] == frozenset({LOG_FILE})


def test_firewall_matches_the_four_rules(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 rules 1-4, with the rule-3 outcome taken from the §5.3 "Derived
    cross-network reachability" lines: the derived map is exactly their union."""
    scenario, table = case
    fw = scenario.firewall()
    network_of = _network_of(scenario)
    public = [ip for ip in scenario.all_ips if not is_private_network(network_of[ip])]
    cross = {IP(src): {IP(d) for d in dsts} for src, dsts in table["cross_reach"].items()}
    assert set(fw) == set(scenario.all_ips)
    for src in scenario.all_ips:
        expected: set[IP] = set(cross.get(src, ()))
        if is_private_network(network_of[src]):
            expected |= set(scenario.networks[network_of[src]])  # rule 1
            expected |= set(public)  # rule 2
        else:
            expected.add(src)  # rule 2: a public IP reaches itself
        assert fw[src] == expected, src  # rule 4: nothing else


def test_cross_network_private_reachability(case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 rule 3 / §5.3: for (src, dst) in different networks with dst private,
    reachable iff the derived table lists it."""
    scenario, table = case
    fw = scenario.firewall()
    network_of = _network_of(scenario)
    for src in scenario.all_ips:
        for dst in scenario.all_ips:
            if network_of[src] == network_of[dst] or not is_private_network(network_of[dst]):
                continue
            listed = str(dst) in table["cross_reach"].get(str(src), [])
            assert (dst in fw[src]) == listed, (src, dst)


def test_private_reaches_public_and_public_reaches_no_private(
        case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1 rules 1, 2 and 4: a private LAN is fully connected (self included),
    every private IP reaches every public IP, public IPs reach themselves and no private IP."""
    scenario, _ = case
    fw = scenario.firewall()
    for net, ips in scenario.networks.items():
        for src in ips:
            if is_private_network(net):
                assert set(ips) <= fw[src]
                assert C2 in fw[src]
            else:
                assert src in fw[src]
                assert all(not is_private_network(_network_of(scenario)[d]) for d in fw[src])
    assert fw[C2] == frozenset({C2})


def test_without_firewall_everyone_reaches_everyone(
        case: tuple[Scenario, dict[str, Any]]) -> None:
    """Reference §5.1: with `use_firewall` false every IP reaches every IP."""
    scenario, _ = case
    fw = scenario.firewall(use_firewall=False)
    assert fw == {ip: frozenset(scenario.all_ips) for ip in scenario.all_ips}


def test_firewall_is_a_fresh_copy_each_time() -> None:
    """BlockIP edits the live firewall (reference §6.9); the scenario's must stay intact."""
    scenario = load_scenario("two_networks_tiny")
    fw = scenario.firewall()
    fw[C2] = frozenset()
    assert scenario.firewall()[C2] == frozenset({C2})


@pytest.mark.parametrize(("alias", "target"), [("scenario1_small", "two_networks_small"),
                                               ("scenario1_tiny", "two_networks_tiny")])
def test_aliases_equal_their_two_networks_tables(alias: str, target: str) -> None:
    """Reference §5.3: scenario1_small / _tiny are byte-identical to two_networks_small / _tiny."""
    assert TABLES[alias] == TABLES[target]
    assert load_scenario(alias).name == alias
    assert attrs.evolve(load_scenario(alias), name=target) == load_scenario(target)


def test_scenario1_has_port_prefixed_service_names() -> None:
    """Reference §5.3 `scenario1`: two_networks with names such as `445/tcp, microsoft-ds`."""
    prefixes = {"microsoft-ds": "445/tcp", "ms-wbt-server": "3389/tcp", "ssh": "22/tcp",
                "postgresql": "5432/tcp", "http": "80/tcp"}
    plain, ported = load_scenario("two_networks"), load_scenario("scenario1")
    assert ported.node_services["smb_server"][0] == Service(
        "445/tcp, microsoft-ds", "passive", "10.0.19041", False)
    for node_id, services in plain.node_services.items():
        expected = tuple(
            attrs.evolve(s, name=f"{prefixes[s.name]}, {s.name}") if s.name in prefixes else s
            for s in services)
        assert ported.node_services[node_id] == expected, node_id
    assert attrs.evolve(ported, name="two_networks", node_services=plain.node_services,
                        description=plain.description) == plain


def test_data_as_published() -> None:
    """Reference §5.1: private data become Data(owner, id) with size 0 and type ""."""
    scenario = load_scenario("three_net_scenario")
    assert scenario.node_data["smb_server"] == frozenset({
        LOG_FILE, Data("User1", "DataFromServer1"), Data("User2", "Data2FromServer1"),
        Data("User1", "Data3FromServer1")})
    assert scenario.node_data["ad_server"] == frozenset({LOG_FILE, Data("admin", "passwords")})


def test_registry_loads_are_cached_and_paths_load_too(tmp_path: Path) -> None:
    """The registry tables are immutable, so one parse per process; a path gives the same."""
    assert load_scenario("two_networks") is load_scenario("two_networks")
    source = Path(__file__).parents[1] / "world" / "scenarios" / "two_networks.yaml"
    copy_path = tmp_path / "copy.yaml"
    copy_path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_scenario(copy_path) == load_scenario("two_networks")
    assert load_scenario(str(copy_path)) == load_scenario("two_networks")


# --- synthetic scenarios: rule edge cases and validation ---------------------------------


def _minimal() -> dict[str, Any]:
    return {
        "name": "mini",
        "description": "one LAN, one router, two public hosts",
        "nodes": [
            {"id": "a", "interfaces": [{"ip": "10.0.0.2", "network": "10.0.0.0/24"}],
             "services": [{"name": "ssh", "version": "8.1.0", "local": False}],
             "data": [{"owner": "U", "id": "D"}]},
            {"id": "b", "interfaces": [{"ip": "10.0.1.2", "network": "10.0.1.0/24"}]},
            {"id": "p1", "interfaces": [{"ip": "1.2.3.4", "network": "1.2.3.0/24"}]},
            {"id": "p2", "interfaces": [{"ip": "1.2.3.5", "network": "1.2.3.0/24"}]},
        ],
        "routers": [
            {"id": "r", "interfaces": [{"ip": "10.0.0.1", "network": "10.0.0.0/24"}],
             "allow": [{"src": "1.2.3.5/32", "dst": "10.0.0.2/32", "chain": "FORWARD"},
                       {"src": "10.9.9.9/32", "dst": "10.0.1.0/24"}]},
            {"id": "Internet", "interfaces": [{"ip": "1.2.3.1", "network": "1.2.3.0/24"}],
             "allow": [{"src": "1.2.3.0/24", "dst": "10.0.1.0/24"}]},
        ],
        "start_candidates": ["10.0.0.2"],
    }


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_rules_on_a_synthetic_world(tmp_path: Path) -> None:
    """Reference §5.1: rule 2 gives a public IP only itself (rule 1 is for private LANs);
    rule 3 applies to any world IP, public sources included; rules naming no world IP do
    nothing; the internet router (any case) and its rules are skipped."""
    scenario = load_scenario(_write(tmp_path, _minimal()))
    fw = scenario.firewall()
    p1, p2, a, b, r = (IP(x) for x in ("1.2.3.4", "1.2.3.5", "10.0.0.2", "10.0.1.2", "10.0.0.1"))
    assert fw[p1] == {p1}
    assert fw[p2] == {p2, a}
    assert fw[a] == {a, r, p1, p2}
    assert fw[b] == {b, p1, p2}
    assert IP("1.2.3.1") not in scenario.ip_to_node
    assert scenario.node_data["Internet"] == frozenset({LOG_FILE})
    assert scenario.name == "mini"


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "where", "reason"), [
    (("colour",), "red", "colour", "unknown key"),
    (("nodes", 0, "interfaces", 0, "vlan"), 3, "nodes[0].interfaces[0].vlan", "unknown key"),
    (("nodes", 1, "interfaces", 0, "ip"), "10.0.1.300", "nodes[1].interfaces[0].ip",
     "not an IP address"),
    (("nodes", 1, "interfaces", 0, "ip"), "10.0.2.2", "nodes[1].interfaces[0].ip",
     "not inside its network"),
    (("nodes", 1, "interfaces", 0, "network"), "10.0.1.2/24", "nodes[1].interfaces[0].network",
     "host bits"),
    (("nodes", 3, "interfaces", 0, "ip"), "1.2.3.4", "nodes[3].interfaces[0].ip",
     "duplicate IP '1.2.3.4' (first at nodes[2].interfaces[0].ip)"),
    (("nodes", 0, "services", 0, "version"), 8.1, "nodes[0].services[0].version",
     "expected a string"),
    (("nodes", 0, "services", 0, "local"), "no", "nodes[0].services[0].local",
     "expected true or false"),
    (("nodes", 0, "data", 0), {"owner": "U"}, "nodes[0].data[0].id", "missing"),
    (("nodes", 3, "id"), "a", "nodes[3].id", "duplicate id"),
    (("routers", 0, "allow", 0, "chain"), "OUTPUT", "routers[0].allow[0].chain", "INPUT"),
    (("routers", 0, "allow", 1, "dst"), "10.0.1.0", "routers[0].allow[1].dst", "address/prefix"),
    (("start_candidates",), ["10.0.0.2", "1.2.3.1"], "start_candidates[1]", "not a world IP"),
    (("nodes",), {"a": 1}, "nodes", "expected a list"),
])
def test_invalid_scenarios_name_file_key_and_reason(
        tmp_path: Path, path: tuple[Any, ...], value: Any, where: str, reason: str) -> None:
    """Validation: every defect is reported with the file, the key path and the reason."""
    doc = copy.deepcopy(_minimal())
    _set(doc, path, value)
    file = _write(tmp_path, doc)
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    message = str(info.value)
    assert str(file) in message and f": {where}: " in message and reason in message, message
    assert info.value.path == where


def test_yaml_syntax_and_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    """A repeated key would silently override the first; it is an error instead."""
    text = yaml.safe_dump(_minimal()).replace("name: mini\n", "name: mini\nname: again\n")
    with pytest.raises(ScenarioError, match="duplicate key 'name'"):
        load_scenario(_write(tmp_path, text))
    with pytest.raises(ScenarioError, match=r"line \d+, column \d+: invalid YAML"):
        load_scenario(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ScenarioError, match=r"\(top level\)"):
        load_scenario(_write(tmp_path, "- just a list\n"))


def test_unknown_registry_name_and_missing_file(tmp_path: Path) -> None:
    """Reference §4.2: an unknown `env.scenario` is an error that lists the known names."""
    with pytest.raises(ScenarioError, match=r"env\.scenario: Unsupported scenario: 'two_nets'"):
        load_scenario("two_nets")
    with pytest.raises(ValueError, match="scenario1_small"):
        load_scenario("no_such_scenario")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_scenario_error_survives_pickling() -> None:
    """World workers are processes: their errors must cross a process boundary intact."""
    error = pickle.loads(pickle.dumps(ScenarioError("f.yaml", "nodes[0].id", "bad")))
    assert (error.source, error.path, error.reason) == ("f.yaml", "nodes[0].id", "bad")
    assert str(error) == "f.yaml: nodes[0].id: bad"
