"""GameWorld: the six actions and their preconditions, against reference/netsecgame.md
§5.3 and §6.4-§6.9.

Every failed precondition must hand back the very same state object (``is``): the world
never raises and never copies a state that does not change.
"""

from __future__ import annotations

import pytest

from protocol import IP, Data, GameState, Network, Service
from world.scenario import LOG_FILE

from .world_samples import (
    ATTACKER,
    BASH,
    CLIENT,
    CNC,
    DB,
    DEFENDER,
    LAN1,
    LAN2,
    MS_DS,
    MS_WBT,
    NOWHERE,
    OTHER1,
    OTHER2,
    POWERSHELL,
    ROUTER1,
    ROUTER2,
    SECRET,
    SMB,
    SMB_DATA,
    SMB_SERVICES,
    SSH,
    WEB,
    block,
    entries,
    exfil_ready,
    exfiltrate,
    exploit,
    find_data,
    find_services,
    first_state,
    log_of,
    make_world,
    owning,
    scan,
    svc,
)


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
