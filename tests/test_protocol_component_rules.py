"""Rules of the value objects that test_protocol_components.py leaves open (protocol/components.py).

Orderings are strict where they say ``<``/``>``, comparisons with foreign types raise TypeError
(Python's rule for NotImplemented), and every malformed dict form is refused with one line
naming the field, what was expected and what came (reference netsecgame.md §1.1-§1.6;
DESIGN §7: bad input gets one clear line naming what was wrong).
"""

from __future__ import annotations

import operator
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from protocol import IP, AgentInfo, AgentRole, Data, Network, ProtocolError, Service


def _refused(parse: Callable[[Any], object], value: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(value)
    return str(info.value)


# --------------------------------------------------------------------------- §1.1 IP


def test_fresh_addresses_are_validated() -> None:
    """reference §1.1: an address never seen before is checked (the validation cache only
    remembers good addresses, it does not replace the check)."""
    fresh = f"fd00::{secrets.token_hex(2)}:{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    assert IP(fresh).ip == fresh
    with pytest.raises(ValueError) as info:
        IP(fresh + ":zz")
    assert str(info.value) == f"Invalid IP address provided: {fresh}:zz"


def test_non_string_ip_message() -> None:
    """reference §1.1: a non-string address gets the same "Invalid IP address provided" text."""
    with pytest.raises(ValueError) as info:
        IP(1234)  # type: ignore[arg-type]
    assert str(info.value) == "Invalid IP address provided: 1234"


def test_ip_ordering_is_strict() -> None:
    """reference §1.1: string ordering; an address is neither < nor > itself."""
    a, b = IP("10.0.0.1"), IP("10.0.0.2")
    assert not a < IP("10.0.0.1") and not a > IP("10.0.0.1")
    assert a < b and not b < a and b > a and not a > b
    assert a <= b and not b <= a and b >= a and not a >= b


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
@pytest.mark.parametrize("value", [IP("10.0.0.1"), Data("U", "D")])
def test_ordering_with_a_foreign_type_is_a_type_error(compare: Callable[[Any, Any], bool], value: Any) -> None:
    """reference §1.1, §1.4: IP and Data order only among themselves; anything else is a
    TypeError, as for any Python type that does not know the other."""
    with pytest.raises(TypeError):
        compare(value, "10.0.0.1")


def test_ip_from_dict_messages() -> None:
    """reference §1.1: from_dict accepts exactly {"ip": address}; errors name the field."""
    assert _refused(IP.from_dict, "1.1.1.1") == "ip: expected an object with keys ip, got str '1.1.1.1'"
    assert _refused(IP.from_dict, {}) == "ip.ip: expected a value (required), got nothing"
    assert _refused(IP.from_dict, {"ip": "1.1.1.1", "mask": 24}) == (
        "ip: expected only the keys ip, got unknown key 'mask'")
    assert _refused(IP.from_dict, {"ip": 5}) == "ip.ip: expected a string, got int 5"
    assert _refused(IP.from_dict, {"ip": "nope"}) == "ip.ip: expected an IP address, got str 'nope'"


# --------------------------------------------------------------------------- §1.2 Network


def test_network_ordering_is_strict() -> None:
    """reference §1.2: CIDR ordering; a network is neither < nor > itself."""
    net = Network("10.0.0.0", 8)
    assert not net < Network("10.0.0.0", 8) and not net > Network("10.0.0.0", 8)


def test_network_is_private_of_unnormalised_and_invalid() -> None:
    """reference §1.2: is_private is about the CIDR block, so a non-normalised public network
    (§6.11 produces them) is public; an unparsable one counts as private, like IP's non-addresses."""
    assert Network("175.148.76.156", 26).is_private() is False
    assert Network("192.168.1.77", 24).is_private() is True
    assert Network("whatever", 99).is_private() is True


def test_network_from_dict() -> None:
    """reference §1.2: {"ip", "mask"} with a prefix length 0-128 (both ends legal)."""
    assert Network.from_dict({"ip": "0.0.0.0", "mask": 0}) == Network("0.0.0.0", 0)
    assert Network.from_dict({"ip": "::1", "mask": 128}) == Network("::1", 128)
    assert _refused(Network.from_dict, None) == "network: expected an object with keys ip, mask, got NoneType None"
    assert _refused(Network.from_dict, {"ip": 1, "mask": 24}) == "network.ip: expected a string, got int 1"
    assert _refused(Network.from_dict, {"ip": "1.1.1.0", "mask": "24"}) == (
        "network.mask: expected an integer, got str '24'")
    assert _refused(Network.from_dict, {"ip": "1.1.1.0", "mask": True}) == (
        "network.mask: expected an integer, got bool True")
    for mask in (-1, 129):
        assert _refused(Network.from_dict, {"ip": "1.1.1.0", "mask": mask}) == (
            f"network.mask: expected a prefix length 0-128, got int {mask}")


# --------------------------------------------------------------------------- §1.3 Service


def test_service_from_dict_messages() -> None:
    """reference §1.3: unknown keys are errors; every field is type-checked by name."""
    assert _refused(Service.from_dict, []) == (
        "service: expected an object with keys name, type, version, is_local, got list []")
    assert _refused(lambda v: Service.from_dict(v, "params.target_service"), 3) == (
        "params.target_service: expected an object with keys name, type, version, is_local, got int 3")
    assert _refused(Service.from_dict, {"name": "ssh", "port": 22}) == (
        "service: expected only the keys name, type, version, is_local, got unknown key 'port'")
    assert _refused(lambda v: Service.from_dict(v, complete=True), {"name": "ssh"}) == (
        "service.type: expected a value (required), got nothing")
    assert _refused(Service.from_dict, {"name": "ssh", "type": 1}) == "service.type: expected a string, got int 1"
    assert _refused(Service.from_dict, {"name": "ssh", "version": None}) == (
        "service.version: expected a string, got NoneType None")
    assert _refused(Service.from_dict, {"name": "ssh", "is_local": "yes"}) == (
        "service.is_local: expected true or false, got str 'yes'")


# --------------------------------------------------------------------------- §1.4 Data


def test_data_not_equal_follows_identity() -> None:
    """reference §1.4: equality (and so inequality) uses only (owner, id, type)."""
    assert not (Data("U", "D", size=5, content="x") != Data("U", "D"))  # noqa: SIM202 (__ne__ itself)
    assert Data("U", "D", type="a") != Data("U", "D", type="b")
    assert Data("U", "D") != "U/D"
    assert Data("U", "D").__ne__("U/D") is NotImplemented


def test_data_ordering_is_by_identity_and_strict() -> None:
    """protocol/components.py Data: ordered by (owner, id, type), ignoring size and content."""
    small, big = Data("U", "D", size=1, content="a"), Data("U", "D", size=9, content="b")
    assert not small < big and not small > big and small <= big and small >= big
    first, second = Data("U", "A"), Data("U", "B")
    assert first < second and first <= second and second > first and second >= first
    assert not second < first and not second <= first and not first > second and not first >= second


def test_data_from_dict_messages() -> None:
    """reference §1.4: each field of a data object is type-checked by name."""
    base = {"owner": "U", "id": "D"}
    assert _refused(Data.from_dict, {**base, "owner": 1}) == "data.owner: expected a string, got int 1"
    assert _refused(Data.from_dict, {**base, "id": None}) == "data.id: expected a string, got NoneType None"
    assert _refused(Data.from_dict, {**base, "size": "3"}) == "data.size: expected an integer, got str '3'"
    assert _refused(Data.from_dict, {**base, "type": 2}) == "data.type: expected a string, got int 2"
    assert _refused(Data.from_dict, {**base, "content": []}) == "data.content: expected a string, got list []"


# --------------------------------------------------------------------------- §1.6 AgentInfo


def test_agent_info_messages() -> None:
    """reference §1.6: {"name", "role"}; the role must be one of the three roles."""
    assert _refused(AgentInfo.from_dict, 5) == "agent_info: expected an object with keys name, role, got int 5"
    assert _refused(AgentInfo.from_dict, {"name": "a", "role": "Hacker"}) == (
        "agent_info.role: expected Attacker, Defender or Benign, got str 'Hacker'")


def test_agent_info_literal_dict_limits() -> None:
    """reference §1.6: upstream also takes a Python-literal dict in a string; up to 4096
    characters are parsed, longer is refused unparsed, and garbage is named."""
    head = "{'name': '"
    tail = "', 'role': 'attacker'}"
    longest = head + "n" * (4096 - len(head) - len(tail)) + tail
    assert len(longest) == 4096
    assert AgentInfo.from_dict(longest) == AgentInfo("n" * (4096 - len(head) - len(tail)), AgentRole.Attacker)
    overlong = head + "n" * (4097 - len(head) - len(tail)) + tail
    assert _refused(AgentInfo.from_dict, overlong) == "agent_info: expected an object, got an overlong string"
    assert _refused(lambda v: AgentInfo.from_dict(v, "join"), "{'name'") == (
        "join: expected an object, got str \"{'name'\"")
