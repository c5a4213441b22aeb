"""Fixed action tables: every concrete action of a scenario, numbered once and for all.

NetSecGame's WhiteBox world (reference netsecgame.md §7.1) lists all concrete actions of
a world in a fixed order; an RL policy with a ``Discrete(n)`` head needs exactly that.
An :class:`ActionTable` is that list built from a :class:`~protocol.catalog.Catalog`'s
*layout* (slot names, services, data), so index ``i`` means the same action in every
episode and after every address remapping; the catalog's current binding turns an entry
into a concrete :class:`~protocol.action.Action`. Order, for each action type in turn:

1. ``ScanNetwork``: for every source host slot, every network slot;
2. ``FindServices``: for every (source, target) host slot pair;
3. ``ExploitService``: for every source, every target with services, each of its
   services in stored order (local ones included);
4. ``FindData``: for every (source, target) pair;
5. ``ExfiltrateData``: for every (source, target) pair, every datum (log file included);
6. ``BlockIP``: for every (source, target) pair, every blocked host, with the parameter
   key ``blocked_host`` (upstream's WhiteBox wrote ``blocked_ip``, which its world does
   not read: reference §7.1, §12).

Host slots come in the order of the scenario's original IPs sorted as strings, so on an
unremapped world with all six types the table is upstream's ``all_actions``, entry for
entry. A role's default table (:meth:`ActionTable.for_role`) leaves out BlockIP for
attackers and benign agents, which NetSecGame's valid-action generator never offers them.

>>> from protocol.catalog import Catalog
>>> catalog = Catalog(hosts=("a", "b"), host_ips=(IP("10.0.0.1"), IP("10.0.0.2")),
...                   networks=("10.0.0.0/24",), network_addresses=(Network("10.0.0.0", 24),),
...                   services=((), (Service("ssh", "ssh", "1", False),)), data=(Data("u", "secret"),))
>>> table = ActionTable.for_role(catalog, "Attacker")
>>> len(table), table.labels[0]
(16, 'ScanNetwork a -> 10.0.0.0/24')
>>> table.index_of(table.action(5, catalog), catalog)
5
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from .action import Action
from .catalog import Catalog
from .components import IP, Data, Network, Service
from .enums import ActionType, AgentRole

__all__ = ["TABLE_ORDER", "ActionTable", "TableEntry"]

#: The action types in table order.
TABLE_ORDER: tuple[ActionType, ...] = (
    ActionType.ScanNetwork, ActionType.FindServices, ActionType.ExploitService,
    ActionType.FindData, ActionType.ExfiltrateData, ActionType.BlockIP,
)

#: (action type, source host slot, target slot (a network slot for ScanNetwork), extra):
#: extra is the service's index among the target's services (ExploitService), the data
#: slot (ExfiltrateData), the blocked host slot (BlockIP), else -1.
TableEntry = tuple[ActionType, int, int, int]

_ROLE_TYPES: dict[AgentRole, tuple[ActionType, ...]] = {
    AgentRole.Attacker: TABLE_ORDER[:5],
    AgentRole.Benign: TABLE_ORDER[:5],
    AgentRole.Defender: TABLE_ORDER,
}


class ActionTable:
    """The numbered actions of one layout, restricted to ``action_types`` (kept in table
    order). Immutable; build once per scenario and role and share."""

    def __init__(self, catalog: Catalog, action_types: Iterable[ActionType] = TABLE_ORDER) -> None:
        wanted = set(action_types)
        self.action_types: tuple[ActionType, ...] = tuple(t for t in TABLE_ORDER if t in wanted)
        self.layout = catalog.layout
        hosts, networks, services, data = catalog.layout
        h, entries = range(len(hosts)), []
        for kind in self.action_types:
            if kind is ActionType.ScanNetwork:
                entries += [(kind, s, n, -1) for s in h for n in range(len(networks))]
            elif kind in (ActionType.FindServices, ActionType.FindData):
                entries += [(kind, s, t, -1) for s in h for t in h]
            elif kind is ActionType.ExploitService:
                entries += [(kind, s, t, k) for s in h for t in h for k in range(len(services[t]))]
            elif kind is ActionType.ExfiltrateData:
                entries += [(kind, s, t, d) for s in h for t in h for d in range(len(data))]
            else:
                entries += [(kind, s, t, b) for s in h for t in h for b in h]
        self.entries: tuple[TableEntry, ...] = tuple(entries)
        self._index = {entry: i for i, entry in enumerate(self.entries)}
        self.labels: tuple[str, ...] = tuple(self._label(entry) for entry in self.entries)
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        self._actions: dict[Catalog, list[Action | None]] = {}

    @classmethod
    def for_role(cls, catalog: Catalog, role: AgentRole | str) -> ActionTable:
        """The table a role plays with: all six types for defenders, BlockIP left out otherwise."""
        role = AgentRole.from_string(role) if isinstance(role, str) else AgentRole(role)
        return cls(catalog, _ROLE_TYPES[role])

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"ActionTable({len(self)} actions: {self.counts()})"

    def counts(self) -> dict[str, int]:
        """Entries per action type, in table order."""
        result = {kind.value: 0 for kind in self.action_types}
        for entry in self.entries:
            result[entry[0].value] += 1
        return result

    # ------------------------------------------------------------------ labels
    def _label(self, entry: TableEntry) -> str:
        kind, source, target, extra = entry
        hosts, networks, services, data = self.layout
        if kind is ActionType.ScanNetwork:
            return f"ScanNetwork {hosts[source]} -> {networks[target]}"
        text = f"{kind.value} {hosts[source]} -> {hosts[target]}"
        if kind is ActionType.ExploitService:
            return f"{text} {services[target][extra].name}"
        if kind is ActionType.ExfiltrateData:
            return f"{text} {data[extra].owner}/{data[extra].id}"
        if kind is ActionType.BlockIP:
            return f"{text} blocks {hosts[extra]}"
        return text

    def index_of_label(self, label: str) -> int:
        """The index of a label; KeyError otherwise."""
        try:
            return self._label_index[label]
        except KeyError:
            raise KeyError(f"no action labelled {label!r} in this table") from None

    # ------------------------------------------------------------------ actions
    def _check(self, catalog: Catalog) -> None:
        if catalog.layout is not self.layout and catalog.layout != self.layout:
            raise ValueError("the catalog's layout is not the one this table was built from")

    def action(self, index: int, catalog: Catalog) -> Action:
        """Entry ``index`` as a concrete action at the catalog's current addresses (the
        same object on every call for one catalog)."""
        cache = self._actions.get(catalog)
        if cache is None:
            self._check(catalog)
            if len(self._actions) > 16:
                self._actions.clear()
            cache = self._actions[catalog] = [None] * len(self.entries)
        made = cache[index]
        if made is None:
            made = cache[index] = self._make(self.entries[index], catalog)
        return made

    def _make(self, entry: TableEntry, catalog: Catalog) -> Action:
        kind, source, target, extra = entry
        ips = catalog.host_ips
        if kind is ActionType.ScanNetwork:
            return Action(kind, {"source_host": ips[source], "target_network": catalog.network_addresses[target]})
        parameters: dict[str, Any] = {"source_host": ips[source], "target_host": ips[target]}
        if kind is ActionType.ExploitService:
            parameters["target_service"] = catalog.services[target][extra]
        elif kind is ActionType.ExfiltrateData:
            parameters["data"] = catalog.data[extra]
        elif kind is ActionType.BlockIP:
            parameters["blocked_host"] = ips[extra]
        return Action(kind, parameters)

    def index_of(self, action: Action, catalog: Catalog) -> int | None:
        """The index of a concrete action, or None when the table has no such entry (an
        address outside the world, a neighbour network that does not exist, a type the
        table leaves out)."""
        entry = _entry_of(action, catalog)
        return None if entry is None else self._index.get(entry)

    def indices(self, actions: Iterable[Action], catalog: Catalog) -> list[int]:
        """The indices of those ``actions`` the table has, in table order (a mask's ones)."""
        index = self._index
        found: set[int] = set()
        for action in actions:
            entry = _entry_of(action, catalog)
            if entry is not None:
                slot = index.get(entry)
                if slot is not None:
                    found.add(slot)
        return sorted(found)

    def all_actions(self, catalog: Catalog) -> list[Action]:
        return [self.action(i, catalog) for i in range(len(self))]

    def as_all_actions_json(self, catalog: Catalog) -> str:
        """Upstream's ``all_actions`` join-reply value: a JSON string holding the list of
        action dicts (double-encoded, as WhiteBoxNetSecGame sends it; reference §7.1)."""
        return json.dumps([action.as_dict for action in self.all_actions(catalog)])


def _entry_of(action: Action, catalog: Catalog) -> TableEntry | None:
    kind = action.action_type
    params = action.parameters
    source = catalog.host_slot(params.get("source_host"))  # type: ignore[arg-type]
    if source is None:
        return None
    if kind is ActionType.ScanNetwork:
        network = params.get("target_network")
        slot = catalog.network_slot(network) if isinstance(network, Network) else None
        return None if slot is None else (kind, source, slot, -1)
    target = params.get("target_host")
    target_slot = catalog.host_slot(target) if isinstance(target, IP) else None
    if target_slot is None:
        return None
    if kind in (ActionType.FindServices, ActionType.FindData):
        return (kind, source, target_slot, -1)
    if kind is ActionType.ExploitService:
        service = params.get("target_service")
        services: Sequence[Service] = catalog.services[target_slot]
        if isinstance(service, Service) and service in services:
            return (kind, source, target_slot, services.index(service))
        return None
    if kind is ActionType.ExfiltrateData:
        datum = params.get("data")
        slot = catalog.data_slot(datum) if isinstance(datum, Data) else None
        return None if slot is None else (kind, source, target_slot, slot)
    if kind is ActionType.BlockIP:
        blocked = params.get("blocked_host") or params.get("blocked_ip")
        slot = catalog.host_slot(blocked) if isinstance(blocked, IP) else None
        return None if slot is None else (kind, source, target_slot, slot)
    return None
