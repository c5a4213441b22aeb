"""Shared samples for the GameWorld tests (test_world_*.py): the scenario1_small
addresses, services and data, the world-level action builders (taking IP / Network
objects, unlike conftest's string-based ones), and small state and log helpers.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import yaml

from protocol import IP, Action, ActionType, AgentRole, Data, GameState, Network, Service
from world import TaskConfig, parse_task
from world.game_world import GameWorld
from world.scenario import LOG_FILE, load_scenario
from world.task import View

from .conftest import MICROSOFT_DS, SECRET, TASKS

ATTACKER, DEFENDER, BENIGN = AgentRole.Attacker, AgentRole.Defender, AgentRole.Benign

CLIENT, CNC = IP("192.168.2.2"), IP("213.47.23.195")
SMB, DB, WEB, OTHER1, OTHER2 = (IP(f"192.168.1.{i}") for i in range(2, 7))
ROUTER1, ROUTER2 = IP("192.168.1.1"), IP("192.168.2.1")
NOWHERE = IP("8.8.8.8")
LAN1, LAN2, LAN3 = (Network(f"192.168.{i}.0", 24) for i in (1, 2, 3))
PUBLIC = Network("213.47.23.192", 26)


def svc(name: str, version: str, local: bool) -> Service:
    return Service(name, "passive", version, local)


MS_DS = MICROSOFT_DS  # the same Service as conftest's
MS_WBT = svc("ms-wbt-server", "10.0.19041", False)
WIN_LOGIN = svc("windows login", "10.0.19041", True)
POWERSHELL = svc("powershell", "10.0.19041", True)
SSH = svc("ssh", "8.1.0", False)
BASH = svc("bash", "5.0.0", True)
SMB_SERVICES = frozenset({MS_DS, MS_WBT, WIN_LOGIN, POWERSHELL})

SMB_DATA = frozenset({SECRET, Data("User2", "Data2FromServer1"), Data("User1", "Data3FromServer1")})


# ---------------------------------------------------------------------------- helpers
def make_world(name: str = "scenario1_small", seed: int = 42, **kwargs: Any) -> GameWorld:
    return GameWorld(load_scenario(name), random.Random(seed), **kwargs)


def scan(source: IP, network: Network) -> Action:
    return Action(ActionType.ScanNetwork, {"source_host": source, "target_network": network})


def find_services(source: IP, target: IP) -> Action:
    return Action(ActionType.FindServices, {"source_host": source, "target_host": target})


def find_data(source: IP, target: IP) -> Action:
    return Action(ActionType.FindData, {"source_host": source, "target_host": target})


def exploit(source: IP, target: IP, service: Service) -> Action:
    return Action(ActionType.ExploitService,
                  {"source_host": source, "target_host": target, "target_service": service})


def exfiltrate(source: IP, target: IP, data: Data) -> Action:
    return Action(ActionType.ExfiltrateData, {"source_host": source, "target_host": target, "data": data})


def block(source: IP, target: IP, blocked: IP) -> Action:
    return Action(ActionType.BlockIP, {"source_host": source, "target_host": target, "blocked_host": blocked})


def owning(*hosts: IP, **parts: Any) -> GameState:
    """A state controlling ``hosts`` (also known), with optional other parts."""
    parts.setdefault("known_hosts", set(hosts))
    return GameState(controlled_hosts=set(hosts), **parts)


def log_of(world: GameWorld, ip: IP) -> Data:
    (log_file,) = [d for d in world.node_data(world.ip_to_node[ip]) if d == LOG_FILE]
    return log_file


def entries(*pairs: tuple[IP, str]) -> str:
    """The log content upstream writes: a JSON list with json.dumps' default spacing."""
    return json.dumps([{"source_host": ip.ip, "action_type": f"ActionType.{kind}"} for ip, kind in pairs])


def first_state(world: GameWorld) -> GameState:
    """The transcript agent's start: it controls the client and the C&C."""
    return world.start_state(View(controlled_hosts=(CNC, CLIENT)))


def exfil_ready(world: GameWorld) -> GameState:
    """The agent controls smb and the C&C, after FindData on smb."""
    state = owning(CLIENT, SMB, CNC)
    return world.step(state, find_data(SMB, SMB), "a", ATTACKER)


DEFAULT_TASK = yaml.safe_load((TASKS / "default.yaml").read_text())


def task_with(source: str = "sample-task.yaml", **changes: Any) -> TaskConfig:
    """The default task with dotted-path changes (``arena.seats``, ...)."""
    document = copy.deepcopy(DEFAULT_TASK)
    for path, value in changes.items():
        node = document
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return parse_task(document, source)
