"""Fixed action tables (protocol/action_table.py): role tables from any role spelling, one action
object per entry and catalog, the refusal of a foreign catalog, upstream's ``blocked_ip`` key,
and no index for actions whose parameters are not table components.

Reference netsecgame.md §7.1 (WhiteBox's ``all_actions``, its ``blocked_ip`` key) and the
module docstring of protocol/action_table.py (index ``i`` means the same action in every episode).
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import IP, Action, ActionType, AgentRole, Data, Network, Service
from protocol.action_table import TABLE_ORDER, ActionTable
from protocol.catalog import Catalog

A, B = IP("10.0.0.1"), IP("10.0.0.2")
NET = Network("10.0.0.0", 24)
SSH = Service("ssh", "ssh", "1", False)
SECRET = Data("u", "secret")


def small_catalog(first: IP = A, second: IP = B) -> Catalog:
    """Two host slots (b runs ssh), one network, one datum: the module docstring's example."""
    return Catalog(hosts=("a", "b"), host_ips=(first, second), networks=("10.0.0.0/24",),
                   network_addresses=(NET,), services=((), (SSH,)), data=(SECRET,))


@pytest.mark.parametrize("role", ["Defender", "defender", "AgentRole.Defender", AgentRole.Defender])
def test_for_role_accepts_every_spelling_of_a_defender(role: Any) -> None:
    """action_table.ActionTable.for_role: a role by member or by name in any case (AgentRole's
    parsing) gives the defender's table, all six types with BlockIP."""
    table = ActionTable.for_role(small_catalog(), role)
    assert table.action_types == TABLE_ORDER
    assert table.counts() == {"ScanNetwork": 2, "FindServices": 4, "ExploitService": 2, "FindData": 4,
                              "ExfiltrateData": 4, "BlockIP": 8}


@pytest.mark.parametrize("role", ["attacker", "BENIGN", AgentRole.Attacker, AgentRole.Benign])
def test_for_role_leaves_blocks_out_for_attackers_and_benign(role: Any) -> None:
    """action_table.ActionTable.for_role: attackers and benign agents get the first five types."""
    table = ActionTable.for_role(small_catalog(), role)
    assert table.action_types == TABLE_ORDER[:5]
    assert len(table) == 16 and table.labels[0] == "ScanNetwork a -> 10.0.0.0/24"


def test_for_role_refuses_an_unknown_role() -> None:
    """action_table.ActionTable.for_role: an unknown role name is AgentRole's ValueError."""
    with pytest.raises(ValueError, match=r"^Invalid AgentRole: Spectator$"):
        ActionTable.for_role(small_catalog(), "Spectator")
    with pytest.raises(ValueError, match="7"):  # a value that is no role at all is named too
        ActionTable.for_role(small_catalog(), 7)  # type: ignore[arg-type]


def test_table_with_scan_network_alone_starts_at_zero() -> None:
    """action_table.ActionTable: a table of chosen types keeps table order and numbers from 0."""
    table = ActionTable(small_catalog(), [ActionType.FindData, ActionType.ScanNetwork])
    assert table.action_types == (ActionType.ScanNetwork, ActionType.FindData)
    assert table.labels == ("ScanNetwork a -> 10.0.0.0/24", "ScanNetwork b -> 10.0.0.0/24",
                            "FindData a -> a", "FindData a -> b", "FindData b -> a", "FindData b -> b")


def test_an_entry_is_one_object_per_catalog() -> None:
    """action_table.ActionTable.action: "the same object on every call for one catalog" (its
    docstring); another binding of the layout gives that binding's addresses."""
    catalog = small_catalog()
    table = ActionTable.for_role(catalog, AgentRole.Defender)
    for index in range(len(table)):
        assert table.action(index, catalog) is table.action(index, catalog)
    assert table.all_actions(catalog)[5] is table.action(5, catalog)
    moved = small_catalog(IP("172.16.0.5"), IP("172.16.0.6"))
    assert table.action(0, moved) == Action(ActionType.ScanNetwork,
                                            {"source_host": IP("172.16.0.5"), "target_network": NET})
    assert table.action(0, moved) is table.action(0, moved)
    assert table.action(0, catalog).parameters["source_host"] == A


def test_a_catalog_of_another_layout_is_refused() -> None:
    """action_table.ActionTable.action: a catalog whose layout differs (other slots, services or
    data) is refused with one clear line rather than producing wrong actions."""
    table = ActionTable.for_role(small_catalog(), AgentRole.Attacker)
    other = Catalog(hosts=("a", "c"), host_ips=(A, B), networks=("10.0.0.0/24",), network_addresses=(NET,),
                    services=((), (SSH,)), data=(SECRET,))
    with pytest.raises(ValueError) as caught:
        table.action(0, other)
    assert str(caught.value) == "the catalog's layout is not the one this table was built from"
    equal_layout = small_catalog(IP("10.9.9.1"), IP("10.9.9.2"))
    assert table.action(0, equal_layout).parameters["source_host"] == IP("10.9.9.1")


def test_upstream_blocked_ip_key_finds_the_block() -> None:
    """action_table.ActionTable.index_of: a BlockIP written with upstream WhiteBox's key
    ``blocked_ip`` (reference §7.1, §12) has the index of the ``blocked_host`` entry."""
    catalog = small_catalog()
    table = ActionTable.for_role(catalog, AgentRole.Defender)
    for blocked in (A, B):
        ours = Action(ActionType.BlockIP, {"source_host": A, "target_host": B, "blocked_host": blocked})
        upstream = Action(ActionType.BlockIP, {"source_host": A, "target_host": B, "blocked_ip": blocked})
        index = table.index_of(ours, catalog)
        assert index is not None and table.action(index, catalog) == ours
        assert table.index_of(upstream, catalog) == index
        assert table.indices([upstream], catalog) == [index]
    outside = Action(ActionType.BlockIP, {"source_host": A, "target_host": B, "blocked_ip": IP("10.0.0.9")})
    assert table.index_of(outside, catalog) is None


@pytest.mark.parametrize(("kind", "parameters"), [
    (ActionType.ScanNetwork, {"source_host": A, "target_network": ["10.0.0.0", 24]}),
    (ActionType.FindData, {"source_host": A, "target_host": {"ip": "10.0.0.2"}}),
    (ActionType.ExfiltrateData, {"source_host": A, "target_host": B, "data": ["u", "secret"]}),
    (ActionType.BlockIP, {"source_host": A, "target_host": B, "blocked_host": ["10.0.0.1"]}),
    (ActionType.ExploitService, {"source_host": A, "target_host": B, "target_service": "ssh"}),
])
def test_actions_with_raw_parameters_have_no_index(kind: ActionType, parameters: dict[str, Any]) -> None:
    """action_table.ActionTable.index_of / indices: a target that is not a component (a raw
    list or dict, as an unvalidated action may carry) is no entry of the table: None, never an
    exception, so a mask can be built from any list of actions."""
    catalog = small_catalog()
    table = ActionTable.for_role(catalog, AgentRole.Defender)
    action = Action(kind, parameters)
    assert table.index_of(action, catalog) is None
    assert table.indices([action, table.action(3, catalog)], catalog) == [3]
