"""GameWorld: start and goal views, the six actions, logs, false positives, goal check and
world reset, against reference/netsecgame.md §3.3, §5.1, §5.2, §6 and §9.

Every failed precondition must hand back the very same state object (``is``): the world
never raises and never copies a state that does not change.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from protocol import IP, Action, ActionType, AgentRole, Data, GameState, Network, Service
from world.game_world import GameWorld, goal_reached
from world.scenario import LOG_FILE, load_scenario
from world.task import View

from .transcripts import load_transcript, normalize_state

ATTACKER, DEFENDER, BENIGN = AgentRole.Attacker, AgentRole.Defender, AgentRole.Benign

CLIENT, CNC = IP("192.168.2.2"), IP("213.47.23.195")
SMB, DB, WEB, OTHER1, OTHER2 = (IP(f"192.168.1.{i}") for i in range(2, 7))
ROUTER1, ROUTER2 = IP("192.168.1.1"), IP("192.168.2.1")
NOWHERE = IP("8.8.8.8")
LAN1, LAN2, LAN3 = (Network(f"192.168.{i}.0", 24) for i in (1, 2, 3))
PUBLIC = Network("213.47.23.192", 26)


def svc(name: str, version: str, local: bool) -> Service:
    return Service(name, "passive", version, local)


MS_DS = svc("microsoft-ds", "10.0.19041", False)
MS_WBT = svc("ms-wbt-server", "10.0.19041", False)
WIN_LOGIN = svc("windows login", "10.0.19041", True)
POWERSHELL = svc("powershell", "10.0.19041", True)
SSH = svc("ssh", "8.1.0", False)
BASH = svc("bash", "5.0.0", True)
SMB_SERVICES = frozenset({MS_DS, MS_WBT, WIN_LOGIN, POWERSHELL})

SECRET = Data("User1", "DataFromServer1")
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


# ---------------------------------------------------------------------------- start and goal views
def test_start_state_adds_neighbouring_networks() -> None:
    """Reference §6.2 start step 4: the controlled host's network and, being private, the
    networks +-256 away (192.168.1.0/24 and .3.0/24, which need not exist)."""
    world = make_world()
    assert world.start_state(View(controlled_hosts=(CLIENT,))) == GameState(
        controlled_hosts={CLIENT}, known_hosts={CLIENT}, known_networks={LAN1, LAN2, LAN3})


def test_start_state_public_network_gets_no_neighbours() -> None:
    """Reference §6.2 start step 4: public networks are added without neighbours."""
    world = make_world()
    assert world.start_state(View(controlled_hosts=(CNC,))) == GameState(
        controlled_hosts={CNC}, known_hosts={CNC}, known_networks={PUBLIC})


def test_start_state_neighbours_only_while_still_private(tmp_path: Path) -> None:
    """Reference §6.2 start step 4: a shifted network is added only if still private
    (10.0.0.0 - 256 = 9.255.255.0 is public; 172.16.0.0 - 256 = 172.15.255.0 too)."""
    path = tmp_path / "edge.yaml"
    path.write_text(
        "name: edge\n"
        "nodes:\n"
        "  - id: a\n"
        "    interfaces: [{ip: 10.0.0.5, network: 10.0.0.0/24}]\n"
        "  - id: b\n"
        "    interfaces: [{ip: 172.16.0.9, network: 172.16.0.0/24}]\n"
        "start_candidates: [10.0.0.5]\n")
    world = GameWorld(load_scenario(path), random.Random(1))
    assert world.start_state(View(controlled_hosts=(IP("10.0.0.5"),))).known_networks == {
        Network("10.0.0.0", 24), Network("10.0.1.0", 24)}
    assert world.start_state(View(controlled_hosts=(IP("172.16.0.9"),))).known_networks == {
        Network("172.16.0.0", 24), Network("172.16.1.0", 24)}


def test_start_state_known_hosts_include_controlled_and_literal_entries() -> None:
    """Reference §6.2 start steps 2-3: IP entries are taken literally (no existence check),
    every controlled host is also known; known_blocks is always empty."""
    world = make_world()
    state = world.start_state(View(known_networks=(Network("10.9.9.0", 24),), known_hosts=(NOWHERE,),
                                   controlled_hosts=(CNC, IP("1.2.3.4"))))
    assert state == GameState(controlled_hosts={CNC, IP("1.2.3.4")}, known_hosts={CNC, IP("1.2.3.4"), NOWHERE},
                              known_networks={Network("10.9.9.0", 24), PUBLIC})


def test_random_start_draw_is_weighted_by_duplicate_candidates() -> None:
    """Reference §5.2: ``random`` draws uniformly from the candidate list, duplicates
    included: on two_networks client_1 (listed twice) comes up with probability 2/6."""
    world = make_world("two_networks", seed=2024)
    view = View(controlled_hosts=("random",))
    draws = 6000
    counts: Counter[IP] = Counter()
    for _ in range(draws):
        (host,) = world.start_state(view).controlled_hosts
        counts[host] += 1
    assert set(counts) == {IP(f"192.168.2.{i}") for i in range(2, 7)}
    # Binomial sd is about 36 for p = 1/3 and 27 for p = 1/6: bounds of about 6 sd.
    assert abs(counts[CLIENT] - draws * 2 / 6) < 220
    for i in range(3, 7):
        assert abs(counts[IP(f"192.168.2.{i}")] - draws / 6) < 170


def test_random_known_host_in_start_draws_from_candidates_but_goal_from_all_ips() -> None:
    """Reference §4.3 / §6.2: start ``random`` hosts come from the start candidates, goal
    ``random`` hosts from every world IP (routers included)."""
    world = make_world("two_networks_tiny", seed=5)
    start = {host for _ in range(50) for host in world.start_state(View(known_hosts=("random",))).known_hosts}
    assert start == {CLIENT}
    goal: set[IP] = set()
    for _ in range(400):
        state = world.goal_state(View(controlled_hosts=("random",), known_hosts=("random",)))
        goal |= state.controlled_hosts | state.known_hosts
    assert goal == set(world.scenario.ip_to_node)
    assert ROUTER1 in goal


def test_all_local_is_every_private_ip_including_routers() -> None:
    """Reference §4.3 / §6.2 step 2: ``all_local`` gives every IP of every private
    network, routers included (three_net_scenario: 14 of its 15 IPs)."""
    world = make_world("three_net_scenario")
    private = {ip for ip in world.scenario.ip_to_node if ip != CNC}
    assert len(private) == 14
    assert {IP("192.168.1.1"), IP("192.168.4.1"), IP("192.168.3.2")} <= private
    state = world.start_state(View(controlled_hosts=("all_local",)))
    assert state.controlled_hosts == private
    assert state.known_hosts == private
    assert world.goal_state(View(known_hosts=("all_local",))).known_hosts == private


def test_goal_state_has_no_neighbours_and_no_blocks() -> None:
    """Reference §6.2 goal: the same parsing without neighbour expansion; known_blocks is
    left out even when the view has some."""
    world = make_world()
    goal = world.goal_state(View(controlled_hosts=(CLIENT,), known_networks=(LAN1,),
                                 known_blocks={SMB: (CLIENT,)}))
    assert goal == GameState(controlled_hosts={CLIENT}, known_networks={LAN1})


def test_goal_random_data_can_draw_the_log_file() -> None:
    """Reference §6.2 goal / §12.2 item 1: goal ``random`` data come from all hosts'
    data and exclude type "logs", so the log file (type "log") can be drawn."""
    world = make_world("two_networks_tiny", seed=11)
    drawn: set[Data] = set()
    for _ in range(300):
        (datum,) = world.goal_state(View(known_data={CNC: ("random",)})).known_data[CNC]
        drawn.add(datum)
    assert drawn == SMB_DATA | {LOG_FILE}


def test_start_random_data_is_a_non_log_datum_of_that_host() -> None:
    """Reference §6.2 start step 6: ``random`` picks a datum of that host whose type is
    not ``log``; already listed data are not drawn again."""
    world = make_world(seed=3)
    drawn: set[Data] = set()
    for _ in range(200):
        (datum,) = world.start_state(View(known_data={SMB: ("random",)})).known_data[SMB]
        drawn.add(datum)
    assert drawn == SMB_DATA
    for _ in range(20):
        picked = world.start_state(View(known_data={SMB: (SECRET, "random", "random")})).known_data[SMB]
        assert len(picked) == 3 and picked <= SMB_DATA and SECRET in picked


def test_random_service_excludes_already_listed_services() -> None:
    """Reference §6.2 start step 5: ``random`` picks one of the host's services, local
    ones included, not already listed; when none is left nothing is added."""
    for seed in range(10):
        world = make_world(seed=seed)
        view = View(known_services={SMB: (MS_DS, "random", "random", "random", "random")})
        assert world.start_state(view).known_services == {SMB: SMB_SERVICES}
        assert world.goal_state(view).known_services == {SMB: SMB_SERVICES}
        (single,) = world.start_state(View(known_services={SMB: ("random",)})).known_services[SMB]
        assert single in SMB_SERVICES


# ---------------------------------------------------------------------------- goal check
def test_goal_reached_dict_of_set_semantics() -> None:
    """Reference §3.3: subset for the three sets; for services and data every goal key
    must be present with a subset of values; extra keys are fine."""
    state = GameState(controlled_hosts={CLIENT, SMB}, known_hosts={CLIENT, SMB, DB},
                      known_networks={LAN1, LAN2},
                      known_services={SMB: {MS_DS, MS_WBT}, DB: {SSH}},
                      known_data={CNC: {SECRET, LOG_FILE}, SMB: SMB_DATA})
    assert goal_reached(state, GameState(known_services={SMB: {MS_DS}}, known_data={CNC: {SECRET}}))
    assert goal_reached(state, GameState(controlled_hosts={SMB}, known_hosts={DB}, known_networks={LAN2}))
    assert goal_reached(state, GameState(known_services={SMB: set()}))  # key present, empty subset
    assert not goal_reached(state, GameState(known_services={WEB: set()}))  # key missing
    assert not goal_reached(state, GameState(known_data={DB: {SECRET}}))  # key missing
    assert not goal_reached(state, GameState(known_services={SMB: {MS_DS, SSH}}))  # not a subset
    assert not goal_reached(state, GameState(controlled_hosts={DB}))
    assert not goal_reached(state, GameState(known_hosts={WEB}))
    assert not goal_reached(state, GameState(known_networks={LAN3}))


def test_empty_goal_is_reached_immediately() -> None:
    """Reference §3.3: an empty goal is reached at once, even by an empty state."""
    assert goal_reached(GameState(), GameState())
    world = make_world()
    assert goal_reached(first_state(world), world.goal_state(View()))


def test_goal_data_equality_ignores_size_and_content_but_not_type() -> None:
    """Reference §1.4 / §3.3: Data membership uses (owner, id, type) only."""
    goal = GameState(known_data={CNC: {Data("User1", "DataFromServer1")}})
    assert goal_reached(GameState(known_data={CNC: {Data("User1", "DataFromServer1", 99, "", "x")}}), goal)
    assert not goal_reached(GameState(known_data={CNC: {Data("User1", "DataFromServer1", 0, "log")}}), goal)


def test_goal_ignores_known_blocks() -> None:
    """Reference §3.3: NetSecGame's goal check has no known_blocks part."""
    assert goal_reached(GameState(), GameState(known_blocks={SMB: {CLIENT}}))


# ---------------------------------------------------------------------------- transcript and logs
def test_transcript_replay_states_and_log_content() -> None:
    """Reference §9 and the recorded transcript: the four actions before the exfiltration
    leave 192.168.1.2's log with exactly these entries, size 293; every state matches."""
    records = load_transcript("transcript_scenario1_small.jsonl")
    sent = [json.loads(raw) for direction, raw in records if direction == "send"]
    received = [json.loads(raw) for direction, raw in records if direction == "recv"]
    world = make_world()
    state = first_state(world)
    assert normalize_state(state.as_dict) == normalize_state(received[0]["observation"]["state"])
    for message, reply in zip(sent[1:6], received[1:6], strict=True):
        state = world.step(state, Action.from_dict(message), "agent", ATTACKER)
        assert normalize_state(state.as_dict) == normalize_state(reply["observation"]["state"])
    expected = ('[{"source_host": "192.168.2.2", "action_type": "ActionType.ScanNetwork"}, '
                '{"source_host": "192.168.2.2", "action_type": "ActionType.FindServices"}, '
                '{"source_host": "192.168.2.2", "action_type": "ActionType.ExploitService"}, '
                '{"source_host": "192.168.1.2", "action_type": "ActionType.FindData"}]')
    (log_file,) = [d for d in state.known_data[SMB] if d == LOG_FILE]
    assert (log_file.content, log_file.size, log_file.type) == (expected, 293, "log")
    assert log_of(world, SMB).content == expected  # the exfiltration logs on the C&C, not here
    assert log_of(world, CNC).content == entries((SMB, "ExfiltrateData"))


def test_empty_log_has_size_zero_and_empty_content() -> None:
    """Reference §5.1 "Log files" / §6.3: the initial log is empty with size 0; every node
    and router has one."""
    world = make_world()
    for node in world.scenario.node_data:
        (log_file,) = [d for d in world.node_data(node) if d == LOG_FILE]
        assert (log_file.owner, log_file.id, log_file.type, log_file.size, log_file.content) == (
            "system", "logfile", "log", 0, "")


def test_log_size_is_length_of_json_content() -> None:
    """Reference §6.3 log update: content is the JSON list text, size its length."""
    world = make_world()
    state = owning(CLIENT, SMB)
    world.step(state, find_services(CLIENT, SMB), "a", ATTACKER)
    world.step(state, find_data(SMB, SMB), "a", ATTACKER)
    log_file = log_of(world, SMB)
    assert log_file.content == entries((CLIENT, "FindServices"), (SMB, "FindData"))
    assert log_file.content == ('[{"source_host": "192.168.2.2", "action_type": "ActionType.FindServices"}, '
                                '{"source_host": "192.168.1.2", "action_type": "ActionType.FindData"}]')
    assert log_file.size == len(log_file.content) == 144


# ---------------------------------------------------------------------------- ScanNetwork §6.4
def test_scan_network_adds_reachable_hosts_only_and_logs_them() -> None:
    """Reference §6.4: reachable world IPs of the range become known (the router .1.1
    and .1.5/.1.6 are not reachable from the client); known_networks is unchanged; each
    discovered host's log gets an entry."""
    world = make_world()
    state = first_state(world)
    after = world.step(state, scan(CLIENT, LAN1), "a", ATTACKER)
    assert after == state.evolve(known_hosts=state.known_hosts | {SMB, DB, WEB})
    assert after.known_networks is state.known_networks
    for ip in (SMB, DB, WEB):
        assert log_of(world, ip).content == entries((CLIENT, "ScanNetwork"))
    for ip in (ROUTER1, OTHER1, OTHER2, CLIENT):
        assert log_of(world, ip).content == ""


def test_scan_network_includes_routers_and_source_when_reachable() -> None:
    """Reference §6.4: routers and the source itself are included when reachable; CIDR
    containment applies to any range, known or not, normalised or not."""
    world = make_world()
    state = owning(CLIENT)
    after = world.step(state, scan(CLIENT, Network("192.168.0.0", 16)), "a", ATTACKER)
    assert after.known_hosts == {CLIENT, ROUTER2, SMB, DB, WEB}
    assert after.known_networks == frozenset()
    assert log_of(world, CLIENT).content == entries((CLIENT, "ScanNetwork"))
    assert world.step(state, scan(CLIENT, Network("192.168.1.77", 24)), "a", ATTACKER).known_hosts == {
        CLIENT, SMB, DB, WEB}


def test_scan_network_preconditions_return_same_state() -> None:
    """Reference §6.4 precondition: source controlled; a range with nothing reachable or
    nothing new gives the very same state."""
    world = make_world()
    state = first_state(world)
    assert world.step(state, scan(SMB, LAN1), "a", ATTACKER) is state  # source not controlled
    assert log_of(world, DB).content == ""  # nothing logged either
    assert world.step(state, scan(CLIENT, Network("10.0.0.0", 8)), "a", ATTACKER) is state
    after = world.step(state, scan(CLIENT, LAN1), "a", ATTACKER)
    assert world.step(after, scan(CLIENT, LAN1), "a", ATTACKER) is after  # nothing new
    assert log_of(world, SMB).content == entries((CLIENT, "ScanNetwork"), (CLIENT, "ScanNetwork"))


def test_three_net_scan_respects_firewall_rules() -> None:
    """Reference §5.3 three_net_scenario: LAN .3 is reachable only from smb (.1.2) and
    web (.1.4), not from the clients, and not its router .3.1."""
    world = make_world("three_net_scenario")
    lan3 = Network("192.168.3.0", 24)
    client = owning(CLIENT)
    assert world.step(client, scan(CLIENT, lan3), "a", ATTACKER) is client
    smb = owning(SMB)
    assert world.step(smb, scan(SMB, lan3), "a", ATTACKER).known_hosts == {
        SMB, IP("192.168.3.2"), IP("192.168.3.3")}


# ---------------------------------------------------------------------------- FindServices §6.5
def test_find_services_remote_only_adds_host_and_its_networks() -> None:
    """Reference §6.5: on a target not controlled only remote services are found; a newly
    known target is added with every world network containing it."""
    world = make_world()
    state = owning(CLIENT)
    after = world.step(state, find_services(CLIENT, SMB), "a", ATTACKER)
    assert after == GameState(controlled_hosts={CLIENT}, known_hosts={CLIENT, SMB},
                              known_networks={LAN1}, known_services={SMB: {MS_DS, MS_WBT}})
    assert log_of(world, SMB).content == entries((CLIENT, "FindServices"))


def test_find_services_on_controlled_target_shows_local_services() -> None:
    """Reference §6.5 / §1.3: all services, local included, when the target is controlled."""
    world = make_world()
    state = owning(CLIENT, SMB, known_networks={LAN1, LAN2})
    after = world.step(state, find_services(CLIENT, SMB), "a", ATTACKER)
    assert after == state.evolve(known_services={SMB: SMB_SERVICES})
    self_scan = world.step(state, find_services(CLIENT, CLIENT), "a", ATTACKER)
    assert self_scan.known_services == {CLIENT: {MS_WBT, POWERSHELL}}


def test_find_services_replaces_rather_than_merges() -> None:
    """Reference §6.5 / §12.2 item 4: known_services[target] is replaced by the found set;
    a known host adds no networks."""
    world = make_world()
    state = owning(CLIENT, known_hosts={CLIENT, SMB},
                   known_services={SMB: SMB_SERVICES | {SSH}, DB: {SSH}})
    after = world.step(state, find_services(CLIENT, SMB), "a", ATTACKER)
    assert after == state.evolve(known_services={SMB: frozenset({MS_DS, MS_WBT}), DB: frozenset({SSH})})
    assert after.known_networks == frozenset()
    assert world.step(after, find_services(CLIENT, SMB), "a", ATTACKER) is after  # same result


def test_find_services_nothing_found_keeps_state_but_logs() -> None:
    """Reference §6.5: no service found (a router; a host with only local services that
    is not controlled) leaves the state unchanged; the log is still written."""
    world = make_world("two_networks")
    client5 = IP("192.168.2.6")
    state = owning(CLIENT)
    assert world.step(state, find_services(CLIENT, client5), "a", ATTACKER) is state
    assert world.step(state, find_services(CLIENT, ROUTER2), "a", ATTACKER) is state
    assert log_of(world, client5).content == entries((CLIENT, "FindServices"))
    assert log_of(world, ROUTER2).content == entries((CLIENT, "FindServices"))
    owner = owning(client5)
    assert world.step(owner, find_services(client5, client5), "a", ATTACKER).known_services == {
        client5: {BASH}}


def test_find_services_preconditions_return_same_state() -> None:
    """Reference §6.5 preconditions: source controlled; target reachable (client -> .1.5
    is not allowed; a non-world IP is never reachable)."""
    world = make_world("two_networks_tiny")
    state = owning(CLIENT)
    assert world.step(state, find_services(SMB, SMB), "a", ATTACKER) is state
    assert world.step(state, find_services(CLIENT, ROUTER1), "a", ATTACKER) is state
    assert world.step(state, find_services(CLIENT, NOWHERE), "a", ATTACKER) is state
    assert log_of(world, SMB).content == log_of(world, ROUTER1).content == ""
    small = make_world()
    small_state = owning(CLIENT)
    assert small.step(small_state, find_services(CLIENT, OTHER1), "a", ATTACKER) is small_state
    assert log_of(small, OTHER1).content == ""


# ---------------------------------------------------------------------------- FindData §6.6
def test_find_data_on_controlled_target_unions_all_node_data_with_log() -> None:
    """Reference §6.6: all the node's data, the log with its current content (the new
    entry included), are unioned into known_data[target]; other entries stay."""
    world = make_world()
    extra = Data("Someone", "Else")
    state = owning(CLIENT, SMB, known_data={SMB: {extra}})
    after = world.step(state, find_data(CLIENT, SMB), "a", ATTACKER)
    content = entries((CLIENT, "FindData"))
    assert after == state.evolve(known_data={SMB: SMB_DATA | {extra, LOG_FILE}})
    (log_file,) = [d for d in after.known_data[SMB] if d == LOG_FILE]
    assert (log_file.content, log_file.size) == (content, len(content))


def test_find_data_keeps_older_log_copy() -> None:
    """Reference §6.6 / §12.2 item 6 and the edge-case transcript: set union keeps the
    existing equal log, so the agent's copy stays stale (size 72 on the C&C)."""
    world = make_world()
    state = first_state(world)
    once = world.step(state, find_data(CNC, CNC), "a", ATTACKER)
    first_log = entries((CNC, "FindData"))
    assert once.known_data == {CNC: frozenset({LOG_FILE})}
    (log_file,) = once.known_data[CNC]
    assert (log_file.content, log_file.size) == (first_log, 72)
    twice = world.step(once, find_data(CNC, CNC), "a", ATTACKER)
    assert twice is once
    (still,) = twice.known_data[CNC]
    assert (still.content, still.size) == (first_log, 72)
    assert log_of(world, CNC).content == entries((CNC, "FindData"), (CNC, "FindData"))
    # Even when the union does change (new data arrived), the old log copy is kept.
    world.step(exfil_ready(world), exfiltrate(SMB, CNC, SECRET), "other", ATTACKER)
    third = world.step(twice, find_data(CNC, CNC), "a", ATTACKER)
    assert third.known_data[CNC] == {LOG_FILE, SECRET}
    (kept,) = [d for d in third.known_data[CNC] if d == LOG_FILE]
    assert (kept.content, kept.size) == (first_log, 72)
    assert log_of(world, CNC).size > 72


def test_find_data_on_uncontrolled_target_learns_nothing_but_logs() -> None:
    """Reference §6.6: a target that is not controlled yields nothing; the log is written."""
    world = make_world()
    state = owning(CLIENT)
    assert world.step(state, find_data(CLIENT, SMB), "a", ATTACKER) is state
    assert log_of(world, SMB).content == entries((CLIENT, "FindData"))


def test_find_data_preconditions_return_same_state() -> None:
    """Reference §6.6 preconditions: source controlled, target reachable from it."""
    world = make_world()
    state = owning(CLIENT, OTHER1)
    assert world.step(state, find_data(SMB, OTHER1), "a", ATTACKER) is state  # source not controlled
    assert world.step(state, find_data(CLIENT, OTHER1), "a", ATTACKER) is state  # unreachable
    assert world.step(state, find_data(CLIENT, NOWHERE), "a", ATTACKER) is state  # not in the world
    assert log_of(world, OTHER1).content == ""


def test_find_data_learns_target_blocks() -> None:
    """Reference §6.6: fw_blocks[target] is unioned into known_blocks[target] (only that
    key, not the reverse direction)."""
    world = make_world()
    defender = owning(SMB)
    world.step(defender, block(SMB, SMB, DB), "d", DEFENDER)
    attacker = owning(SMB, known_blocks={SMB: {NOWHERE}})
    after = world.step(attacker, find_data(SMB, SMB), "a", ATTACKER)
    assert after.known_blocks == {SMB: frozenset({DB, NOWHERE})}
    assert world.step(after, find_data(SMB, SMB), "a", ATTACKER) is after


# ---------------------------------------------------------------------------- ExploitService §6.7
def test_exploit_controls_target_and_adds_its_networks_not_known_hosts() -> None:
    """Reference §6.7 effect / §12.2 item 5: the target joins controlled_hosts and its
    networks known_networks; it is not added to known_hosts."""
    world = make_world()
    state = owning(CLIENT, known_services={SMB: {MS_DS}})
    after = world.step(state, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER)
    assert after == GameState(controlled_hosts={CLIENT, SMB}, known_hosts={CLIENT},
                              known_services={SMB: {MS_DS}}, known_networks={LAN1})
    assert log_of(world, SMB).content == entries((CLIENT, "ExploitService"))


def test_exploit_already_controlled_target() -> None:
    """Reference §6.7 effect on a controlled target: only missing networks are added."""
    world = make_world()
    state = owning(CLIENT, SMB, known_services={SMB: {MS_DS}})
    after = world.step(state, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER)
    assert after == state.evolve(known_networks=frozenset({LAN1}))
    assert world.step(after, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER) is after


@pytest.mark.parametrize("service", [
    Service("microsoft-ds", "passive", "10.0.19041", True),   # is_local differs
    Service("microsoft-ds", "passive", "10.0.19042", False),  # version differs
    Service("microsoft-ds", "active", "10.0.19041", False),   # type differs
    Service("microsoft-dz", "passive", "10.0.19041", False),  # name differs
], ids=["is_local", "version", "type", "name"])
def test_exploit_service_compared_on_all_four_fields(service: Service) -> None:
    """Reference §6.7 precondition 5: the node must have exactly this Service (all four
    fields), even if the agent "knows" it; the log is written anyway (checks 1-3 passed)."""
    world = make_world()
    state = owning(CLIENT, known_services={SMB: {service}})
    assert world.step(state, exploit(CLIENT, SMB, service), "a", ATTACKER) is state
    assert log_of(world, SMB).content == entries((CLIENT, "ExploitService"))


def test_exploit_service_not_known_to_agent() -> None:
    """Reference §6.7 precondition 6: known_services[target] must contain the Service."""
    world = make_world()
    for state in (owning(CLIENT), owning(CLIENT, known_services={SMB: {MS_WBT}}),
                  owning(CLIENT, known_services={DB: {MS_DS}})):
        assert world.step(state, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER) is state


def test_exploit_preconditions_one_to_four() -> None:
    """Reference §6.7 preconditions 1-4: source controlled; target exists; reachable;
    target node has services. The log is written only when checks 1-3 passed."""
    world = make_world()
    known = {SMB: {MS_DS}, OTHER1: {SSH}, NOWHERE: {MS_DS}, ROUTER2: {MS_DS}}
    not_owner = owning(DB, known_services=known)
    assert world.step(not_owner, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER) is not_owner  # 1
    state = owning(CLIENT, known_services=known)
    assert world.step(state, exploit(CLIENT, NOWHERE, MS_DS), "a", ATTACKER) is state  # 2
    assert world.step(state, exploit(CLIENT, OTHER1, SSH), "a", ATTACKER) is state  # 3
    assert world.step(state, exploit(CLIENT, ROUTER2, MS_DS), "a", ATTACKER) is state  # 4
    assert log_of(world, SMB).content == log_of(world, OTHER1).content == ""
    assert log_of(world, ROUTER2).content == entries((CLIENT, "ExploitService"))


def test_three_net_exploit_chain() -> None:
    """Reference §5.3 three_net_scenario note: client -> smb -> AD is the intended path."""
    world = make_world("three_net_scenario")
    ad = IP("192.168.3.2")
    active_directory = svc("active-directory", "10.0.19041", False)
    state = owning(CLIENT)
    state = world.step(state, find_services(CLIENT, SMB), "a", ATTACKER)
    state = world.step(state, exploit(CLIENT, SMB, MS_DS), "a", ATTACKER)
    blocked = world.step(state, find_services(CLIENT, ad), "a", ATTACKER)
    assert blocked is state  # the client cannot reach LAN .3
    state = world.step(state, find_services(SMB, ad), "a", ATTACKER)
    assert state.known_services[ad] == {active_directory}
    state = world.step(state, exploit(SMB, ad, active_directory), "a", ATTACKER)
    assert state.controlled_hosts == {CLIENT, SMB, ad}
    assert state.known_networks == {LAN1, Network("192.168.3.0", 24)}


# ---------------------------------------------------------------------------- ExfiltrateData §6.8
def exfil_ready(world: GameWorld) -> GameState:
    """The agent controls smb and the C&C, after FindData on smb."""
    state = owning(CLIENT, SMB, CNC)
    return world.step(state, find_data(SMB, SMB), "a", ATTACKER)


def test_exfiltrate_adds_data_to_agent_and_world() -> None:
    """Reference §6.8 effect: data joins known_data[target] and the target node's world
    data; the target's log gets the entry."""
    world = make_world()
    state = exfil_ready(world)
    after = world.step(state, exfiltrate(SMB, CNC, SECRET), "a", ATTACKER)
    known = dict(state.known_data)
    known[CNC] = frozenset({SECRET})
    assert after == state.evolve(known_data=known)
    assert SECRET in world.node_data("outside_node")
    assert log_of(world, CNC).content == entries((SMB, "ExfiltrateData"))
    assert world.step(after, exfiltrate(SMB, CNC, SECRET), "a", ATTACKER) is after


def test_exfiltrated_data_is_seen_by_another_agents_find_data() -> None:
    """Reference §6.1 / §6.8: world data are global until reset."""
    world = make_world()
    world.step(exfil_ready(world), exfiltrate(SMB, CNC, SECRET), "a", ATTACKER)
    other = owning(CNC)
    found = world.step(other, find_data(CNC, CNC), "b", ATTACKER)
    assert found.known_data[CNC] == {SECRET, LOG_FILE}
    world.reset()
    assert world.step(other, find_data(CNC, CNC), "b", ATTACKER).known_data[CNC] == {LOG_FILE}


def test_exfiltrate_log_file_and_to_local_host() -> None:
    """Reference §6.8: any controlled host is a valid destination; logs can be exfiltrated."""
    world = make_world()
    state = world.step(owning(SMB, WEB), find_data(SMB, SMB), "a", ATTACKER)
    after = world.step(state, exfiltrate(SMB, WEB, LOG_FILE), "a", ATTACKER)
    assert after.known_data[WEB] == {LOG_FILE}
    # The web server's own (equal) log stays; now it holds one entry, the exfiltration.
    assert log_of(world, WEB).content == entries((SMB, "ExfiltrateData"))
    assert world.node_data("web_server") == {Data("User2", "WebServerData"), LOG_FILE}


def test_exfiltrate_preconditions_return_same_state() -> None:
    """Reference §6.8 preconditions 1-4 and 6: target controlled, source controlled,
    reachable, data known at the source, data present on the source node. The target's
    log is written only once 1-4 passed (step 5)."""
    world = make_world()
    ready = exfil_ready(world)
    cases = [
        ready.evolve(controlled_hosts=ready.controlled_hosts - {CNC}),  # 1: target not controlled
        ready.evolve(controlled_hosts=ready.controlled_hosts - {SMB}),  # 2: source not controlled
        owning(CLIENT, SMB, CNC),  # 4: data not known at the source
        owning(CLIENT, SMB, CNC, known_data={CLIENT: {SECRET}}),  # 4: known at another host
    ]
    for state in cases:
        assert world.step(state, exfiltrate(SMB, CNC, SECRET), "a", ATTACKER) is state
    assert log_of(world, CNC).content == ""
    # 3: smb (LAN .1) cannot reach the client (LAN .2)
    assert world.step(ready, exfiltrate(SMB, CLIENT, SECRET), "a", ATTACKER) is ready
    assert log_of(world, CLIENT).content == ""
    # 6: known to the agent but not on the node: logged, nothing else
    fake = Data("User9", "NotThere")
    state = owning(SMB, CNC, known_data={SMB: {fake}})
    assert world.step(state, exfiltrate(SMB, CNC, fake), "a", ATTACKER) is state
    assert log_of(world, CNC).content == entries((SMB, "ExfiltrateData"))
    assert fake not in world.node_data("outside_node")


# ---------------------------------------------------------------------------- BlockIP §6.9
def test_block_ip_blocks_both_directions_for_everyone() -> None:
    """Reference §6.9: both directions leave the firewall, appear in fw_blocks and in the
    agent's known_blocks, the agent is recorded as author; other agents are affected."""
    world = make_world()
    assert world.reachable(SMB, DB) and world.reachable(DB, SMB)
    defender = owning(SMB)
    after = world.step(defender, block(SMB, SMB, DB), "d", DEFENDER)
    assert after == defender.evolve(known_blocks={SMB: frozenset({DB}), DB: frozenset({SMB})})
    assert world.fw_blocks == {SMB: {DB}, DB: {SMB}}
    assert world.agent_fw_rules == {(SMB, DB): {"d"}, (DB, SMB): {"d"}}
    assert not world.reachable(SMB, DB) and not world.reachable(DB, SMB)
    assert world.reachable(SMB, WEB) and world.reachable(CLIENT, SMB)
    attacker = owning(DB, SMB)
    assert world.step(attacker, find_services(DB, SMB), "a", ATTACKER) is attacker
    assert world.step(attacker, find_services(SMB, DB), "a", ATTACKER) is attacker
    assert world.step(after, block(SMB, SMB, DB), "d", DEFENDER) is after  # nothing new
    assert log_of(world, SMB).content == entries((SMB, "BlockIP"), (SMB, "BlockIP"))


def test_block_ip_of_target_itself_blocks_nothing() -> None:
    """Reference §6.9: blocked == target blocks nothing; the log is still written."""
    world = make_world()
    state = owning(CLIENT, SMB)
    assert world.step(state, block(CLIENT, SMB, SMB), "d", DEFENDER) is state
    assert world.fw_blocks == {} and world.agent_fw_rules == {}
    assert world.reachable(CLIENT, SMB) and world.reachable(SMB, SMB)
    assert log_of(world, SMB).content == entries((CLIENT, "BlockIP"))


def test_block_ip_preconditions_return_same_state() -> None:
    """Reference §6.9 preconditions: source controlled, target controlled, reachable."""
    world = make_world()
    cases = [(owning(SMB), block(CLIENT, SMB, DB)),   # source not controlled
             (owning(CLIENT), block(CLIENT, SMB, DB)),  # target not controlled
             (owning(SMB, CLIENT), block(SMB, CLIENT, DB))]  # .1.2 cannot reach .2.2
    for state, action in cases:
        assert world.step(state, action, "d", DEFENDER) is state
    assert world.fw_blocks == {} and world.agent_fw_rules == {}
    assert world.reachable(SMB, DB)
    assert log_of(world, SMB).content == log_of(world, CLIENT).content == ""


# ---------------------------------------------------------------------------- false positives §6.3
def refused_actions(source: IP, target: IP) -> dict[str, Action]:
    return {"scan": scan(source, Network(target.ip, 32)),
            "find_services": find_services(source, target),
            "find_data": find_data(source, target),
            "exploit": exploit(source, target, MS_DS),
            "exfiltrate": exfiltrate(source, target, SECRET),
            "block": block(source, target, WEB)}


@pytest.mark.parametrize("kind", list(refused_actions(DB, SMB)))
@pytest.mark.parametrize("role", [DEFENDER, BENIGN, ATTACKER], ids=str)
def test_refused_by_a_block_counts_false_positive_for_its_author(kind: str, role: AgentRole) -> None:
    """Reference §6.3: a refused connection by a Defender or Benign agent gives every
    author of a block on exactly that (src, dst) pair one false positive; an attacker's
    refusal records nothing; the refusal returns the same state."""
    world = make_world()
    world.step(owning(SMB), block(SMB, SMB, DB), "author", DEFENDER)
    actor = owning(DB, SMB, known_services={SMB: {MS_DS}}, known_data={DB: {SECRET}})
    assert world.step(actor, refused_actions(DB, SMB)[kind], "actor", role) is actor
    expected = {} if role is ATTACKER else {"author": 1}
    assert world.false_positives == Counter(expected)


def test_false_positive_only_for_authors_of_that_exact_pair() -> None:
    """Reference §6.3: every author of the (src, dst) block gains one; authors of other
    pairs and non-authors gain nothing; base-configuration refusals record nothing."""
    world = make_world()
    world.step(owning(SMB), block(SMB, SMB, DB), "d1", DEFENDER)
    world.step(owning(SMB), block(SMB, SMB, DB), "d2", DEFENDER)
    world.step(owning(SMB), block(SMB, SMB, WEB), "d3", DEFENDER)
    benign = owning(DB, CLIENT)
    world.step(benign, find_services(DB, SMB), "b", BENIGN)
    assert world.false_positives == Counter({"d1": 1, "d2": 1})
    world.step(benign, find_services(CLIENT, OTHER1), "b", BENIGN)  # base config refuses
    world.step(benign, find_services(CLIENT, ROUTER1), "b", DEFENDER)
    world.step(benign, find_services(CLIENT, NOWHERE), "b", DEFENDER)
    assert world.false_positives == Counter({"d1": 1, "d2": 1})
    world.step(owning(SMB), find_services(SMB, DB), "b", DEFENDER)  # the other direction
    assert world.false_positives == Counter({"d1": 2, "d2": 2})


def test_scan_counts_one_false_positive_per_blocked_host() -> None:
    """Reference §6.4 / §6.3: each unreachable IP of the range goes through the rule."""
    world = make_world()
    world.step(owning(SMB), block(SMB, SMB, DB), "d", DEFENDER)
    world.step(owning(WEB), block(WEB, WEB, DB), "d", DEFENDER)
    scanner = owning(DB)
    after = world.step(scanner, scan(DB, LAN1), "b", BENIGN)
    assert after.known_hosts == {DB, ROUTER1, OTHER1, OTHER2}
    assert world.false_positives == Counter({"d": 2})


def test_exploit_of_non_world_target_is_refused_before_the_firewall() -> None:
    """Reference §6.7 order (target exists before reachability) vs §6.5 (reachability
    only): a block on a non-world IP counts for FindServices but not for ExploitService."""
    world = make_world()
    world.step(owning(SMB), block(SMB, SMB, NOWHERE), "d", DEFENDER)
    actor = owning(SMB, known_services={NOWHERE: {MS_DS}})
    assert world.step(actor, exploit(SMB, NOWHERE, MS_DS), "b", BENIGN) is actor
    assert world.false_positives == Counter()
    assert world.step(actor, find_services(SMB, NOWHERE), "b", BENIGN) is actor
    assert world.false_positives == Counter({"d": 1})


# ---------------------------------------------------------------------------- firewall and reset
def test_without_firewall_every_ip_reaches_every_ip() -> None:
    """Reference §5.1 "Firewall": with use_firewall false every IP reaches every IP."""
    world = make_world(use_firewall=False)
    ips = list(world.scenario.ip_to_node)
    assert all(world.reachable(a, b) for a in ips for b in ips)
    assert world.step(owning(SMB), find_services(SMB, CLIENT), "a", ATTACKER).known_services == {
        CLIENT: {MS_WBT}}
    firewalled = make_world()
    assert not firewalled.reachable(SMB, CLIENT) and not firewalled.reachable(CNC, SMB)


@pytest.mark.parametrize("how", ["reset", "reset_episode"])
def test_world_reset_restores_data_logs_firewall_and_clears_blocks(how: str) -> None:
    """Reference §6.10 step 3: data, logs and firewall come back from the originals;
    fw_blocks and agent_fw_rules are cleared (and so are false positives)."""
    world = make_world()
    original = {node: world.node_data(node) for node in world.scenario.node_data}
    state = world.step(exfil_ready(world), exfiltrate(SMB, CNC, SECRET), "a", ATTACKER)
    world.step(owning(SMB), block(SMB, SMB, DB), "d", DEFENDER)
    world.step(owning(DB), find_services(DB, SMB), "b", BENIGN)
    assert world.false_positives and world.fw_blocks and not world.reachable(SMB, DB)
    assert log_of(world, SMB).content
    getattr(world, how)()
    for node, data in original.items():
        assert world.node_data(node) == data
        assert all(d.content == "" and d.size == 0 for d in world.node_data(node))
    assert world.fw_blocks == {} and world.agent_fw_rules == {}
    assert world.false_positives == Counter()
    assert world.reachable(SMB, DB) and world.reachable(DB, SMB)
    assert world.step(owning(CNC), find_data(CNC, CNC), "b", ATTACKER).known_data[CNC] == {LOG_FILE}
    assert state.known_data[CNC] == {SECRET}  # agent states are not the world's business


def test_reset_keeps_addresses_without_randomisation() -> None:
    """Reference §6.10 step 2: addresses change only when the topology change is asked."""
    world = make_world()
    world.reset()
    assert world.ip_map == {ip: ip for ip in world.scenario.ip_to_node}
    assert world.ip_to_node == world.scenario.ip_to_node
