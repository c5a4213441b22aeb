"""The flat observation's layout and vectors against a layout and vectors written out by
hand from the rules of ``agents/flat_observation.py``'s module docstring (the block table)
and README "RL environments" ("Observations: ... hosts known / controlled / blocked,
services, data per host, data exfiltrated to a public host, networks, the step fraction").

Every test builds a scenario never seen before (a fresh tag in its host names): layouts
are cached per scenario layout, and a new layout is what has to be built right."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest

from agents.action_masks import per_state
from agents.flat_observation import BLOCKS, FlatObservation, ObservationLayout, ObservationSlot
from protocol import IP, Data, GameState, Network, Service
from protocol.catalog import Catalog

SSH1 = Service("ssh", "ssh", "1", False)
HTTP = Service("http", "http", "2", False)
SSH2 = Service("ssh", "ssh", "2", False)
SSH3 = Service("ssh", "ssh", "3", True)
DB = Data("User1", "db")
LOG = Data("logs", "logfile")
NETS = (Network("10.0.0.0", 24), Network("200.0.0.0", 24))
IPS = (IP("10.0.0.1"), IP("10.0.0.2"), IP("200.0.0.3"))   # the third host is on a public network


def _names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"client-{tag}", f"server-{tag}", f"outside-{tag}"


def _catalog(names: tuple[str, str, str], ips: tuple[IP, ...] = IPS) -> Catalog:
    """client (no services), server (ssh, http, ssh again, ssh a third time), outside (http)."""
    return Catalog(hosts=names, host_ips=ips, networks=("10.0.0.0/24", "200.0.0.0/24"),
                   network_addresses=NETS, services=((), (SSH1, HTTP, SSH2, SSH3), (HTTP,)),
                   data=(DB, LOG))


def _expected_rows(names: tuple[str, str, str]) -> list[tuple[str, str, str]]:
    """The layout written out by hand: hosts field-major, services host-major with repeats
    numbered ``name#k``, data host-major, exfiltrated per datum, networks, progress."""
    c, s, o = names
    return [
        ("hosts", c, "known"), ("hosts", s, "known"), ("hosts", o, "known"),
        ("hosts", c, "controlled"), ("hosts", s, "controlled"), ("hosts", o, "controlled"),
        ("hosts", c, "blocked"), ("hosts", s, "blocked"), ("hosts", o, "blocked"),
        ("services", s, "ssh"), ("services", s, "http"), ("services", s, "ssh#2"), ("services", s, "ssh#3"),
        ("services", o, "http"),
        ("data", c, "User1/db"), ("data", c, "logs/logfile"),
        ("data", s, "User1/db"), ("data", s, "logs/logfile"),
        ("data", o, "User1/db"), ("data", o, "logs/logfile"),
        ("exfiltrated", "User1/db", "at_public_host"), ("exfiltrated", "logs/logfile", "at_public_host"),
        ("networks", "10.0.0.0/24", "known"), ("networks", "200.0.0.0/24", "known"),
        ("progress", "episode", "step_fraction"),
    ]


EXPECTED_BLOCKS = {"hosts": (0, 9), "services": (9, 14), "data": (14, 20), "exfiltrated": (20, 22),
                   "networks": (22, 24), "progress": (24, 25)}


def test_layout_slots_and_blocks_are_the_documented_order() -> None:
    """flat_observation docstring: blocks in order; every slot (index, block, entity, field)."""
    names = _names()
    layout = ObservationLayout.of(_catalog(names))
    rows = _expected_rows(names)
    assert [(s.index, s.block, s.entity, s.field) for s in layout.slots] == [
        (i, *row) for i, row in enumerate(rows)]
    assert all(type(slot.index) is int for slot in layout.slots)
    assert len(layout) == 25
    assert layout.blocks == EXPECTED_BLOCKS
    assert list(layout.blocks) == list(BLOCKS)
    assert layout.source == _catalog(names).layout


def test_layout_json_names_every_index() -> None:
    """README: ``env.observation_layout`` names every index (``to_json()``): size, blocks, slots."""
    names = _names()
    layout = ObservationLayout.of(_catalog(names))
    assert json.loads(layout.to_json()) == {
        "size": 25,
        "blocks": {name: list(span) for name, span in EXPECTED_BLOCKS.items()},
        "slots": [{"index": i, "block": b, "entity": e, "field": f}
                  for i, (b, e, f) in enumerate(_expected_rows(names))],
    }
    assert ObservationSlot(3, "networks", "n", "known").as_dict() == {
        "index": 3, "block": "networks", "entity": "n", "field": "known"}


def test_empty_blocks_are_listed_with_empty_spans() -> None:
    """Docstring: every block, empty ones too (a scenario without services or data)."""
    names = _names()
    catalog = Catalog(hosts=names[:2], host_ips=IPS[:2], networks=("10.0.0.0/24",),
                      network_addresses=NETS[:1], services=((), ()), data=())
    layout = ObservationLayout.of(catalog)
    assert layout.blocks == {"hosts": (0, 6), "services": (6, 6), "data": (6, 6), "exfiltrated": (6, 6),
                             "networks": (6, 7), "progress": (7, 8)}
    assert [(s.block, s.entity, s.field) for s in layout.slots[5:]] == [
        ("hosts", names[1], "blocked"), ("networks", "10.0.0.0/24", "known"),
        ("progress", "episode", "step_fraction")]


def test_layout_is_cached_and_equal_whatever_the_addresses() -> None:
    """ObservationLayout: equal for equal layouts whatever the addresses; ``of`` caches per layout."""
    names = _names()
    layout = ObservationLayout.of(_catalog(names))
    rebound = _catalog(names, (IPS[1], IPS[0], IP("200.0.0.9")))
    assert ObservationLayout.of(rebound) is layout
    copy = ObservationLayout(rebound.layout, layout.slots, dict(layout.blocks))
    assert copy == layout and hash(copy) == hash(layout)
    other = ObservationLayout.of(_catalog(_names()))
    assert other != layout and (other == layout) is False
    assert (layout == "layout") is False and layout != 7


def test_index_finds_a_slot_or_names_the_missing_one() -> None:
    """ObservationLayout.index: the slot's index; KeyError naming it otherwise."""
    names = _names()
    layout = ObservationLayout.of(_catalog(names))
    assert layout.index("services", names[1], "ssh#3") == 12
    assert layout.index("exfiltrated", "logs/logfile", "at_public_host") == 21
    with pytest.raises(KeyError) as error:
        layout.index("services", names[0], "ssh")
    assert error.value.args == (f"no observation slot ('services', {names[0]!r}, 'ssh')",)


def _state() -> GameState:
    """Addresses outside the world come first in every map (they are skipped, not the end)."""
    outside = IP("8.8.8.8")
    return GameState(
        controlled_hosts={IPS[0], IP("9.9.9.9")},
        known_hosts={IPS[0], IPS[1], outside},
        known_services={outside: {SSH1}, IPS[1]: {SSH2, HTTP, Service("ftp", "ftp", "1", False)}},
        known_data={outside: {DB}, IPS[1]: {DB}, IPS[2]: {LOG}, IPS[0]: {Data("someone", "else")}},
        known_networks={NETS[0], Network("172.16.0.0", 16)},
        known_blocks={IPS[0]: {IPS[1], IP("7.7.7.7")}},
    )


def _ones(names: tuple[str, str, str]) -> set[tuple[str, str, str]]:
    """What :func:`_state` knows, slot by slot (docstring table, '1.0 when')."""
    c, s, o = names
    return {("hosts", c, "known"), ("hosts", s, "known"), ("hosts", c, "controlled"),
            ("hosts", s, "blocked"), ("services", s, "http"), ("services", s, "ssh#2"),
            ("data", s, "User1/db"), ("data", o, "logs/logfile"),
            ("exfiltrated", "logs/logfile", "at_public_host"),   # known at the public host only
            ("networks", "10.0.0.0/24", "known")}


def _vector(names: tuple[str, str, str], ones: set[tuple[str, str, str]], fraction: float) -> list[float]:
    rows = _expected_rows(names)
    return [fraction if row[0] == "progress" else float(row in ones) for row in rows]


def test_encode_sets_exactly_what_the_state_knows() -> None:
    """Docstring table: 1.0 per known host / controlled / blocked / service / datum / public
    datum / network; addresses outside the world ignored; step fraction last."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    assert encoder.size == 25
    vector = encoder.encode(_state(), catalog, steps=5, max_steps=20)
    assert vector.dtype == np.float32
    assert vector.tolist() == _vector(names, _ones(names), 0.25)
    assert encoder.state_vector(_state(), catalog).tolist() == _vector(names, _ones(names), 0.0)


def test_empty_state_is_all_zeros() -> None:
    """Nothing known: only zeros (and the step fraction)."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    assert encoder.encode(GameState(), catalog).tolist() == [0.0] * 25


def test_each_service_slot_follows_its_own_service() -> None:
    """Docstring: ``services`` follows host slots and each host's services in stored order."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    for service, field in ((SSH1, "ssh"), (HTTP, "http"), (SSH2, "ssh#2"), (SSH3, "ssh#3")):
        state = GameState(known_services={IPS[1]: {service}}, known_data={IPS[0]: {DB, LOG}})
        ones = {("services", names[1], field), ("data", names[0], "User1/db"), ("data", names[0], "logs/logfile")}
        assert encoder.encode(state, catalog).tolist() == _vector(names, ones, 0.0), field
    state = GameState(known_services={IPS[2]: {HTTP}}, known_blocks={IPS[1]: {IPS[2]}})
    ones = {("services", names[2], "http"), ("hosts", names[2], "blocked")}
    assert encoder.encode(state, catalog).tolist() == _vector(names, ones, 0.0)


@pytest.mark.parametrize(("steps", "max_steps", "fraction"), [
    (5, 10, 0.5), (0, 10, 0.0), (10, 10, 1.0), (15, 10, 1.0), (-3, 10, 0.0), (7, None, 0.0), (7, 0, 0.0)])
def test_step_fraction_is_clipped_and_zero_without_a_limit(steps: int, max_steps: int | None,
                                                           fraction: float) -> None:
    """Docstring: ``progress`` = steps / max_steps (0 without a limit), in [0, 1]."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    assert encoder.encode(GameState(), catalog, steps=steps, max_steps=max_steps)[-1] == pytest.approx(fraction)


def test_steps_default_to_zero() -> None:
    """``encode(..., steps=0)`` by default: a fresh episode's fraction is 0."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    assert encoder.encode(GameState(), catalog, max_steps=10)[-1] == 0.0


def test_state_vector_is_cached_read_only_and_encode_copies() -> None:
    """Docstring: the state part is computed once per (state, encoder, catalog), kept on the
    state; ``encode`` returns a fresh copy with the step fraction filled in."""
    names = _names()
    catalog = _catalog(names)
    encoder = FlatObservation(ObservationLayout.of(catalog))
    state = _state()
    cached = encoder.state_vector(state, catalog)
    assert encoder.state_vector(state, catalog) is cached and not cached.flags.writeable
    vector = encoder.encode(state, catalog, steps=1, max_steps=2)
    vector[0] = 0.0
    assert vector.flags.writeable and cached[0] == 1.0 and cached[-1] == 0.0


def test_cached_vectors_are_per_catalog_binding() -> None:
    """One state read through two bindings of the same layout (remapped addresses) gives each
    binding's vector, not the one computed first."""
    names = _names()
    catalog = _catalog(names)
    swapped = _catalog(names, (IPS[1], IPS[0], IPS[2]))
    encoder = FlatObservation(ObservationLayout.of(catalog))
    state = GameState(controlled_hosts={IPS[0]}, known_hosts={IPS[0]})
    assert encoder.state_vector(state, catalog).tolist() == _vector(
        names, {("hosts", names[0], "known"), ("hosts", names[0], "controlled")}, 0.0)
    assert encoder.state_vector(state, swapped).tolist() == _vector(
        names, {("hosts", names[1], "known"), ("hosts", names[1], "controlled")}, 0.0)


def test_an_encoder_refuses_another_layouts_catalog() -> None:
    """FlatObservation: a catalog of another layout is a ValueError (even for a state whose
    vector another encoder already computed for that catalog)."""
    names = _names()
    catalog = _catalog(names)
    other = FlatObservation(ObservationLayout.of(_catalog(_names())))
    encoder = FlatObservation(ObservationLayout.of(catalog))
    state = _state()
    encoder.state_vector(state, catalog)
    for call in (lambda: other.state_vector(state, catalog), lambda: other.encode(GameState(), catalog)):
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value) == "the catalog's layout is not the one this encoder was built for"
    equal = _catalog(names, (IPS[0], IPS[1], IP("200.0.0.7")))   # equal layout, another object
    assert equal.layout is not catalog.layout
    assert encoder.encode(GameState(known_hosts={IP("200.0.0.7")}), equal)[2] == 1.0


def test_per_state_computes_once_per_owner_and_catalog() -> None:
    """per_state: ``compute()`` once per (state, owner, catalog), kept on the state."""
    names = _names()
    catalog, swapped = _catalog(names), _catalog(names, (IPS[1], IPS[0], IPS[2]))
    state = GameState()
    calls: list[Any] = []

    def read(owner: object, where: Catalog) -> object:
        return per_state(state, "test.rl", owner, where, lambda: calls.append((owner, where)) or len(calls))

    first, second = object(), object()
    assert [read(first, catalog), read(second, catalog), read(first, catalog), read(second, catalog)] == [1, 2, 1, 2]
    assert [read(first, swapped), read(first, catalog), read(first, swapped)] == [3, 1, 3]
    assert len(calls) == 3


def test_per_state_keeps_a_bounded_number_of_entries() -> None:
    """per_state: one state keeps at most ``_PER_STATE_LIMIT`` (8) entries per slot; the
    ninth owner starts the slot afresh."""
    catalog = _catalog(_names())
    state = GameState()
    calls: list[object] = []
    owners = [object() for _ in range(9)]

    def read(owner: object) -> object:
        return per_state(state, "test.bounded", owner, catalog, lambda: calls.append(owner) or owner)

    for owner in owners[:8]:
        read(owner)
    for owner in owners[:8]:
        assert read(owner) is owner
    assert len(calls) == 8
    read(owners[8])
    assert read(owners[0]) is owners[0] and len(calls) == 10
