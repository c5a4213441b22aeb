"""Action masks against the valid actions written out by hand from NetSecGame's generator
rule (reference netsecgame.md §10.3, as ``agents/utils.py::_valid_actions`` states it;
README "RL environments": "Masks are exactly NetSecGame's valid actions, blocks for
defenders, that the table has"), by action label.

Rule, for each controlled host c (B[x] = the hosts x knows as blocked): ScanNetwork(c, n)
per known network; FindServices(c, h) per known host h not in B[c]; ExploitService(c, h,
s) per known service s of h, h not in B[c]; FindData(h, h) per controlled h;
ExfiltrateData(src, t, d) per datum d known at src and controlled t != src not in
B[src]; defenders only: BlockIP(s, t, b) for controlled s, t not in B[s], known host b."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from agents.action_masks import ActionMasks
from protocol import IP, AgentRole, Data, GameState, Network, Service
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

SSH = Service("ssh", "ssh", "1", False)
SECRET = Data("User1", "secret")
NET = Network("10.0.0.0", 24)
A, B, C = IP("10.0.0.1"), IP("10.0.0.2"), IP("10.0.0.3")


def _catalog(ips: tuple[IP, IP, IP] = (A, B, C)) -> Catalog:
    """Hosts a, b (ssh), c on one network; one datum. A fresh tag keeps the network's slot
    name unique to this test run."""
    return Catalog(hosts=("a", "b", "c"), host_ips=ips, networks=(f"lan-{uuid.uuid4().hex[:8]}",),
                   network_addresses=(NET,), services=((), (SSH,), ()), data=(SECRET,))


def _state() -> GameState:
    """a and c controlled, b known with ssh, the secret at a, b blocked for a."""
    return GameState(controlled_hosts={A, C}, known_hosts={A, B, C}, known_services={B: {SSH}},
                     known_data={A: {SECRET}}, known_networks={NET}, known_blocks={A: {B}})


def _attacker_labels(lan: str) -> list[str]:
    """The rule applied to :func:`_state` by hand, in table order."""
    return [
        f"ScanNetwork a -> {lan}", f"ScanNetwork c -> {lan}",
        "FindServices a -> a", "FindServices a -> c",            # a -> b: b is blocked for a
        "FindServices c -> a", "FindServices c -> b", "FindServices c -> c",
        "ExploitService c -> b ssh",
        "FindData a -> a", "FindData c -> c",
        "ExfiltrateData a -> c User1/secret",
    ]


BLOCKS = [f"BlockIP {s} -> {t} blocks {b}" for s in "ac" for t in "ac" for b in "abc"]


def _labels(masks: ActionMasks, state: GameState, catalog: Catalog) -> list[str]:
    return [masks.table.labels[i] for i in masks.valid_indices(state, catalog)]


def test_attacker_mask_is_the_generator_rule() -> None:
    """reference §10.3: an attacker's mask is exactly the valid actions (no BlockIP)."""
    catalog = _catalog()
    masks = ActionMasks(ActionTable.for_role(catalog, "Attacker"), "Attacker")
    mask = masks.mask(_state(), catalog)
    assert mask.dtype == bool and mask.shape == (len(masks.table),)
    assert [masks.table.labels[i] for i in np.flatnonzero(mask)] == _attacker_labels(catalog.networks[0])
    assert _labels(masks, _state(), catalog) == _attacker_labels(catalog.networks[0])


def test_nothing_is_valid_without_a_controlled_host() -> None:
    """reference §10.3: nothing is generated when no host is controlled."""
    catalog = _catalog()
    masks = ActionMasks(ActionTable.for_role(catalog, "Defender"), "Defender")
    state = GameState(known_hosts={A, B}, known_networks={NET})
    assert not masks.mask(state, catalog).any() and masks.valid_indices(state, catalog).tolist() == []


@pytest.mark.parametrize("role", ["Defender", "defender", "AgentRole.Defender", AgentRole.Defender])
def test_defender_masks_include_blocks(role: AgentRole | str) -> None:
    """ActionMasks: defenders' valid actions include BlockIP (any spelling of the role)."""
    catalog = _catalog()
    masks = ActionMasks(ActionTable.for_role(catalog, "Defender"), role)
    assert masks.role is AgentRole.Defender
    assert _labels(masks, _state(), catalog) == _attacker_labels(catalog.networks[0]) + BLOCKS


@pytest.mark.parametrize("role", ["Attacker", "benign", AgentRole.Attacker, AgentRole.Benign])
def test_other_roles_get_no_blocks_even_in_a_table_with_them(role: AgentRole | str) -> None:
    """ActionMasks: everyone but defenders is offered no BlockIP (NetSecGame's generator)."""
    catalog = _catalog()
    masks = ActionMasks(ActionTable.for_role(catalog, "Defender"), role)
    assert masks.role is AgentRole.from_string(str(role))
    assert _labels(masks, _state(), catalog) == _attacker_labels(catalog.networks[0])


def test_an_unknown_role_is_refused() -> None:
    catalog = _catalog()
    with pytest.raises(ValueError):
        ActionMasks(ActionTable.for_role(catalog, "Defender"), "Spectator")


def test_masks_of_two_roles_over_one_table_do_not_share_a_cache() -> None:
    """The cache is per (state, masks, catalog): an attacker's and a defender's masks over the
    same table and state stay their own, whichever is read first."""
    catalog = _catalog()
    table = ActionTable.for_role(catalog, "Defender")
    attacker, defender = ActionMasks(table, "Attacker"), ActionMasks(table, "Defender")
    state = _state()
    lan = catalog.networks[0]
    assert _labels(attacker, state, catalog) == _attacker_labels(lan)
    assert _labels(defender, state, catalog) == _attacker_labels(lan) + BLOCKS
    state = _state()
    assert int(attacker.mask(state, catalog).sum()) == 11
    assert int(defender.mask(state, catalog).sum()) == 11 + 12


def test_masks_follow_the_catalog_binding() -> None:
    """One state read through two bindings of the same layout (a remapping: a and b swap
    addresses) gives each binding's mask, not the one computed first."""
    catalog = _catalog()
    swapped = catalog.rebound((B, A, C), (NET,))
    masks = ActionMasks(ActionTable.for_role(catalog, "Attacker"), "Attacker")
    state = GameState(controlled_hosts={A}, known_hosts={A}, known_networks={NET})
    lan = catalog.networks[0]
    assert _labels(masks, state, catalog) == [f"ScanNetwork a -> {lan}", "FindServices a -> a", "FindData a -> a"]
    assert _labels(masks, state, swapped) == [f"ScanNetwork b -> {lan}", "FindServices b -> b", "FindData b -> b"]
    assert masks.mask(state, swapped).tolist() != masks.mask(state, catalog).tolist()


def test_masks_and_indices_are_cached_and_read_only() -> None:
    """Module docstring: computed once per (state, table, catalog), kept on the state; read-only."""
    catalog = _catalog()
    masks = ActionMasks(ActionTable.for_role(catalog, "Attacker"), "Attacker")
    state = _state()
    mask, indices = masks.mask(state, catalog), masks.valid_indices(state, catalog)
    assert masks.mask(state, catalog) is mask and masks.valid_indices(state, catalog) is indices
    assert not mask.flags.writeable and not indices.flags.writeable
    assert indices.tolist() == np.flatnonzero(mask).tolist()
