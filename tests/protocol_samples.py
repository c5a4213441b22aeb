"""Sample protocol values shared by the wire-form tests (JSON, compact codec, fuzzing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protocol import IP, Action, ActionType, AgentInfo, AgentRole, Data, GameState, Network, Service, compact

SRC, DST, OTHER = IP("192.168.1.2"), IP("192.168.1.3"), IP("213.47.23.195")
NET = Network("192.168.1.0", 24)
SSH = Service("ssh", "passive", "8.1.0", False)
DATUM = Data("User1", "DatabaseData", 12, "db", "secret")


def all_actions() -> list[Action]:
    """One fully-parameterised action of each of the nine types."""
    return [
        Action(ActionType.ScanNetwork, {"source_host": SRC, "target_network": NET}),
        Action(ActionType.FindServices, {"source_host": SRC, "target_host": DST}),
        Action(ActionType.FindData, {"source_host": SRC, "target_host": SRC}),
        Action(
            ActionType.ExploitService,
            {"source_host": SRC, "target_host": DST, "target_service": SSH},
        ),
        Action(
            ActionType.ExfiltrateData, {"source_host": DST, "target_host": OTHER, "data": DATUM}
        ),
        Action(ActionType.BlockIP, {"source_host": SRC, "target_host": DST, "blocked_host": OTHER}),
        Action(ActionType.JoinGame, {"agent_info": AgentInfo("MyAgent", AgentRole.Attacker)}),
        Action(ActionType.QuitGame, {}),
        Action(
            ActionType.ResetGame,
            {"request_trajectory": True, "randomize_topology": False, "seed": 42},
        ),
    ]


def rich_state() -> GameState:
    return GameState(
        controlled_hosts={SRC, OTHER},
        known_hosts={SRC, DST, OTHER},
        known_services={DST: {SSH, Service("http", "passive", "2.4", True)}},
        known_data={SRC: {DATUM, Data("User2", "Logs", 0, "log", "[]")}},
        known_networks={NET, Network("213.47.23.192", 26)},
        known_blocks={DST: {SRC, OTHER}},
    )


@pytest.fixture
def fresh_compact_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Empty decoder caches (interned components, decoded states and actions): a decoding
    test then reaches the checks, not a value an earlier test left in a cache."""
    monkeypatch.setattr(compact, "_interned", {})
    monkeypatch.setattr(compact, "_states", {})
    monkeypatch.setattr(compact, "_actions", {})
    yield
