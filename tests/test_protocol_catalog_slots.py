"""The catalog's slots, bindings and wire form (protocol/catalog.py; PROTOCOL.md §3.3 ``catalog``).

A catalog is what fixed action tables and observation vectors are built from, so its
wire form must round-trip exactly, its lookups must follow the current binding, and a
malformed catalog must be refused with one line naming the field (DESIGN §7: bad input
gets one clear line naming what was wrong).
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import IP, Data, Network, ProtocolError, Service
from protocol.catalog import CATALOG_VERSION, Catalog

CLIENT, SERVER = IP("192.168.1.2"), IP("213.47.23.195")
LAN, WAN = Network("192.168.1.0", 24), Network("213.47.23.192", 26)
SSH = Service("ssh", "passive", "8.1.0", False)
SHELL = Service("bash", "", "", True)
SECRET, LOGS = Data("User1", "DatabaseData", type="db"), Data("User2", "Logs")


def _catalog() -> Catalog:
    return Catalog(hosts=("client", "server@wan"), host_ips=(CLIENT, SERVER),
                   networks=("192.168.1.0/24", "213.47.23.192/26"), network_addresses=(LAN, WAN),
                   services=((SHELL,), (SSH,)), data=(SECRET, LOGS))


def _wire() -> dict[str, Any]:
    return {
        "version": 1,
        "hosts": [["client", "192.168.1.2"], ["server@wan", "213.47.23.195"]],
        "networks": [["192.168.1.0/24", "192.168.1.0", 24], ["213.47.23.192/26", "213.47.23.192", 26]],
        "services": [[["bash", "", "", True]], [["ssh", "passive", "8.1.0", False]]],
        "data": [["User1", "DatabaseData", "db"], ["User2", "Logs", ""]],
    }


def test_wire_form_is_exact_and_round_trips() -> None:
    """PROTOCOL.md §3.3: hosts [name, ip], networks [name, ip, mask], services per host slot
    [name, type, version, is_local], data [owner, id, type], version 1."""
    catalog = _catalog()
    assert CATALOG_VERSION == 1
    assert catalog.to_wire() == _wire()
    parsed = Catalog.from_wire(_wire())
    assert parsed == catalog
    assert (parsed.hosts, parsed.host_ips, parsed.networks) == (catalog.hosts, catalog.host_ips, catalog.networks)
    assert parsed.network_addresses == (LAN, WAN)
    assert parsed.services == ((SHELL,), (SSH,))
    assert parsed.data == (SECRET, LOGS) and parsed.data[1].type == ""


def test_lookups_follow_the_binding() -> None:
    """catalog.py: host, network and data slots by current address; is_public per slot."""
    catalog = _catalog()
    assert [catalog.host_slot(ip) for ip in (CLIENT, SERVER, IP("10.9.9.9"))] == [0, 1, None]
    assert [catalog.network_slot(n) for n in (LAN, WAN, Network("10.0.0.0", 8))] == [0, 1, None]
    assert catalog.data_slot(Data("User2", "Logs", size=99, content="x")) == 1
    assert catalog.data_slot(Data("User2", "Logs", type="log")) is None
    assert [catalog.is_public(0), catalog.is_public(1)] == [False, True]


def test_slot_named() -> None:
    """catalog.py slot_named: the slot of a name; KeyError naming the known slots otherwise."""
    catalog = _catalog()
    assert catalog.slot_named("client") == 0
    assert catalog.slot_named("server@wan") == 1
    with pytest.raises(KeyError) as info:
        catalog.slot_named("router")
    assert info.value.args == ("no host slot 'router' (slots: client, server@wan)",)


def test_rebound_keeps_layout_and_moves_addresses() -> None:
    """catalog.py / reference §6.11: address remapping changes only the binding, never the slots."""
    catalog = _catalog()
    moved_ips, moved_nets = [IP("10.1.1.7"), IP("99.1.1.9")], [Network("10.1.1.0", 24), Network("99.1.1.0", 26)]
    moved = catalog.rebound(moved_ips, moved_nets)  # type: ignore[arg-type]
    assert moved.layout == catalog.layout
    assert (moved.hosts, moved.networks, moved.services, moved.data) == (
        catalog.hosts, catalog.networks, catalog.services, catalog.data)
    assert moved.host_ips == (IP("10.1.1.7"), IP("99.1.1.9"))
    assert moved.network_addresses == (Network("10.1.1.0", 24), Network("99.1.1.0", 26))
    assert moved != catalog
    assert moved.host_slot(IP("99.1.1.9")) == 1 and moved.host_slot(SERVER) is None
    assert moved.network_slot(Network("99.1.1.0", 26)) == 1 and moved.network_slot(WAN) is None
    assert moved.rebound(catalog.host_ips, catalog.network_addresses) == catalog


def test_equality_needs_layout_and_both_bindings() -> None:
    """catalog.py __eq__: equal only with the same layout, host addresses and network addresses."""
    catalog = _catalog()
    assert catalog == _catalog() and hash(catalog) == hash(_catalog())
    other_hosts = catalog.rebound((CLIENT, IP("8.8.8.8")), catalog.network_addresses)
    other_nets = catalog.rebound(catalog.host_ips, (LAN, Network("8.8.8.0", 24)))
    renamed = Catalog(("pc", "server@wan"), catalog.host_ips, catalog.networks, catalog.network_addresses,
                      catalog.services, catalog.data)
    assert catalog != other_hosts and catalog != other_nets and catalog != renamed
    assert catalog.__eq__("catalog") is NotImplemented
    assert catalog != "catalog"


def test_inconsistent_lengths_are_refused() -> None:
    """catalog.py: one entry per host slot and per network slot, said in the error."""
    with pytest.raises(ValueError) as info:
        Catalog(("a", "b"), (CLIENT,), (), (), ((), ()), ())
    assert str(info.value) == "hosts, host_ips and services must have one entry per host slot"
    with pytest.raises(ValueError) as info:
        Catalog(("a",), (CLIENT,), ("n1", "n2"), (LAN,), ((),), ())
    assert str(info.value) == "networks and network_addresses must have one entry per network slot"


def _with(key: str, value: Any) -> dict[str, Any]:
    wire = _wire()
    wire[key] = value
    return wire


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1], "catalog: expected a map, got list [1]"),
        (_with("version", 2), "catalog.version: expected 1, got int 2"),
        ({"hosts": []}, "catalog.version: expected 1, got NoneType None"),
        (_with("hosts", None), "catalog.hosts: expected a list, got NoneType None"),
        (_with("hosts", [["client"]]), "catalog.hosts[0]: expected a list of 2, got list ['client']"),
        (_with("hosts", [["client", "1.1.1.1"], "x"]), "catalog.hosts[1]: expected a list of 2, got str 'x'"),
        (_with("networks", {}), "catalog.networks: expected a list, got dict {}"),
        (_with("networks", [["n", "1.1.1.0"]]), "catalog.networks[0]: expected a list of 3, got list ['n', '1.1.1.0']"),
        (_with("services", "x"), "catalog.services: expected a list, got str 'x'"),
        (_with("services", [[]]), "catalog.services: expected 2 lists (one per host), got 1"),
        (_with("data", 7), "catalog.data: expected a list, got int 7"),
        (_with("data", [["o", "i"]]), "catalog.data[0]: expected a list of 3, got list ['o', 'i']"),
        (_with("hosts", [[5, "1.1.1.1"], ["s", "1.1.1.2"]]), "catalog.hosts: expected a string, got int 5"),
        (_with("hosts", [["", "1.1.1.1"], ["s", "1.1.1.2"]]), "catalog.hosts: expected a string, got str ''"),
        (_with("hosts", [["c", 7], ["s", "1.1.1.2"]]), "catalog.hosts: expected a string, got int 7"),
        (_with("hosts", [["c", "nope"], ["s", "1.1.1.2"]]),
         "catalog: expected a consistent catalog, got Invalid IP address provided: nope"),
        (_with("networks", [[None, "1.1.1.0", 24]]), "catalog.networks: expected a string, got NoneType None"),
        (_with("networks", [["n", "", 24]]), "catalog.networks: expected a string, got str ''"),
        (_with("networks", [["n", "1.1.1.0", True]]),
         "catalog.networks: expected a prefix length 0-128, got bool True"),
        (_with("networks", [["n", "1.1.1.0", "24"]]), "catalog.networks: expected a prefix length 0-128, got str '24'"),
        (_with("networks", [["n", "::", 129]]), "catalog.networks: expected a prefix length 0-128, got int 129"),
        (_with("networks", [["n", "1.1.1.0", -1]]), "catalog.networks: expected a prefix length 0-128, got int -1"),
        (_with("services", [[], 3]), "catalog.services[1]: expected a list, got int 3"),
        (_with("services", [[], [["ssh"]]]), "catalog.services[1][0]: expected a list of 4, got list ['ssh']"),
        (_with("services", [[["ssh", "p", "1", 1]], []]),
         "catalog.services[0]: expected is_local true or false, got int 1"),
        (_with("services", [[], [["", "p", "1", True]]]), "catalog.services[1]: expected a string, got str ''"),
        (_with("services", [[], [["ssh", None, "1", True]]]),
         "catalog.services[1]: expected a string, got NoneType None"),
        (_with("services", [[], [["ssh", "p", 1, True]]]), "catalog.services[1]: expected a string, got int 1"),
        (_with("data", [["", "id", "t"]]), "catalog.data: expected a string, got str ''"),
        (_with("data", [["o", "", "t"]]), "catalog.data: expected a string, got str ''"),
        (_with("data", [["o", "id", 3]]), "catalog.data: expected a string, got int 3"),
    ],
)
def test_malformed_catalog_is_refused_naming_the_field(value: Any, message: str) -> None:
    """PROTOCOL.md §3.3 / DESIGN §7: a malformed catalog is a ProtocolError naming the field,
    what was expected and what came."""
    with pytest.raises(ProtocolError) as info:
        Catalog.from_wire(value)
    assert str(info.value) == message


def test_field_prefix_and_edge_values() -> None:
    """catalog.py from_wire: the caller's field name prefixes errors; masks 0 and 128 and empty
    service type, version and data type are legal."""
    with pytest.raises(ProtocolError) as info:
        Catalog.from_wire(_with("hosts", "x"), field="reply.catalog")
    assert str(info.value) == "reply.catalog.hosts: expected a list, got str 'x'"
    wire = _with("networks", [["all", "0.0.0.0", 0], ["one", "::1", 128]])
    parsed = Catalog.from_wire(wire)
    assert parsed.network_addresses == (Network("0.0.0.0", 0), Network("::1", 128))
    assert parsed.services[0] == (SHELL,)
