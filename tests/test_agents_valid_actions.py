"""Client-side helpers (reference netsecgame.md §10.3): generate_valid_actions and
state_as_ordered_string.
"""

from __future__ import annotations

import json

from agents.utils import generate_valid_actions, state_as_ordered_string
from protocol import IP, Action, ActionType, Data, GameState, Network, Service

from .agents_samples import D1, NET, SSH, A, E, H, act, small_state

# =========================================================================== generate_valid_actions


class TestGenerateValidActions:
    def test_exact_members_of_small_state(self) -> None:
        """reference §10.3: scans per controlled host and network, service scans and exploits
        per controlled host, FindData(h, h), exfiltration to every other controlled host."""
        expected = {
            act(ActionType.ScanNetwork, source_host=A, target_network=NET),
            act(ActionType.ScanNetwork, source_host=E, target_network=NET),
            *(
                act(ActionType.FindServices, source_host=c, target_host=h)
                for c in (A, E)
                for h in (A, H, E)
            ),
            act(ActionType.ExploitService, source_host=A, target_host=H, target_service=SSH),
            act(ActionType.ExploitService, source_host=E, target_host=H, target_service=SSH),
            act(ActionType.FindData, source_host=A, target_host=A),
            act(ActionType.FindData, source_host=E, target_host=E),
            act(ActionType.ExfiltrateData, source_host=A, target_host=E, data=D1),
        }
        actions = generate_valid_actions(small_state())
        assert isinstance(actions, set)
        assert len(actions) == 13
        assert actions == expected

    def test_find_data_source_equals_target(self) -> None:
        """reference §10.3: FindData is (h, h) for each controlled h."""
        finds = [
            a for a in generate_valid_actions(small_state()) if a.action_type is ActionType.FindData
        ]
        assert sorted(a.parameters["source_host"] for a in finds) == [A, E]
        assert all(a.parameters["source_host"] == a.parameters["target_host"] for a in finds)

    def test_no_controlled_hosts_no_actions(self) -> None:
        """reference §10.3: everything is generated per controlled host."""
        assert generate_valid_actions(small_state(controlled_hosts=frozenset())) == set()
        assert generate_valid_actions(GameState()) == set()

    def test_exfiltration_from_uncontrolled_known_data(self) -> None:
        """reference §10.3: ExfiltrateData(src, t, d) for every known datum at src and every
        controlled t != src (src need not be controlled)."""
        state = small_state(known_data={H: frozenset({D1})})
        exfils = {
            a for a in generate_valid_actions(state) if a.action_type is ActionType.ExfiltrateData
        }
        assert exfils == {
            act(ActionType.ExfiltrateData, source_host=H, target_host=t, data=D1) for t in (A, E)
        }

    def test_blocks_exclude(self) -> None:
        """reference §10.3: hosts in known_blocks[c] are skipped for FindServices and
        ExploitService from c; exfiltration skips t blocked for src."""
        state = small_state(known_blocks={A: frozenset({H, E})})
        actions = generate_valid_actions(state)
        assert act(ActionType.FindServices, source_host=A, target_host=H) not in actions
        assert act(ActionType.FindServices, source_host=A, target_host=E) not in actions
        assert act(ActionType.FindServices, source_host=A, target_host=A) in actions
        assert act(ActionType.FindServices, source_host=E, target_host=H) in actions
        assert (
            act(ActionType.ExploitService, source_host=A, target_host=H, target_service=SSH)
            not in actions
        )
        assert (
            act(ActionType.ExploitService, source_host=E, target_host=H, target_service=SSH)
            in actions
        )
        assert act(ActionType.ExfiltrateData, source_host=A, target_host=E, data=D1) not in actions
        # scans are never blocked
        assert act(ActionType.ScanNetwork, source_host=A, target_network=NET) in actions
        # E is blocked for A, but not for E itself: FindData(E, E) stays
        assert act(ActionType.FindData, source_host=E, target_host=E) in actions
        assert len(actions) == 13 - 2 - 1 - 1

    def test_find_data_dropped_only_when_blocked_for_every_controlled_host(self) -> None:
        """reference §10.3: FindData(h, h) is added for each controlled c with h not in B[c]."""
        state = small_state(known_blocks={A: frozenset({E}), E: frozenset({E})})
        finds = {a for a in generate_valid_actions(state) if a.action_type is ActionType.FindData}
        assert finds == {act(ActionType.FindData, source_host=A, target_host=A)}

    def test_include_blocks(self) -> None:
        """reference §10.3: with include_blocks, BlockIP(s, t, b) for controlled s, t and every
        known host b, using the key blocked_host."""
        actions = generate_valid_actions(small_state(), include_blocks=True)
        blocks = {a for a in actions if a.action_type is ActionType.BlockIP}
        assert blocks == {
            act(ActionType.BlockIP, source_host=s, target_host=t, blocked_host=b)
            for s in (A, E)
            for t in (A, E)
            for b in (A, H, E)
        }
        assert all(
            set(a.parameters) == {"source_host", "target_host", "blocked_host"} for a in blocks
        )
        assert len(actions) == 13 + 12
        assert not any(
            a.action_type is ActionType.BlockIP for a in generate_valid_actions(small_state())
        )

    def test_include_blocks_respects_known_blocks(self) -> None:
        """reference §10.3: BlockIP(s, t, ·) only when t is not blocked for s."""
        state = small_state(known_blocks={A: frozenset({E})})
        blocks = {
            a
            for a in generate_valid_actions(state, include_blocks=True)
            if a.action_type is ActionType.BlockIP
        }
        pairs = {(a.parameters["source_host"], a.parameters["target_host"]) for a in blocks}
        assert pairs == {(A, A), (E, A), (E, E)}

    def test_actions_are_valid_and_serialisable(self) -> None:
        """The generated actions carry every required parameter and round-trip as JSON."""
        from protocol import validate_action

        for action in generate_valid_actions(small_state(), include_blocks=True):
            validate_action(action)
            assert Action.from_json(action.to_json()) == action

    def test_exfiltration_carries_the_datum_as_the_state_holds_it(self) -> None:
        """Data compare by owner, id and type, so two states whose log differs in content make
        equal actions; each must still send its own log text (what upstream's agent sends)."""
        for content in ("[first]", "[first, second]", "[first]"):
            log = Data("system", "logfile", len(content), "log", content)
            state = small_state(known_data={A: frozenset({log})})
            [action] = [a for a in generate_valid_actions(state) if a.action_type is ActionType.ExfiltrateData
                        and a.parameters["data"] == log]
            assert (action.parameters["data"].content, action.parameters["data"].size) == (content, len(content))


# ===================================================================== state_as_ordered_string


def test_state_as_ordered_string_exact() -> None:
    """reference §10.3: the canonical sorted text; nets as CIDR, hosts as strings,
    services and data by their reprs, no separator between hosts in the maps, a space
    before blocks."""
    state = GameState(
        controlled_hosts={IP("192.168.1.2")},
        known_hosts={IP("192.168.1.2"), IP("192.168.1.10")},
        known_networks={Network("192.168.10.0", 24), Network("192.168.2.0", 24)},
        known_services={
            IP("192.168.1.2"): {
                Service("ssh", "passive", "8.1.0", False),
                Service("http", "passive", "2.4", True),
            },
            IP("192.168.1.10"): {Service("ftp")},
        },
        known_data={IP("192.168.1.2"): {Data("U", "b"), Data("U", "a", size=3, content="x")}},
        known_blocks={IP("192.168.1.2"): {IP("192.168.1.3"), IP("192.168.1.10")}},
    )
    assert state_as_ordered_string(state) == (
        "nets:[192.168.2.0/24,192.168.10.0/24],"
        "hosts:[192.168.1.10,192.168.1.2],"
        "controlled:[192.168.1.2],"
        "services:{192.168.1.10:[Service(name='ftp', type='unknown', version='unknown', "
        "is_local=True)]"
        "192.168.1.2:[Service(name='http', type='passive', version='2.4', is_local=True),"
        "Service(name='ssh', type='passive', version='8.1.0', is_local=False)]},"
        "data:{192.168.1.2:[Data(owner='U', id='a', size=3, type=''),"
        "Data(owner='U', id='b', size=0, type='')]}, "
        "blocks:{192.168.1.2:[192.168.1.10,192.168.1.3]}"
    )


def test_state_as_ordered_string_empty_and_order_independent() -> None:
    """reference §10.3: empty parts; the text does not depend on set order."""
    assert state_as_ordered_string(GameState()) == (
        "nets:[],hosts:[],controlled:[],services:{},data:{}, blocks:{}"
    )
    state = small_state()
    rebuilt = GameState.from_dict(json.loads(json.dumps(state.as_dict)))
    assert state_as_ordered_string(rebuilt) == state_as_ordered_string(state)
