"""GameState's text form and the errors of its dict/JSON form (protocol/state.py).

The text form is upstream's ``State<…>`` with sets printed as Python prints them
(reference netsecgame.md §1.9); a malformed state is refused with one line naming the
field, what was expected and what came (DESIGN §7).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import IP, GameState, Network, ProtocolError, Service

A, B = IP("10.0.0.1"), IP("10.0.0.2")


def _valid() -> dict[str, Any]:
    return {"known_networks": [], "known_hosts": [], "controlled_hosts": [], "known_services": {},
            "known_data": {}}


def _refused(value: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        GameState.from_dict(value)
    return str(info.value)


def test_empty_state_text() -> None:
    """reference §1.9: an empty set prints as ``set()``, an empty map as ``{}``."""
    assert str(GameState()) == "State<nets:set(); known:set(); owned:set(); services:{}; data:{}; blocks:{}>"
    assert repr(GameState()) == str(GameState())


def test_state_text_with_several_items() -> None:
    """reference §1.9: set items are joined by ", " inside braces, map entries likewise."""
    ssh = Service("ssh", "passive", "8.1.0", False)
    state = GameState(known_hosts={A, B}, known_networks={Network("10.0.0.0", 24)},
                      known_services={A: {ssh}, B: {ssh}})
    hosts = {"{10.0.0.1, 10.0.0.2}", "{10.0.0.2, 10.0.0.1}"}  # set order is the process's hash order
    services = (f"{{10.0.0.1: {{{ssh!r}}}, 10.0.0.2: {{{ssh!r}}}}}")
    text = str(state)
    prefix = "State<nets:{10.0.0.0/24}; known:"
    assert text.startswith(prefix)
    assert text[len(prefix):len(prefix) + 20] in hosts
    assert text[len(prefix) + 20:] == f"; owned:set(); services:{services}; data:{{}}; blocks:{{}}>"


@pytest.mark.parametrize("key", ["known_networks", "known_hosts", "controlled_hosts", "known_services", "known_data"])
def test_missing_part_is_named(key: str) -> None:
    """reference §1.9: the first five keys are required; known_blocks is optional."""
    value = _valid()
    del value[key]
    assert _refused(value) == f"state.{key}: expected a value (required), got nothing"
    assert GameState.from_dict(_valid()) == GameState()


def test_wrong_containers_are_named() -> None:
    """reference §1.9: sets are lists, maps are objects keyed by IP strings."""
    assert _refused({**_valid(), "known_hosts": {}}) == "state.known_hosts: expected a list, got dict {}"
    assert _refused({**_valid(), "known_data": []}) == (
        "state.known_data: expected an object keyed by IP address, got list []")
    assert _refused({**_valid(), "known_services": {5: []}}) == (
        "state.known_services: expected IP address keys, got int 5")
    assert _refused({**_valid(), "known_blocks": {"nope": []}}) == (
        "state.known_blocks: expected IP address keys, got str 'nope'")


def test_invalid_json_is_named() -> None:
    """protocol/state.py from_json: unparsable text is a ProtocolError carrying the JSON error."""
    with pytest.raises(json.JSONDecodeError) as decode:
        json.loads("{")
    with pytest.raises(ProtocolError) as info:
        GameState.from_json("{")
    assert str(info.value) == f"state: expected a JSON object, got invalid JSON ({decode.value})"
