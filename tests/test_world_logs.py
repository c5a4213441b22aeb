"""GameWorld: log files and their entries, transcript replay at world level, and false
positives counted for block authors, against reference/netsecgame.md §5.1, §6.3 and §9.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from protocol import IP, Action, AgentRole, Network
from world.scenario import LOG_FILE

from .transcripts import load_transcript, normalize_state
from .world_samples import (
    ATTACKER,
    BENIGN,
    CLIENT,
    CNC,
    DB,
    DEFENDER,
    LAN1,
    MS_DS,
    NOWHERE,
    OTHER1,
    OTHER2,
    ROUTER1,
    SECRET,
    SMB,
    WEB,
    block,
    entries,
    exfiltrate,
    exploit,
    find_data,
    find_services,
    first_state,
    log_of,
    make_world,
    owning,
    scan,
)


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
