"""Scenario topologies: YAML data in, immutable world tables out.

Upstream builds its world from CYST Python objects; we keep the same facts as plain YAML
files (``world/scenarios/*.yaml``, schema in ``world/scenarios/README.md``) so that a
topology is data that can be read, diffed and validated. The tables produced here are
what reference/netsecgame.md §5.1 derives from a CYST scenario: ip -> node, network ->
IPs, node -> services, node -> data (with the log file), the ALLOW rules, the start
candidates, and the firewall reachability map.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import attrs
import yaml

from protocol import IP, Data, Network, Service

__all__ = ["LOG_FILE", "SCENARIO_FILES", "Scenario", "ScenarioError", "is_private_network",
           "load_scenario"]

log = logging.getLogger(__name__)

#: Registry of reference §5.3: the ``env.scenario`` value -> YAML file in world/scenarios.
#: ``scenario1_small`` and ``scenario1_tiny`` are byte-identical upstream, hence aliases.
SCENARIO_FILES: dict[str, str] = {
    "two_networks_tiny": "two_networks_tiny.yaml",
    "two_networks_small": "two_networks_small.yaml",
    "two_networks": "two_networks.yaml",
    "one_network": "one_network.yaml",
    "three_net_scenario": "three_net_scenario.yaml",
    "scenario1": "scenario1.yaml",
    "scenario1_small": "two_networks_small.yaml",
    "scenario1_tiny": "two_networks_tiny.yaml",
}

#: The empty log every node and router starts with (reference §5.1, "Log files").
LOG_FILE = Data("system", "logfile", size=0, type="log", content="")

_INTERNET = "internet"
_CHAINS = ("INPUT", "FORWARD")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class ScenarioError(ValueError):
    """A scenario that cannot be loaded: says which file, which key and why, so a broken
    topology is rejected at start-up rather than surfacing as a wrong game later."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        super().__init__(f"{source}: {path}: {reason}")
        self.source, self.path, self.reason = source, path, reason

    def __reduce__(self) -> tuple[Any, ...]:  # keep it picklable across processes
        return (self.__class__, (self.source, self.path, self.reason))


def is_private_network(network: Network) -> bool:
    """Privacy as upstream judges it: ``ipaddress`` on the network address (§5.1)."""
    return ipaddress.ip_address(network.ip).is_private


@attrs.frozen
class Scenario:
    """The static tables of one topology. Loaded registry scenarios are cached and shared:
    treat the dicts as read-only and copy before changing anything."""

    name: str
    ip_to_node: dict[IP, str]
    networks: dict[Network, tuple[IP, ...]]
    node_services: dict[str, tuple[Service, ...]]
    node_data: dict[str, frozenset[Data]]
    allow_rules: tuple[tuple[Network, Network], ...]
    start_candidates: tuple[IP, ...]
    description: str = ""

    @property
    def all_ips(self) -> tuple[IP, ...]:
        """Every world IP (nodes, then routers; never the internet router)."""
        return tuple(self.ip_to_node)

    def firewall(self, use_firewall: bool = True) -> dict[IP, frozenset[IP]]:
        """Source IP -> reachable destination IPs, derived by the four rules of §5.1.

        A fresh dict on every call, so the caller may keep and mutate it (BlockIP).
        """
        everyone = frozenset(self.ip_to_node)
        if not use_firewall:
            return {ip: everyone for ip in self.ip_to_node}
        reach: dict[IP, set[IP]] = {ip: set() for ip in self.ip_to_node}
        private = {net: is_private_network(net) for net in self.networks}
        public_ips = [ip for net, ips in self.networks.items() if not private[net] for ip in ips]
        for net, ips in self.networks.items():
            if private[net]:
                for ip in ips:
                    reach[ip].update(ips)  # rule 1: a private LAN is fully connected
                    reach[ip].update(public_ips)  # rule 2: private -> every public IP
        for ip in public_ips:
            reach[ip].add(ip)  # rule 2: a public IP reaches itself
        addresses = {ip: ipaddress.ip_address(ip.ip) for ip in self.ip_to_node}
        for src_net, dst_net in self.allow_rules:  # rule 3: ALLOW rules, by containment
            sources = _inside(addresses, src_net)
            targets = _inside(addresses, dst_net)
            for ip in sources:
                reach[ip].update(targets)
        return {ip: frozenset(dsts) for ip, dsts in reach.items()}  # rule 4: nothing else


def _inside(addresses: dict[IP, _Address], network: Network) -> list[IP]:
    block = ipaddress.ip_network(f"{network.ip}/{network.mask}", strict=False)
    return [ip for ip, address in addresses.items() if address in block]


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """Load a registry scenario by name (§5.3), or any YAML file of the same schema."""
    if isinstance(name_or_path, str) and name_or_path in SCENARIO_FILES:
        return _load_registered(name_or_path)
    path = Path(name_or_path)
    looks_like_file = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
    if isinstance(name_or_path, str) and not looks_like_file and not path.exists():
        raise ScenarioError(
            "scenario registry", "env.scenario",
            f"Unsupported scenario: {name_or_path!r}. Available scenarios: "
            f"{sorted(SCENARIO_FILES)} (or give the path of a YAML scenario file)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "(file)", f"cannot read the file: {exc}") from None
    return _parse(text, str(path))


@functools.cache
def _load_registered(name: str) -> Scenario:
    """The registry tables never change, so each is parsed once per process."""
    file_name = SCENARIO_FILES[name]
    resource = resources.files("world") / "scenarios" / file_name
    return _parse(resource.read_text(encoding="utf-8"), f"world/scenarios/{file_name}", name)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a repeated mapping key instead of keeping the last one."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                except TypeError:  # unhashable: the base class reports it
                    continue
                if repeated:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {repr(value)[:60]}"


@attrs.define
class _Reader:
    """Strict, path-aware checks: each failure names the file and the key path."""

    source: str

    def fail(self, path: str, reason: str) -> NoReturn:
        raise ScenarioError(self.source, path or "(top level)", reason)

    def mapping(self, value: Any, path: str, required: tuple[str, ...],
                optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping with keys {', '.join(required)}, "
                            f"got {_describe(value)}")
        for key in value:
            if key not in required and key not in optional:
                self.fail(_join(path, str(key)), f"unknown key {key!r} (allowed: "
                                                 f"{', '.join(required + optional)})")
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "required key is missing")
        return value

    def items(self, value: Any, path: str, *, nonempty: bool = False) -> Iterable[tuple[str, Any]]:
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_describe(value)}")
        if nonempty and not value:
            self.fail(path, "expected at least one entry")
        return ((f"{path}[{i}]", item) for i, item in enumerate(value))

    def text(self, value: Any, path: str, *, nonempty: bool = True) -> str:
        if not isinstance(value, str):
            self.fail(path, f"expected a string (quote it), got {_describe(value)}")
        if nonempty and not value.strip():
            self.fail(path, "expected a non-empty string")
        return value

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_describe(value)}")
        return value

    def address(self, value: Any, path: str) -> _Address:
        text = self.text(value, path)
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            self.fail(path, f"not an IP address: {text!r}")

    def network(self, value: Any, path: str) -> _Net:
        text = self.text(value, path)
        if "/" not in text:
            self.fail(path, f"expected a network as address/prefix (e.g. 192.168.1.0/24), "
                            f"got {text!r}")
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            self.fail(path, f"not a network: {exc}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _as_network(block: _Net) -> Network:
    return Network(str(block.network_address), block.prefixlen)


def _parse(text: str, source: str, registry_name: str | None = None) -> Scenario:
    """Validate one YAML document and build the §5.1 tables from it."""
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        raise ScenarioError(source, where,
                            f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    r = _Reader(source)
    top = r.mapping(doc, "", ("name", "nodes", "start_candidates"), ("description", "routers"))
    name = r.text(top["name"], "name")
    description = r.text(top.get("description", ""), "description", nonempty=False)

    ip_to_node: dict[IP, str] = {}
    networks: dict[Network, list[IP]] = {}
    node_services: dict[str, tuple[Service, ...]] = {}
    node_data: dict[str, frozenset[Data]] = {}
    allow_rules: list[tuple[Network, Network]] = []
    first_seen: dict[str, str] = {}  # id or IP text -> the key path that introduced it

    def claim(kind: str, value: str, path: str) -> None:
        if (kind, value) in first_seen:
            r.fail(path, f"duplicate {kind} {value!r} (first at {first_seen[kind, value]})")
        first_seen[kind, value] = path

    def interfaces(entry: dict[str, Any], path: str, owner: str, in_world: bool) -> None:
        for ipath, iface in r.items(entry["interfaces"], f"{path}.interfaces", nonempty=True):
            iface = r.mapping(iface, ipath, ("ip", "network"))
            address = r.address(iface["ip"], f"{ipath}.ip")
            block = r.network(iface["network"], f"{ipath}.network")
            if address not in block:
                r.fail(f"{ipath}.ip", f"{address} is not inside its network {block}")
            claim("IP", str(address), f"{ipath}.ip")
            if in_world:
                ip = IP(str(address))
                ip_to_node[ip] = owner
                networks.setdefault(_as_network(block), []).append(ip)

    for path, node in r.items(top["nodes"], "nodes"):
        node = r.mapping(node, path, ("id", "interfaces"), ("services", "data"))
        node_id = r.text(node["id"], f"{path}.id")
        claim("id", node_id, f"{path}.id")
        interfaces(node, path, node_id, in_world=True)
        services = []
        for spath, svc in r.items(node.get("services", []), f"{path}.services"):
            svc = r.mapping(svc, spath, ("name", "version", "local"), ("type",))
            services.append(Service(
                name=r.text(svc["name"], f"{spath}.name"),
                type=r.text(svc.get("type", "passive"), f"{spath}.type"),
                version=r.text(svc["version"], f"{spath}.version", nonempty=False),
                is_local=r.flag(svc["local"], f"{spath}.local")))
        node_services[node_id] = tuple(services)
        data = {LOG_FILE}
        for dpath, datum in r.items(node.get("data", []), f"{path}.data"):
            datum = r.mapping(datum, dpath, ("owner", "id"))
            data.add(Data(r.text(datum["owner"], f"{dpath}.owner"),
                          r.text(datum["id"], f"{dpath}.id")))
        node_data[node_id] = frozenset(data)

    for path, router in r.items(top.get("routers", []), "routers"):
        router = r.mapping(router, path, ("id", "interfaces"), ("allow",))
        router_id = r.text(router["id"], f"{path}.id")
        claim("id", router_id, f"{path}.id")
        is_internet = router_id.lower() == _INTERNET  # skipped entirely (§5.1)
        interfaces(router, path, router_id, in_world=not is_internet)
        node_data[router_id] = frozenset({LOG_FILE})
        for apath, rule in r.items(router.get("allow", []), f"{path}.allow"):
            rule = r.mapping(rule, apath, ("src", "dst"), ("chain",))
            src = _as_network(r.network(rule["src"], f"{apath}.src"))
            dst = _as_network(r.network(rule["dst"], f"{apath}.dst"))
            if "chain" in rule and r.text(rule["chain"], f"{apath}.chain") not in _CHAINS:
                r.fail(f"{apath}.chain", f"expected one of {', '.join(_CHAINS)}, "
                                         f"got {rule['chain']!r}")
            if not is_internet:
                allow_rules.append((src, dst))

    candidates = []
    for cpath, value in r.items(top["start_candidates"], "start_candidates"):
        ip = IP(str(r.address(value, cpath)))
        if ip not in ip_to_node:
            r.fail(cpath, f"{ip} is not a world IP (an interface of a node or non-internet "
                          f"router)")
        candidates.append(ip)

    scenario = Scenario(
        name=registry_name or name, ip_to_node=ip_to_node,
        networks={net: tuple(ips) for net, ips in networks.items()},
        node_services=node_services, node_data=node_data, allow_rules=tuple(allow_rules),
        start_candidates=tuple(candidates), description=description)
    log.debug("loaded scenario %s from %s: %d IPs, %d networks, %d rules",  # pragma: no mutate
              scenario.name, source, len(ip_to_node), len(networks), len(allow_rules))  # pragma: no mutate
    return scenario
