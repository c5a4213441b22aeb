"""Action masks: which entries of a role's fixed action table are valid in a state.

An RL policy with a ``Discrete(len(table))`` head needs to know which indices make sense
now. The rule is exactly NetSecGame's valid-action generator (reference netsecgame.md
§10.3): ``mask[i]`` is True when table entry ``i`` is among
``generate_valid_actions(state, include_blocks=role is Defender)``, and nothing more.
Valid actions the table cannot express (a scan of a neighbour network outside the
world, say) are simply not in it.

States are immutable and shared (a world hands the same object to every reader; the
client decodes equal states once), so a mask is computed once per (state, table,
catalog) and kept on the state (:meth:`protocol.GameState.cached`); the arrays handed out
are read-only, and environments give their users copies.

>>> from protocol import IP, GameState, Network
>>> from protocol.action_table import ActionTable
>>> from protocol.catalog import Catalog
>>> catalog = Catalog(hosts=("a", "b"), host_ips=(IP("10.0.0.1"), IP("10.0.0.2")),
...                   networks=("10.0.0.0/24",), network_addresses=(Network("10.0.0.0", 24),),
...                   services=((), ()), data=())
>>> masks = ActionMasks(ActionTable.for_role(catalog, "Attacker"), "Attacker")
>>> state = GameState(controlled_hosts={IP("10.0.0.1")}, known_hosts={IP("10.0.0.1")},
...                   known_networks={Network("10.0.0.0", 24)})
>>> [masks.table.labels[i] for i in masks.valid_indices(state, catalog)]
['ScanNetwork a -> 10.0.0.0/24', 'FindServices a -> a', 'FindData a -> a']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .extras import needs

with needs("ActionMasks (agents.action_masks)", "rl"):
    import numpy as np

from protocol import Action, AgentRole, GameState
from protocol.action_table import ActionTable
from protocol.catalog import Catalog

from .utils import generate_valid_actions

__all__ = ["ActionMasks", "per_state"]

T = TypeVar("T")

#: Entries one state keeps per cache slot (one per distinct (owner, catalog) that read it).
_PER_STATE_LIMIT = 8


def per_state(state: GameState, slot: str, owner: object, catalog: Catalog, compute: Callable[[], T]) -> T:
    """``compute()`` once per (state, owner, catalog), kept on the state.

    A state decoded by one client may be read by several tables or encoders, and equal
    content can meet different catalogs (another game's address binding), so the key is
    the owner's identity and the catalog's value; the owner object is kept with the value
    so that a recycled ``id`` never returns another owner's result."""
    entries: dict[tuple[int, Catalog], tuple[object, Any]] = state.cached(slot, _new_entries)
    key = (id(owner), catalog)
    hit = entries.get(key)
    if hit is not None and hit[0] is owner:
        return hit[1]  # type: ignore[no-any-return]
    value = compute()
    if len(entries) >= _PER_STATE_LIMIT:
        entries.clear()
    entries[key] = (owner, value)
    return value


class _Entries(dict):  # type: ignore[type-arg]
    """A state's derived values: copying a state (``copy.deepcopy`` of an env's info, as
    SB3's DummyVecEnv does every step) shares them instead of copying tables and encoders."""

    def __copy__(self) -> _Entries:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Entries:
        return self


def _new_entries(_state: GameState) -> dict[Any, Any]:
    return _Entries()


class ActionMasks:
    """Masks over ``table`` for an agent of ``role`` (defenders' valid actions include
    BlockIP, everyone else's do not, as in NetSecGame's generator)."""

    def __init__(self, table: ActionTable, role: AgentRole | str) -> None:
        self.table = table
        self.role = AgentRole.from_string(role) if isinstance(role, str) else AgentRole(role)
        self.include_blocks = self.role is AgentRole.Defender
        self._size = len(table)
        self._lookups: dict[Catalog, dict[Action, int]] = {}

    def mask(self, state: GameState, catalog: Catalog) -> np.ndarray:
        """A read-only bool array of ``len(table)``: True where the entry is valid now."""
        return per_state(state, "arena.mask", self, catalog, lambda: self._compute(state, catalog))

    def valid_indices(self, state: GameState, catalog: Catalog) -> np.ndarray:
        """The indices of the valid entries, ascending (read-only, cached like the mask)."""
        return per_state(state, "arena.valid", self, catalog,
                         lambda: _frozen(np.flatnonzero(self.mask(state, catalog))))

    def _lookup(self, catalog: Catalog) -> dict[Action, int]:
        """Every table action at the catalog's addresses -> its index. Equal actions are
        the same entry (``ActionTable.index_of`` of a concrete action), and a dict lookup
        of a (hash-cached) action is far cheaper than mapping it back to its slots."""
        lookup = self._lookups.get(catalog)
        if lookup is None:
            if len(self._lookups) > 16:
                self._lookups.clear()
            lookup = self._lookups[catalog] = {action: index for index, action
                                               in enumerate(self.table.all_actions(catalog))}
        return lookup

    def _compute(self, state: GameState, catalog: Catalog) -> np.ndarray:
        mask = np.zeros(self._size, dtype=bool)
        lookup = self._lookup(catalog).get
        valid = generate_valid_actions(state, self.include_blocks)
        indices = [index for index in map(lookup, valid) if index is not None]
        if indices:
            mask[indices] = True
        return _frozen(mask)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
