"""A small attacker state shared by the client-side helper tests
(tests/test_agents_valid_actions.py, test_agents_observations.py, test_agents_trajectories.py).
"""

from __future__ import annotations

from protocol import IP, Action, ActionType, Data, GameState, Network, Service

A, H, E = IP("192.168.1.2"), IP("192.168.1.3"), IP("213.47.23.195")
NET = Network("192.168.1.0", 24)
SSH = Service("ssh", "passive", "8.1.0", False)
D1 = Data("User1", "DataFromServer1")


def small_state(**changes: object) -> GameState:
    """Controls A and E; knows A, H, E, one network, ssh on H and one datum on A."""
    state = GameState(
        controlled_hosts={A, E},
        known_hosts={A, H, E},
        known_networks={NET},
        known_services={H: {SSH}},
        known_data={A: {D1}},
    )
    return state.evolve(**changes) if changes else state


def act(kind: ActionType, **parameters: object) -> Action:
    return Action(kind, dict(parameters))
