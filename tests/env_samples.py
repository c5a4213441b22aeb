"""Shared pieces of the RL environment tests: task files, the winning attack on
two_networks_tiny by action label, and an independent reading of the observation layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from protocol import GameState
from protocol.catalog import Catalog

TASKS = Path(__file__).resolve().parents[1] / "world" / "tasks"
TINY = TASKS / "two_networks_tiny_attacker.yaml"
DEFAULT = TASKS / "default.yaml"
DEFENDED = TASKS / "defended_tiny.yaml"

#: The five-step attack on two_networks_tiny, as action labels (they survive remapping).
WINNING_LABELS = [
    "ScanNetwork client_1 -> 192.168.1.0/24",
    "FindServices client_1 -> smb_server",
    "ExploitService client_1 -> smb_server microsoft-ds",
    "FindData smb_server -> smb_server",
    "ExfiltrateData smb_server -> outside_node User1/DataFromServer1",
]


def write_variant(source: Path, directory: Path, name: str, **changes: Any) -> Path:
    """A copy of a task file with ``arena.name`` = ``name`` and dotted keys changed
    (``{"env.use_dynamic_addresses": True}``)."""
    document = yaml.safe_load(source.read_text())
    document.setdefault("arena", {})["name"] = name
    for dotted, value in changes.items():
        node = document
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def dynamic_tiny(directory: Path) -> Path:
    """two_networks_tiny with address remapping allowed."""
    return write_variant(TINY, directory, "tiny_dynamic", **{"env.use_dynamic_addresses": True})


def short_defender(directory: Path) -> Path:
    """The default task with a defender whose episode ends after 3 steps (then it waits)."""
    return write_variant(DEFAULT, directory, "short_defender",
                         **{"coordinator.agents.Defender.max_steps": 3, "coordinator.agents.Attacker.max_steps": 8})


def random_valid(rng: np.random.Generator, mask: np.ndarray) -> int:
    valid = np.flatnonzero(mask)
    return int(valid[rng.integers(valid.size)])


def naive_vector(layout: Any, state: GameState, catalog: Catalog, fraction: float) -> np.ndarray:
    """The observation vector read slot by slot from the layout's own descriptions."""
    hosts = {name: catalog.host_ips[i] for i, name in enumerate(catalog.hosts)}
    networks = dict(zip(catalog.networks, catalog.network_addresses, strict=True))
    data = {f"{d.owner}/{d.id}": d for d in catalog.data}
    blocked = set().union(*state.known_blocks.values()) if state.known_blocks else set()
    public = [ip for i, ip in enumerate(catalog.host_ips) if catalog.is_public(i)]
    vector = np.zeros(len(layout), dtype=np.float32)
    for slot in layout.slots:
        if slot.block == "hosts":
            ip = hosts[slot.entity]
            value = {"known": ip in state.known_hosts, "controlled": ip in state.controlled_hosts,
                     "blocked": ip in blocked}[slot.field]
        elif slot.block == "services":
            ip = hosts[slot.entity]
            value = any(s.name == slot.field for s in state.known_services.get(ip, ()))
        elif slot.block == "data":
            value = data[slot.field] in state.known_data.get(hosts[slot.entity], ())
        elif slot.block == "exfiltrated":
            value = any(data[slot.entity] in state.known_data.get(ip, ()) for ip in public)
        elif slot.block == "networks":
            value = networks[slot.entity] in state.known_networks
        else:
            value = fraction
        vector[slot.index] = float(value)
    return vector
