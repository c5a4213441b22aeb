"""Scenario file validation and schema rules (world/scenarios/README.md "Schema").

Each test loads a scenario from a file path (never the cached registry), so every load parses
afresh. The checks pin down what the README promises of a broken scenario: the error names the
file, the exact key path and the reason, with the offending value's type and value; and what a
valid file may contain: optional keys with their defaults, YAML merge keys, empty versions.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from protocol import IP, Service
from world.scenario import ScenarioError, load_scenario


def _doc() -> dict[str, Any]:
    """A small valid scenario: one LAN node with a service and data, one public node, a router."""
    return {
        "name": "rules",
        "nodes": [
            {"id": "a", "interfaces": [{"ip": "10.0.0.2", "network": "10.0.0.0/24"}],
             "services": [{"name": "ssh", "version": "8.1.0", "local": False}],
             "data": [{"owner": "U", "id": "D"}]},
            {"id": "p", "interfaces": [{"ip": "1.2.3.4", "network": "1.2.3.0/24"}]},
        ],
        "routers": [
            {"id": "r", "interfaces": [{"ip": "10.0.0.1", "network": "10.0.0.0/24"}],
             "allow": [{"src": "1.2.3.4/32", "dst": "10.0.0.2/32", "chain": "FORWARD"}]},
        ],
        "start_candidates": ["10.0.0.2"],
    }


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def _error(tmp_path: Path, doc: Any) -> ScenarioError:
    file = _write(tmp_path, doc)
    with pytest.raises(ScenarioError) as info:
        load_scenario(file)
    assert info.value.source == str(file)
    assert str(info.value) == f"{file}: {info.value.path}: {info.value.reason}"
    return info.value


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def test_the_sample_is_valid(tmp_path: Path) -> None:
    """The base document of these tests loads (so each failure below has one cause)."""
    scenario = load_scenario(_write(tmp_path, _doc()))
    assert scenario.name == "rules"
    assert scenario.start_candidates == (IP("10.0.0.2"),)


@pytest.mark.parametrize(("path", "where"), [
    (("name",), "name"),
    (("description",), "description"),
    (("nodes", 0, "id"), "nodes[0].id"),
    (("nodes", 0, "interfaces", 0, "ip"), "nodes[0].interfaces[0].ip"),
    (("nodes", 0, "interfaces", 0, "network"), "nodes[0].interfaces[0].network"),
    (("nodes", 0, "services", 0, "name"), "nodes[0].services[0].name"),
    (("nodes", 0, "services", 0, "type"), "nodes[0].services[0].type"),
    (("nodes", 0, "services", 0, "version"), "nodes[0].services[0].version"),
    (("nodes", 0, "data", 0, "owner"), "nodes[0].data[0].owner"),
    (("nodes", 0, "data", 0, "id"), "nodes[0].data[0].id"),
    (("routers", 0, "id"), "routers[0].id"),
    (("routers", 0, "interfaces", 0, "ip"), "routers[0].interfaces[0].ip"),
    (("routers", 0, "interfaces", 0, "network"), "routers[0].interfaces[0].network"),
    (("routers", 0, "allow", 0, "src"), "routers[0].allow[0].src"),
    (("routers", 0, "allow", 0, "dst"), "routers[0].allow[0].dst"),
    (("routers", 0, "allow", 0, "chain"), "routers[0].allow[0].chain"),
    (("start_candidates", 0), "start_candidates[0]"),
])
def test_a_non_string_names_its_exact_key_path(tmp_path: Path, path: tuple[Any, ...], where: str) -> None:
    """README "Schema": every defect is reported with the key path, e.g. nodes[2].interfaces[0].ip;
    a number where a string belongs is told with its type and value."""
    error = _error(tmp_path, _changed(path, 5))
    assert (error.path, error.reason) == (where, "expected a string (quote it), got int 5")


@pytest.mark.parametrize(("path", "where", "keys"), [
    (("nodes", 0), "nodes[0]", "id, interfaces"),
    (("nodes", 0, "interfaces", 0), "nodes[0].interfaces[0]", "ip, network"),
    (("nodes", 0, "services", 0), "nodes[0].services[0]", "name, version, local"),
    (("nodes", 0, "data", 0), "nodes[0].data[0]", "owner, id"),
    (("routers", 0), "routers[0]", "id, interfaces"),
    (("routers", 0, "interfaces", 0), "routers[0].interfaces[0]", "ip, network"),
    (("routers", 0, "allow", 0), "routers[0].allow[0]", "src, dst"),
])
def test_a_non_mapping_entry_lists_the_required_keys(
        tmp_path: Path, path: tuple[Any, ...], where: str, keys: str) -> None:
    """An entry that is not a mapping: its path, the keys it needs, what was found."""
    error = _error(tmp_path, _changed(path, "x"))
    assert (error.path, error.reason) == (where, f"expected a mapping with keys {keys}, got str 'x'")


def test_a_document_that_is_not_a_mapping_is_a_top_level_error(tmp_path: Path) -> None:
    """A file holding a list instead of the scenario mapping: the path is "(top level)"."""
    error = _error(tmp_path, "- just a list\n")
    assert error.path == "(top level)"
    assert error.reason == "expected a mapping with keys name, nodes, start_candidates, got list ['just a list']"


@pytest.mark.parametrize(("path", "where", "allowed"), [
    (("colour",), "colour", "name, nodes, start_candidates, description, routers"),
    (("nodes", 0, "colour"), "nodes[0].colour", "id, interfaces, services, data"),
    (("nodes", 0, "services", 0, "colour"), "nodes[0].services[0].colour", "name, version, local, type"),
    (("routers", 0, "colour"), "routers[0].colour", "id, interfaces, allow"),
    (("routers", 0, "allow", 0, "colour"), "routers[0].allow[0].colour", "src, dst, chain"),
])
def test_an_unknown_key_lists_the_allowed_keys(
        tmp_path: Path, path: tuple[Any, ...], where: str, allowed: str) -> None:
    """README: unknown keys are rejected; the message says which keys are allowed there."""
    error = _error(tmp_path, _changed(path, "red"))
    assert (error.path, error.reason) == (where, f"unknown key 'colour' (allowed: {allowed})")


@pytest.mark.parametrize(("path", "where"), [
    (("name",), "name"),
    (("nodes",), "nodes"),
    (("start_candidates",), "start_candidates"),
    (("nodes", 0, "interfaces"), "nodes[0].interfaces"),
    (("nodes", 0, "services", 0, "local"), "nodes[0].services[0].local"),
    (("routers", 0, "allow", 0, "dst"), "routers[0].allow[0].dst"),
])
def test_a_missing_required_key_is_named(tmp_path: Path, path: tuple[Any, ...], where: str) -> None:
    """A required key that is absent: the path of the key itself."""
    doc = _changed(path, None)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    error = _error(tmp_path, doc)
    assert (error.path, error.reason) == (where, "required key is missing")


def test_wrong_types_report_type_and_value(tmp_path: Path) -> None:
    """The reason shows the found type's name and the value's repr, cut to 60 characters."""
    error = _error(tmp_path, _changed(("nodes", 0, "services", 0, "version"), 8.1))
    assert error.reason == "expected a string (quote it), got float 8.1"
    error = _error(tmp_path, _changed(("nodes", 0, "services", 0, "local"), "no"))
    assert (error.path, error.reason) == ("nodes[0].services[0].local", "expected true or false, got str 'no'")
    error = _error(tmp_path, _changed(("nodes",), {"a": 1}))
    assert (error.path, error.reason) == ("nodes", "expected a list, got dict {'a': 1}")
    long = list(range(40))
    error = _error(tmp_path, _changed(("description",), long))
    assert error.reason == f"expected a string (quote it), got list {repr(long)[:60]}"
    assert len(error.reason) == len("expected a string (quote it), got list ") + 60


@pytest.mark.parametrize(("path", "value", "where"), [
    (("name",), "", "name"),
    (("name",), "   ", "name"),
    (("nodes", 0, "id"), "", "nodes[0].id"),
    (("nodes", 0, "services", 0, "name"), " ", "nodes[0].services[0].name"),
    (("nodes", 0, "data", 0, "id"), "", "nodes[0].data[0].id"),
])
def test_blank_strings_are_rejected(tmp_path: Path, path: tuple[Any, ...], value: str, where: str) -> None:
    """Names, ids and data are required strings: blank is as good as missing."""
    error = _error(tmp_path, _changed(path, value))
    assert (error.path, error.reason) == (where, "expected a non-empty string")


def test_a_node_needs_at_least_one_interface(tmp_path: Path) -> None:
    """README: "interfaces: at least one"."""
    error = _error(tmp_path, _changed(("nodes", 0, "interfaces"), []))
    assert (error.path, error.reason) == ("nodes[0].interfaces", "expected at least one entry")
    error = _error(tmp_path, _changed(("routers", 0, "interfaces"), []))
    assert (error.path, error.reason) == ("routers[0].interfaces", "expected at least one entry")


def test_optional_keys_and_their_defaults(tmp_path: Path) -> None:
    """README: description is optional (empty when absent), a service's type defaults to "passive"
    but may be given, an empty version string is allowed, an empty description too."""
    scenario = load_scenario(_write(tmp_path, _doc()))
    assert scenario.description == ""
    assert scenario.node_services["a"] == (Service("ssh", "passive", "8.1.0", False),)
    doc = _doc()
    doc["description"] = ""
    doc["nodes"][0]["services"] = [{"name": "c2", "type": "active", "version": "", "local": True}]
    scenario = load_scenario(_write(tmp_path, doc))
    assert scenario.description == ""
    assert scenario.node_services["a"] == (Service("c2", "active", "", True),)


def test_ids_are_unique_among_nodes_and_routers(tmp_path: Path) -> None:
    """README: an id is "unique among nodes and routers"; the error points at the first use."""
    error = _error(tmp_path, _changed(("routers", 0, "id"), "a"))
    assert (error.path, error.reason) == ("routers[0].id", "duplicate id 'a' (first at nodes[0].id)")
    doc = _doc()
    doc["routers"].append({"id": "r", "interfaces": [{"ip": "10.0.0.3", "network": "10.0.0.0/24"}]})
    error = _error(tmp_path, doc)
    assert (error.path, error.reason) == ("routers[1].id", "duplicate id 'r' (first at routers[0].id)")


def test_an_unknown_chain_lists_the_chains(tmp_path: Path) -> None:
    """README: chain is optional, INPUT or FORWARD."""
    error = _error(tmp_path, _changed(("routers", 0, "allow", 0, "chain"), "OUTPUT"))
    assert (error.path, error.reason) == ("routers[0].allow[0].chain", "expected one of INPUT, FORWARD, got 'OUTPUT'")


def test_yaml_errors_give_line_column_and_the_problem(tmp_path: Path) -> None:
    """Invalid YAML: where it is (1-based line and column) and the parser's problem, no more."""
    error = _error(tmp_path, "name: [unclosed\n")
    assert error.path == "line 2, column 1"
    assert error.reason == "invalid YAML: expected ',' or ']', but got '<stream end>'"
    text = yaml.safe_dump(_doc()).replace("name: rules\n", "name: rules\nname: again\n")
    line = text.splitlines().index("name: again") + 1
    error = _error(tmp_path, text)
    assert (error.path, error.reason) == (f"line {line}, column 1", "invalid YAML: found duplicate key 'name'")
    error = _error(tmp_path, "name: x\nnodes: {a: 1, a: 2}\n")
    assert (error.path, error.reason) == ("line 2, column 15", "invalid YAML: found duplicate key 'a'")


def test_a_yaml_error_without_a_position(tmp_path: Path) -> None:
    """A character YAML forbids is found by the reader, which gives no line: "(yaml)" instead."""
    error = _error(tmp_path, "name: a\x07b\n")
    assert error.path == "(yaml)"
    assert error.reason.startswith("invalid YAML: unacceptable character #x0007: special characters are not allowed")


def test_merge_keys_are_allowed_and_may_override(tmp_path: Path) -> None:
    """YAML merge keys (<<) are not duplicates: a merged mapping may be reused and overridden."""
    text = (
        "name: merged\n"
        "nodes:\n"
        "  - id: a\n"
        "    interfaces: [&lan {ip: 10.0.0.2, network: 10.0.0.0/24}]\n"
        "  - id: b\n"
        "    interfaces: [{<<: *lan, ip: 10.0.0.3}]\n"
        "start_candidates: [10.0.0.3]\n")
    scenario = load_scenario(_write(tmp_path, text))
    assert scenario.ip_to_node == {IP("10.0.0.2"): "a", IP("10.0.0.3"): "b"}
    error = _error(tmp_path, text.replace("ip: 10.0.0.3}", "ip: 10.0.0.3, ip: 10.0.0.4}"))
    assert (error.path, error.reason) == ("line 6, column 43", "invalid YAML: found duplicate key 'ip'")


def test_names_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_scenario: a registry name, else a path. A string that looks like a file (a .yaml or
    .yml suffix, or a directory part) is read as one, so a missing one is a file error; any
    other unknown string is an unsupported registry name unless such a file exists."""
    monkeypatch.chdir(tmp_path)
    for name in ("missing.yaml", "missing.yml", "no_such_dir/missing"):
        with pytest.raises(ScenarioError) as info:
            load_scenario(name)
        assert (info.value.source, info.value.path) == (name, "(file)")
        assert info.value.reason.startswith("cannot read the file: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario("missing")
    assert (info.value.source, info.value.path) == ("scenario registry", "env.scenario")
    assert info.value.reason.startswith("Unsupported scenario: 'missing'. Available scenarios: ['one_network', ")
    assert info.value.reason.endswith("] (or give the path of a YAML scenario file)")
    Path("local_scenario").write_text(yaml.safe_dump(_doc()), encoding="utf-8")
    assert load_scenario("local_scenario").name == "rules"
