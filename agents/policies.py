"""Scripted policies: pure functions ``(observation, rng) -> action``.

The same functions drive client agents (``arena play``) and, later, scripted agents
inside a game. They keep no memory between calls: everything they know comes from
the observation, and all their randomness from the ``random.Random`` they are given,
so a seeded run repeats exactly.

>>> import random
>>> from protocol import IP, GameState, Network, Observation
>>> state = GameState(controlled_hosts={IP("192.168.2.2")}, known_hosts={IP("192.168.2.2")},
...                   known_networks={Network("192.168.2.0", 24)})
>>> kill_chain_attacker(Observation(state, 0, False, {}), random.Random(0), explore=0).action_type
<ActionType.FindData: 'FindData'>
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any

from protocol import IP, Action, ActionType, Data, GameState, Network, Observation, Service

from .utils import generate_valid_actions, sorted_valid_actions

__all__ = [
    "POLICIES",
    "Policy",
    "action_sort_key",
    "benign_agent",
    "blocking_defender",
    "kill_chain_attacker",
    "random_attacker",
]

Policy = Callable[[Observation | None, random.Random], Action | None]


def _component_key(value: Any) -> Any:
    """A sort key of a parameter: its fields as plain values (no repr, no hashing)."""
    kind = type(value)
    if kind is IP:
        return value.ip
    if kind is Network:
        return (value.ip, value.mask)
    if kind is Service:
        return (value.name, value.type, value.version, value.is_local)
    if kind is Data:
        # Data equality (owner, id, type), not size or content: the keys are remembered per
        # action and equal actions share an entry, so a log file read at another time (other
        # content) must not bring along another key.
        return (value.owner, value.id, value.type)
    return repr(value)


def action_sort_key(action: Action) -> tuple[Any, ...]:
    """A total order on actions that does not depend on hash seeds: the type, then each
    parameter's fields (parameters in key order, so the same kinds compare alike).
    Remembered per action (the generator reuses its action objects)."""
    key = _SORT_KEYS.get(action)
    if key is None:
        if len(_SORT_KEYS) > 100_000:
            _SORT_KEYS.clear()
        key = _SORT_KEYS[action] = (action.action_type.value, tuple(
            (name, _component_key(value)) for name, value in sorted(action.parameters.items())))
    return key


_SORT_KEYS: dict[Action, tuple[Any, ...]] = {}


def _pick(actions: Iterable[Action], rng: random.Random) -> Action | None:
    ordered = sorted(actions, key=action_sort_key)
    return rng.choice(ordered) if ordered else None


def random_attacker(observation: Observation | None, rng: random.Random) -> Action | None:
    """Uniformly random among NetSecGame's valid actions (its random-agent baseline)."""
    if observation is None or not hasattr(observation, "state"):
        return None
    actions = sorted_valid_actions(observation.state)
    return rng.choice(actions) if actions else None


def _is_public(ip: IP) -> bool:
    return not ip.is_private()


def _explored(network: Network, hosts: Iterable[IP]) -> bool:
    """Whether any of ``hosts`` lies in ``network``."""
    block = _NETWORKS.get(network)
    if block is None:
        block = _NETWORKS[network] = ipaddress.ip_network(f"{network.ip}/{network.mask}", strict=False)
    return any(ipaddress.ip_address(host.ip) in block for host in hosts)


_NETWORKS: dict[Network, Any] = {}


def kill_chain_attacker(observation: Observation | None, rng: random.Random,
                        explore: float = 0.1) -> Action | None:
    """Scan, find services, exploit, find data, exfiltrate: the furthest stage the state
    allows, chosen at random within the stage; ``explore`` of the time a random action.
    Scanning networks where no other host is known and asking hosts for their services
    are one stage, so neither an empty network nor a host without services holds the
    chain up."""
    if observation is None or not hasattr(observation, "state"):
        return None
    state: GameState = observation.state
    if rng.random() < explore:
        return random_attacker(observation, rng)
    controlled = state.controlled_hosts
    outposts = [host for host in controlled if _is_public(host)]
    stages: list[list[Action]] = [[], [], [], [], []]
    for host, data in state.known_data.items():
        if host not in controlled:
            continue
        for datum in data:
            if datum.type == "log":
                continue
            for outpost in outposts:
                if outpost != host and datum not in state.known_data.get(outpost, ()):
                    stages[0].append(_exfiltrate(host, outpost, datum))
    # Hosts and networks in sorted order: each source draw below goes to the same target
    # whatever the process's hash seed (sets iterate in hash order).
    for host, services in sorted(state.known_services.items(), key=_first_key):
        if host not in controlled:
            source = _source_for(state, host, rng)
            stages[1].extend(Action(ActionType.ExploitService, {
                "source_host": source, "target_host": host, "target_service": service})
                for service in services)
    stages[2].extend(Action(ActionType.FindData, {"source_host": host, "target_host": host})
                     for host in controlled if host not in state.known_data)
    private = sorted((network for network in state.known_networks if network.is_private()), key=_component_key)
    # Discovery: networks where no other host is known yet (never scanned, or empty) and
    # hosts with no known services (never asked, or none to find: a router), drawn from
    # together. Neither kind can then hold the chain up by coming back forever.
    stages[3].extend(Action(ActionType.ScanNetwork, {
        "source_host": _source_for(state, None, rng), "target_network": network})
        for network in private if not _explored(network, state.known_hosts - controlled))
    stages[3].extend(Action(ActionType.FindServices, {
        "source_host": _source_for(state, host, rng), "target_host": host})
        for host in sorted(state.known_hosts) if host not in controlled and host not in state.known_services)
    stages[4].extend(Action(ActionType.ScanNetwork, {
        "source_host": _source_for(state, None, rng), "target_network": network})
        for network in private)
    for stage in stages:
        if stage:
            return _pick(stage, rng)
    return random_attacker(observation, rng)


def _first_key(item: tuple[IP, Any]) -> Any:
    return _component_key(item[0])


def _source_for(state: GameState, target: IP | None, rng: random.Random) -> IP:
    """A controlled private host to act from (the foothold inside), else any."""
    inside = sorted(h for h in state.controlled_hosts if not _is_public(h) and h != target)
    return rng.choice(inside) if inside else min(state.controlled_hosts)


def _exfiltrate(source: IP, target: IP, datum: Data) -> Action:
    return Action(ActionType.ExfiltrateData, {"source_host": source, "target_host": target, "data": datum})


def blocking_defender(observation: Observation | None, rng: random.Random,
                      block_rate: float = 0.2) -> Action | None:
    """Watches its hosts' logs (FindData) and, ``block_rate`` of the time, blocks a
    random known host at a random controlled host."""
    if observation is None or not hasattr(observation, "state"):
        return None
    state = observation.state
    if not state.controlled_hosts:
        return None
    if rng.random() < block_rate and state.known_hosts:
        source = rng.choice(sorted(state.controlled_hosts))
        blocked_here = state.known_blocks.get(source, frozenset())
        targets = sorted(h for h in state.controlled_hosts if h not in blocked_here)
        if targets:
            return Action(ActionType.BlockIP, {"source_host": source, "target_host": rng.choice(targets),
                                               "blocked_host": rng.choice(sorted(state.known_hosts))})
    host = rng.choice(sorted(state.controlled_hosts))
    return Action(ActionType.FindData, {"source_host": host, "target_host": host})


def benign_agent(observation: Observation | None, rng: random.Random) -> Action | None:
    """Ordinary use: scans, service lookups and data reads, never exploits or exfiltrates."""
    if observation is None or not hasattr(observation, "state"):
        return None
    harmless = (ActionType.ScanNetwork, ActionType.FindServices, ActionType.FindData)
    return _pick((a for a in generate_valid_actions(observation.state) if a.action_type in harmless), rng)


#: Policies by the names ``arena play --agent`` takes.
POLICIES: dict[str, Policy] = {
    "random": random_attacker,
    "kill-chain": kill_chain_attacker,
    "defender": blocking_defender,
    "benign": benign_agent,
}
