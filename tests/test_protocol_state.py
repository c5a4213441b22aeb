"""Action, GameState and Observation behave as NetSecGame's (reference netsecgame.md
§1.8-§1.10).

Each test cites the reference section it checks.
"""

from __future__ import annotations

import pytest

from protocol import IP, Action, ActionType, Data, GameState, Network, Observation, Service

# --------------------------------------------------------------------------- §1.8 Action


def _find_data(first: str = "source_host") -> Action:
    ip = IP("192.168.12.12")
    if first == "source_host":
        return Action(ActionType.FindData, {"source_host": ip, "target_host": ip})
    return Action(ActionType.FindData, {"target_host": ip, "source_host": ip})


class TestAction:
    def test_fields_and_type_alias(self) -> None:
        """reference §1.8: fields action_type and parameters (default {}); read-only type
        is an alias of action_type."""
        action = Action(ActionType.QuitGame)
        assert action.parameters == {}
        assert action.type is ActionType.QuitGame
        assert action.action_type is ActionType.QuitGame

    def test_exact_repr_and_str(self) -> None:
        """reference §1.8, §11: exact repr/str of an Action."""
        expected = (
            "Action <ActionType.FindData|{'source_host': 192.168.12.12, "
            "'target_host': 192.168.12.12}>"
        )
        assert repr(_find_data()) == expected
        assert str(_find_data()) == expected

    def test_equality_ignores_parameter_order(self) -> None:
        """reference §1.8: equality needs the same type and parameters, in any key order."""
        assert _find_data("source_host") == _find_data("target_host")
        assert hash(_find_data("source_host")) == hash(_find_data("target_host"))

    def test_inequality(self) -> None:
        """reference §1.8: a different type or a different parameter value breaks equality."""
        ip = IP("192.168.12.12")
        assert _find_data() != Action(
            ActionType.FindServices, {"source_host": ip, "target_host": ip}
        )
        assert _find_data() != Action(
            ActionType.FindData, {"source_host": ip, "target_host": IP("192.168.12.13")}
        )
        assert _find_data() != Action(ActionType.FindData, {"source_host": ip})
        assert _find_data() != "Action"

    def test_usable_in_sets(self) -> None:
        """reference §1.8: actions are usable in sets."""
        actions = {
            _find_data("source_host"),
            _find_data("target_host"),
            Action(ActionType.QuitGame),
            Action(ActionType.QuitGame, {}),
        }
        assert len(actions) == 2
        assert _find_data() in actions

    def test_hash_covers_type_and_parameters(self) -> None:
        """reference §1.8: the hash covers the type and the (key, value) pairs."""
        ip = IP("1.1.1.1")
        assert hash(Action(ActionType.FindData, {"source_host": ip, "target_host": ip})) != hash(
            Action(ActionType.FindServices, {"source_host": ip, "target_host": ip})
        )


# --------------------------------------------------------------------------- §1.9 GameState


def small_state() -> GameState:
    return GameState(
        controlled_hosts={IP("192.168.1.2")},
        known_hosts={IP("192.168.1.2"), IP("192.168.1.3")},
        known_services={IP("192.168.1.3"): {Service("ssh", "passive", "8.1.0", False)}},
        known_data={IP("192.168.1.2"): {Data("User1", "DatabaseData")}},
        known_networks={Network("192.168.1.0", 24)},
        known_blocks={IP("192.168.1.2"): {IP("192.168.1.9")}},
    )


class TestGameState:
    def test_defaults_are_empty(self) -> None:
        """reference §1.9: every field defaults to empty."""
        state = GameState()
        assert state.controlled_hosts == frozenset() and state.known_hosts == frozenset()
        assert state.known_networks == frozenset()
        assert state.known_services == {} and state.known_data == {} and state.known_blocks == {}

    def test_positional_constructor_order(self) -> None:
        """reference §1.9: controlled, known_hosts, services, data, networks, blocks."""
        a, b = IP("1.1.1.1"), IP("1.1.1.2")
        state = GameState(
            {a},
            {a, b},
            {b: {Service("s")}},
            {a: {Data("o", "i")}},
            {Network("1.1.1.0", 24)},
            {a: {b}},
        )
        assert state.controlled_hosts == {a}
        assert state.known_hosts == {a, b}
        assert state.known_services == {b: {Service("s")}}
        assert state.known_data == {a: {Data("o", "i")}}
        assert state.known_networks == {Network("1.1.1.0", 24)}
        assert state.known_blocks == {a: {b}}

    def test_immutable_parts(self) -> None:
        """DESIGN: a GameState is immutable (frozensets, maps of frozensets)."""
        state = small_state()
        assert isinstance(state.known_hosts, frozenset)
        assert all(isinstance(v, frozenset) for v in state.known_services.values())
        with pytest.raises(AttributeError):
            state.known_hosts = frozenset()  # type: ignore[misc]

    def test_equality_by_value(self) -> None:
        """reference §1.9: equality compares all six fields by value."""
        assert small_state() == small_state()
        assert GameState() == GameState()

    @pytest.mark.parametrize(
        "field",
        [
            "controlled_hosts",
            "known_hosts",
            "known_services",
            "known_data",
            "known_networks",
            "known_blocks",
        ],
    )
    def test_equality_per_field(self, field: str) -> None:
        """reference §1.9, §11: a difference in any single field breaks equality."""
        changed = {
            "controlled_hosts": frozenset({IP("192.168.1.3")}),
            "known_hosts": frozenset({IP("192.168.1.2")}),
            "known_services": {IP("192.168.1.3"): frozenset({Service("ssh")})},
            "known_data": {IP("192.168.1.2"): frozenset({Data("User1", "Other")})},
            "known_networks": frozenset({Network("192.168.2.0", 24)}),
            "known_blocks": {},
        }
        assert small_state().evolve(**{field: changed[field]}) != small_state()

    def test_trusted_constructor_equals_normal(self) -> None:
        """DESIGN: GameState.trusted builds the same value without conversion."""
        s = small_state()
        t = GameState.trusted(
            s.controlled_hosts,
            s.known_hosts,
            s.known_services,
            s.known_data,
            s.known_networks,
            s.known_blocks,
        )
        assert t == s

    def test_unhashable(self) -> None:
        """reference §1.9: instances are not hashable."""
        with pytest.raises(TypeError):
            hash(small_state())

    def test_str_form(self) -> None:
        """reference §1.9: str() is State<nets:{…}; known:{…}; owned:{…}; services:{…};
        data:{…}; blocks:{…}>."""
        state = GameState(
            controlled_hosts={IP("192.168.1.2")},
            known_hosts={IP("192.168.1.2")},
            known_services={IP("192.168.1.2"): {Service("ssh", "passive", "8.1.0", False)}},
            known_data={IP("192.168.1.2"): {Data("User1", "D")}},
            known_networks={Network("192.168.1.0", 24)},
            known_blocks={IP("192.168.1.2"): {IP("192.168.1.9")}},
        )
        assert str(state) == (
            "State<nets:{192.168.1.0/24}; known:{192.168.1.2}; owned:{192.168.1.2}; "
            "services:{192.168.1.2: {Service(name='ssh', type='passive', version='8.1.0', "
            "is_local=False)}}; "
            "data:{192.168.1.2: {Data(owner='User1', id='D', size=0, type='')}}; "
            "blocks:{192.168.1.2: {192.168.1.9}}>"
        )
        assert str(GameState()).startswith("State<nets:")
        assert repr(state) == str(state)

    def test_evolve_shares_unchanged_parts(self) -> None:
        """DESIGN: evolve replaces some parts and shares the rest."""
        state = small_state()
        newer = state.evolve(known_hosts=frozenset())
        assert newer.known_hosts == frozenset()
        assert newer.known_services is state.known_services


# --------------------------------------------------------------------------- §1.10 Observation


class TestObservation:
    def test_named_tuple(self) -> None:
        """reference §1.10: a named tuple (state, reward, end, info)."""
        obs = Observation(small_state(), -1.0, False, {"a": 1})
        assert obs._fields == ("state", "reward", "end", "info")
        _state, reward, end, info = obs
        assert (reward, end, info) == (-1.0, False, {"a": 1})
        assert obs.state == small_state()
        assert obs == Observation(state=small_state(), reward=-1.0, end=False, info={"a": 1})
        assert obs[1] == -1.0
