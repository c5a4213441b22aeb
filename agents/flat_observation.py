"""Fixed-size observation vectors: what an agent knows, as floats in a stable layout.

A neural policy needs an input of one size whose index ``k`` always means the same
thing, in every episode and after every address remapping. The layout is built from a
:class:`~protocol.catalog.Catalog`'s *layout* (slot names, services, data), never from
addresses or discovery order, and every slot is described by an
:class:`ObservationSlot` ``(index, block, entity, field)`` so that users can see through
the vector (``ObservationLayout.to_json()``). Blocks, in order:

===============  ==============  ==================  ==============================================
block            entity          field               1.0 when
===============  ==============  ==================  ==============================================
``hosts``        host slot       ``known``           the host's address is in ``known_hosts``
``hosts``        host slot       ``controlled``      ... is in ``controlled_hosts``
``hosts``        host slot       ``blocked``         ... appears as a blocked IP in ``known_blocks``
``services``     host slot       service name        that service is in ``known_services[host]``
``data``         host slot       ``owner/id``        that datum is in ``known_data[host]``
``exfiltrated``  ``owner/id``    ``at_public_host``  the datum is known at a host on a public network
``networks``     network slot    ``known``           the network is in ``known_networks``
``progress``     ``episode``     ``step_fraction``   steps / max_steps (0 without a limit), in [0, 1]
===============  ==============  ==================  ==============================================

The ``hosts`` block lists every host slot for ``known``, then for ``controlled``, then
for ``blocked``; ``services`` follows host slots and each host's services in stored order;
``data`` is host-major over all data (the log file included). Entries of a state that
the catalog does not have (an address outside the world) are ignored.

The state part of a vector is computed once per (state, encoder, catalog) and kept on
the (immutable, shared) state; :meth:`FlatObservation.encode` returns a fresh copy with
the step fraction filled in.

>>> from protocol import IP, GameState, Network
>>> from protocol.catalog import Catalog
>>> catalog = Catalog(hosts=("a", "b"), host_ips=(IP("10.0.0.1"), IP("10.0.0.2")),
...                   networks=("10.0.0.0/24",), network_addresses=(Network("10.0.0.0", 24),),
...                   services=((), ()), data=())
>>> encoder = FlatObservation(ObservationLayout.of(catalog))
>>> vector = encoder.encode(GameState(controlled_hosts={IP("10.0.0.2")}, known_hosts={IP("10.0.0.2")}),
...                         catalog, steps=5, max_steps=10)
>>> [(slot.block, slot.entity, slot.field) for slot in encoder.layout.slots if vector[slot.index]]
[('hosts', 'b', 'known'), ('hosts', 'b', 'controlled'), ('progress', 'episode', 'step_fraction')]
>>> float(vector[-1])
0.5
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .extras import needs

with needs("FlatObservation (agents.flat_observation)", "rl"):
    import numpy as np

from protocol import Data, GameState
from protocol.catalog import Catalog

from .action_masks import per_state

__all__ = ["BLOCKS", "FlatObservation", "ObservationLayout", "ObservationSlot", "datum_label"]

#: The blocks of the vector, in order.
BLOCKS: tuple[str, ...] = ("hosts", "services", "data", "exfiltrated", "networks", "progress")
_HOST_FIELDS = ("known", "controlled", "blocked")


def datum_label(datum: Data) -> str:
    """How a datum is named in layouts and action labels: ``owner/id``."""
    return f"{datum.owner}/{datum.id}"


@attrs.frozen
class ObservationSlot:
    """One index of the vector: which block, which entity (a host or network slot name, a
    datum's ``owner/id``), which field."""

    index: int
    block: str
    entity: str
    field: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "block": self.block, "entity": self.entity, "field": self.field}


@attrs.frozen(eq=False)
class ObservationLayout:
    """The slots of a catalog layout's vector. Equal for equal layouts, whatever the
    addresses: two episodes of one scenario, or one before and after remapping."""

    source: tuple[Any, ...] = attrs.field(repr=False)   # the Catalog.layout it was built from
    slots: tuple[ObservationSlot, ...] = attrs.field(repr=False)
    #: block name -> (start, stop) of its indices
    blocks: dict[str, tuple[int, int]]

    @classmethod
    def of(cls, catalog: Catalog) -> ObservationLayout:
        """The layout of ``catalog``'s scenario (cached per layout)."""
        source = catalog.layout
        cached = _LAYOUTS.get(source)
        if cached is not None:
            return cached
        hosts, networks, services, data = source
        rows: list[tuple[str, str, str]] = []
        for field in _HOST_FIELDS:
            rows += [("hosts", host, field) for host in hosts]
        for host, host_services in zip(hosts, services, strict=True):
            rows += [("services", host, name) for name in _service_names(host_services)]
        rows += [("data", host, datum_label(datum)) for host in hosts for datum in data]
        rows += [("exfiltrated", datum_label(datum), "at_public_host") for datum in data]
        rows += [("networks", network, "known") for network in networks]
        rows.append(("progress", "episode", "step_fraction"))
        slots = tuple(ObservationSlot(index, *row) for index, row in enumerate(rows))
        blocks: dict[str, tuple[int, int]] = {}
        start = 0
        for block in BLOCKS:  # every block, empty ones too (a scenario without data, say)
            stop = start + sum(1 for row in rows if row[0] == block)
            blocks[block] = (start, stop)
            start = stop
        layout = cls(source, slots, blocks)
        if len(_LAYOUTS) > 64:
            _LAYOUTS.clear()
        _LAYOUTS[source] = layout
        return layout

    def __len__(self) -> int:
        return len(self.slots)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObservationLayout):
            return NotImplemented
        return self.slots == other.slots

    def __hash__(self) -> int:
        return hash(self.slots)

    def index(self, block: str, entity: str, field: str) -> int:
        """The index of a slot; KeyError naming it otherwise.

        >>> from protocol import IP, Network
        >>> catalog = Catalog(hosts=("a",), host_ips=(IP("10.0.0.1"),), networks=("10.0.0.0/24",),
        ...                   network_addresses=(Network("10.0.0.0", 24),), services=((),), data=())
        >>> ObservationLayout.of(catalog).index("networks", "10.0.0.0/24", "known")
        3
        """
        for slot in self.slots:
            if slot.block == block and slot.entity == entity and slot.field == field:
                return slot.index
        raise KeyError(f"no observation slot ({block!r}, {entity!r}, {field!r})")

    def as_list(self) -> list[dict[str, Any]]:
        return [slot.as_dict() for slot in self.slots]

    def to_json(self) -> str:
        """``{"size": n, "blocks": {name: [start, stop]}, "slots": [{index, block, entity, field}]}``."""
        return json.dumps({"size": len(self), "blocks": {k: list(v) for k, v in self.blocks.items()},
                           "slots": self.as_list()})


_LAYOUTS: dict[tuple[Any, ...], ObservationLayout] = {}


def _service_names(services: tuple[Any, ...]) -> list[str]:
    """Service names of one host, made unique within it (``name#2`` for a repeat)."""
    seen: dict[str, int] = {}
    names = []
    for service in services:
        count = seen[service.name] = seen.get(service.name, 0) + 1
        names.append(service.name if count == 1 else f"{service.name}#{count}")
    return names


class FlatObservation:
    """Encodes states into :attr:`layout`'s float32 vectors (see the module docstring)."""

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        self.size = len(layout)
        hosts, _, services, data = layout.source
        self._data_count = len(data)
        self._known, _ = layout.blocks["hosts"]
        self._controlled = self._known + len(hosts)
        self._blocked = self._controlled + len(hosts)
        start = layout.blocks["services"][0]
        self._service_offsets: list[dict[Any, int]] = []
        for host_services in services:
            self._service_offsets.append({service: start + k for k, service in enumerate(host_services)})
            start += len(host_services)
        self._data = layout.blocks["data"][0]
        self._exfiltrated = layout.blocks["exfiltrated"][0]
        self._networks = layout.blocks["networks"][0]

    def _check(self, catalog: Catalog) -> None:
        if catalog.layout is not self.layout.source and catalog.layout != self.layout.source:
            raise ValueError("the catalog's layout is not the one this encoder was built for")

    def state_vector(self, state: GameState, catalog: Catalog) -> np.ndarray:
        """The vector of ``state`` with the step fraction 0 (read-only, cached on the state)."""
        return per_state(state, "arena.flat", self, catalog, lambda: self._compute(state, catalog))

    def encode(self, state: GameState, catalog: Catalog, *, steps: int = 0, max_steps: int | None = None,
               ) -> np.ndarray:
        """A new float32 vector for ``state`` after ``steps`` of at most ``max_steps``."""
        vector = self.state_vector(state, catalog).copy()
        vector[-1] = step_fraction(steps, max_steps)
        return vector

    def _compute(self, state: GameState, catalog: Catalog) -> np.ndarray:
        self._check(catalog)
        vector = np.zeros(self.size, dtype=np.float32)
        slot_of = catalog.host_slot
        for ip in state.known_hosts:
            slot = slot_of(ip)
            if slot is not None:
                vector[self._known + slot] = 1.0
        for ip in state.controlled_hosts:
            slot = slot_of(ip)
            if slot is not None:
                vector[self._controlled + slot] = 1.0
        for blocked in state.known_blocks.values():
            for ip in blocked:
                slot = slot_of(ip)
                if slot is not None:
                    vector[self._blocked + slot] = 1.0
        for ip, services in state.known_services.items():
            slot = slot_of(ip)
            if slot is None:
                continue
            offsets = self._service_offsets[slot]
            for service in services:
                index = offsets.get(service)
                if index is not None:
                    vector[index] = 1.0
        data_slot = catalog.data_slot
        for ip, data in state.known_data.items():
            slot = slot_of(ip)
            if slot is None:
                continue
            base = self._data + slot * self._data_count
            public = catalog.is_public(slot)
            for datum in data:
                index = data_slot(datum)
                if index is not None:
                    vector[base + index] = 1.0
                    if public:
                        vector[self._exfiltrated + index] = 1.0
        network_slot = catalog.network_slot
        for network in state.known_networks:
            index = network_slot(network)
            if index is not None:
                vector[self._networks + index] = 1.0
        vector.setflags(write=False)
        return vector


def step_fraction(steps: int, max_steps: int | None) -> float:
    """``steps / max_steps`` clipped to [0, 1]; 0 when there is no step limit."""
    if not max_steps:
        return 0.0
    return min(1.0, max(0.0, steps / max_steps))
