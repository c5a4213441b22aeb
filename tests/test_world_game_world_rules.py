"""GameWorld rules the scenario worlds never reach: hand-built worlds whose nodes hold no
data or sit in no network (``Scenario`` is public and may be built by hand), blocks that
accumulate, and BlockIP's ``blocked_ip`` spelling. Reference netsecgame.md §6.2-§6.9.
"""

from __future__ import annotations

import random

from protocol import IP, Action, ActionType, Data, GameState, Network
from world.game_world import GameWorld
from world.scenario import LOG_FILE, Scenario
from world.task import View

from .world_samples import (
    ATTACKER,
    CNC,
    DEFENDER,
    SECRET,
    SMB,
    SSH,
    block,
    exfiltrate,
    exploit,
    find_data,
    find_services,
    make_world,
    owning,
)

HOME, LONE, BARE = IP("10.0.0.2"), IP("10.0.0.3"), IP("10.9.9.9")
LAN = Network("10.0.0.0", 24)


def hand_world() -> GameWorld:
    """``home`` (in LAN) holds SECRET but no log file; ``bare`` (in LAN) has no data entry at
    all; ``lone`` is a world IP in no network, with ssh. No firewall: everyone reaches everyone."""
    scenario = Scenario(name="hand", ip_to_node={HOME: "home", LONE: "lone", BARE: "bare"},
                        networks={LAN: (HOME, BARE)},
                        node_services={"lone": (SSH,), "bare": (SSH,)},
                        node_data={"home": frozenset({SECRET})},
                        allow_rules=(), start_candidates=(HOME,))
    return GameWorld(scenario, random.Random(1), use_firewall=False)


def test_every_node_has_a_log_file_even_without_data_in_a_hand_built_world() -> None:
    """§6.3 (newer upstream: a missing log is created): a node without a log file or without
    any data entry still shows an empty log; one with data keeps it beside the log."""
    world = hand_world()
    assert world.node_data("home") == frozenset({SECRET, LOG_FILE})
    assert world.node_data("bare") == frozenset({LOG_FILE})
    assert world.node_data("lone") == frozenset({LOG_FILE})
    assert world.node_data("no-such-node") == frozenset({LOG_FILE})


def test_a_logged_node_without_data_shows_just_its_log() -> None:
    """§6.3: the first log entry on a node with no data entry makes its log file."""
    world = hand_world()
    world.step(owning(HOME), find_services(HOME, BARE), "a", ATTACKER)
    [log] = world.node_data("bare")
    assert (log.owner, log.id, log.type) == ("system", "logfile", "log")
    assert '"source_host": "10.0.0.2"' in log.content


def test_a_random_start_datum_of_a_host_without_data_is_none() -> None:
    """§6.2 step 6: ``random`` picks a datum of that host; a host with no data (or an address
    of no node) gets an empty set, not an error."""
    world = hand_world()
    nowhere = IP("8.8.8.8")
    state = world.start_state(View(controlled_hosts=(HOME,), known_data={BARE: ("random",), nowhere: ("random",)}))
    assert state.known_data == {BARE: frozenset(), nowhere: frozenset()}
    state = world.start_state(View(controlled_hosts=(HOME,), known_data={HOME: ("random",)}))
    assert state.known_data == {HOME: frozenset({SECRET})}


def test_find_services_on_a_host_in_no_network_adds_the_host_and_no_network() -> None:
    """§6.5: the target becomes known and every world network containing it (none) is added."""
    world = hand_world()
    start = owning(HOME, known_networks={LAN})
    state = world.step(start, find_services(HOME, LONE), "a", ATTACKER)
    assert state.known_hosts == {HOME, LONE}
    assert state.known_networks == {LAN}
    assert state.known_services == {LONE: frozenset({SSH})}


def test_exploiting_a_host_in_no_network_controls_it_and_adds_no_network() -> None:
    """§6.7: control of the target plus the (no) networks containing it; exploiting it
    again changes nothing (the same state object)."""
    world = hand_world()
    start = owning(HOME, known_networks={LAN}, known_services={LONE: {SSH}})
    state = world.step(start, exploit(HOME, LONE, SSH), "a", ATTACKER)
    assert state.controlled_hosts == {HOME, LONE}
    assert state.known_networks == {LAN}
    assert world.step(state, exploit(HOME, LONE, SSH), "a", ATTACKER) is state


def test_exfiltrating_from_a_node_without_data_moves_nothing() -> None:
    """§6.8 check 6: the source node must hold the datum; an agent that only believes it does
    changes nothing (the target's log is still written, check 5)."""
    world = hand_world()
    start = owning(HOME, BARE, known_data={BARE: {SECRET}})
    assert world.step(start, exfiltrate(BARE, HOME, SECRET), "a", ATTACKER) is start
    [log] = world.node_data("home") - {SECRET}
    assert "ExfiltrateData" in log.content, "home's log has the entry"


def test_exfiltrating_to_a_node_without_data_stores_the_datum_there() -> None:
    """§6.8: the datum joins the world data of the target's node, even one with no data yet,
    and the agent's known_data of the target."""
    world = hand_world()
    start = owning(HOME, BARE, known_data={HOME: {SECRET}})
    state = world.step(start, exfiltrate(HOME, BARE, SECRET), "a", ATTACKER)
    assert state.known_data[BARE] == frozenset({SECRET})
    assert SECRET in world.node_data("bare")


def test_blocks_on_one_target_accumulate_for_every_agent() -> None:
    """§6.9 and §6.6: each BlockIP adds to the visible fw_blocks of the target; a second block
    on the same target keeps the first, and another agent's FindData learns both."""
    world = make_world()
    defender = owning(SMB)
    defender = world.step(defender, block(SMB, SMB, CNC), "d", DEFENDER)
    defender = world.step(defender, block(SMB, SMB, IP("192.168.2.2")), "d", DEFENDER)
    assert defender.known_blocks[SMB] == {CNC, IP("192.168.2.2")}
    other = world.step(owning(SMB), find_data(SMB, SMB), "x", DEFENDER)
    assert other.known_blocks[SMB] == {CNC, IP("192.168.2.2")}


def test_blocking_one_ip_on_two_targets_records_both_in_known_blocks() -> None:
    """§6.9: ``known_blocks[blocked] ∋ target`` for each target it was blocked on."""
    world = make_world()
    db = IP("192.168.1.3")
    state = owning(SMB, db)
    state = world.step(state, block(SMB, SMB, CNC), "d", DEFENDER)
    state = world.step(state, block(SMB, db, CNC), "d", DEFENDER)
    assert state.known_blocks[CNC] == {SMB, db}
    assert state.known_blocks[SMB] == {CNC} and state.known_blocks[db] == {CNC}


def test_block_ip_accepts_the_blocked_ip_spelling() -> None:
    """protocol.action accepts ``blocked_ip`` for ``blocked_host`` (upstream's WhiteBox name,
    reference §6.9 notes its crash there): the world blocks the same way."""
    world = make_world()
    action = Action(ActionType.BlockIP, {"source_host": SMB, "target_host": SMB, "blocked_ip": CNC})
    state = world.step(owning(SMB), action, "d", DEFENDER)
    assert state.known_blocks == {SMB: frozenset({CNC}), CNC: frozenset({SMB})}
    assert not world.reachable(SMB, CNC) and not world.reachable(CNC, SMB)


def test_a_datum_exfiltrated_to_the_cnc_is_visible_in_its_node_data() -> None:
    """§6.1/§6.8: the world data of the target node changes for everyone."""
    world = make_world()
    state = world.step(owning(SMB, CNC), find_data(SMB, SMB), "a", ATTACKER)
    state = world.step(state, exfiltrate(SMB, CNC, SECRET), "a", ATTACKER)
    assert SECRET in world.node_data(world.ip_to_node[CNC])
    assert isinstance(state, GameState) and SECRET in state.known_data[CNC]
    assert Data("User1", "DataFromServer1") == SECRET


def test_find_data_that_learns_nothing_new_returns_the_same_state() -> None:
    """§6.6 and the module's promise (a step that changes nothing allocates nothing): a second
    FindData on a blocked, controlled target whose data and blocks the agent already knows
    hands back the very same state (the log's new content is an equal Data: §6.6 union)."""
    world = make_world()
    state = world.step(owning(SMB), block(SMB, SMB, CNC), "d", DEFENDER)
    state = world.step(state, find_data(SMB, SMB), "d", DEFENDER)
    assert state.known_blocks[SMB] == {CNC}
    assert world.step(state, find_data(SMB, SMB), "d", DEFENDER) is state
