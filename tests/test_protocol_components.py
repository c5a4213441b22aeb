"""The game's value objects behave as NetSecGame's (reference netsecgame.md §1.1-§1.4, §1.6).

Each test cites the reference section it checks. Enums are in test_protocol_enums.py; Action,
GameState and Observation in test_protocol_state.py; wire (dict/JSON/compact) forms in
test_protocol_json.py and test_protocol_compact.py.
"""

from __future__ import annotations

import pytest

from protocol import IP, AgentInfo, AgentRole, Data, Network, ProtocolError, Service

# --------------------------------------------------------------------------- §1.1 IP


class TestIP:
    def test_valid_v4_and_v6(self) -> None:
        """reference §1.1: IPv4 and IPv6 addresses are accepted."""
        assert IP("192.168.1.2").ip == "192.168.1.2"
        assert IP("fe80::1").ip == "fe80::1"

    @pytest.mark.parametrize(
        "bad", ["", "not-an-ip", "256.1.1.1", "1.2.3", "external", "192.168.1.0/24", " 1.1.1.1"]
    )
    def test_invalid_raises_value_error_with_message(self, bad: str) -> None:
        """reference §1.1: an invalid address raises
        ValueError("Invalid IP address provided: <value>")."""
        with pytest.raises(ValueError, match="Invalid IP address provided") as info:
            IP(bad)
        assert str(info.value) == f"Invalid IP address provided: {bad}"

    def test_non_string_raises_value_error(self) -> None:
        """reference §1.1: the field is a string; anything else is invalid."""
        with pytest.raises(ValueError):
            IP(1234)  # type: ignore[arg-type]

    def test_str_and_repr_are_bare_address(self) -> None:
        """reference §1.1: str() and repr() both give the bare address."""
        ip = IP("192.168.1.2")
        assert str(ip) == "192.168.1.2"
        assert repr(ip) == "192.168.1.2"
        assert f"{ip}" == "192.168.1.2"

    def test_equality_only_with_ip(self) -> None:
        """reference §1.1: equality holds only with another IP, never with a string."""
        assert IP("10.0.0.1") == IP("10.0.0.1")
        assert IP("10.0.0.1") != IP("10.0.0.2")
        assert IP("10.0.0.1") != "10.0.0.1"
        assert "10.0.0.1" != IP("10.0.0.1")  # noqa: SIM300 (the reflected comparison)
        assert IP("10.0.0.1") != Network("10.0.0.1", 32)
        assert not (IP("10.0.0.1") == "10.0.0.1")  # noqa: SIM201 (__eq__, not __ne__)

    def test_hash_is_hash_of_string(self) -> None:
        """reference §1.1: the hash is the hash of the string."""
        assert hash(IP("10.0.0.1")) == hash("10.0.0.1")
        assert len({IP("10.0.0.1"), IP("10.0.0.1"), IP("10.0.0.2")}) == 2

    def test_ordering_is_lexicographic_on_string(self) -> None:
        """reference §1.1: ordering is string ordering, so 1.1.1.2 > 1.1.1.10."""
        assert IP("1.1.1.2") > IP("1.1.1.10")
        assert IP("1.1.1.10") < IP("1.1.1.2")
        assert IP("1.1.1.1") <= IP("1.1.1.1") and IP("1.1.1.1") >= IP("1.1.1.1")
        assert sorted([IP("9.0.0.1"), IP("10.0.0.1"), IP("1.1.1.2")]) == [
            IP("1.1.1.2"),
            IP("10.0.0.1"),
            IP("9.0.0.1"),
        ]

    @pytest.mark.parametrize(
        ("address", "private"),
        [
            ("192.168.1.2", True),
            ("10.0.0.1", True),
            ("172.16.0.1", True),
            ("127.0.0.1", True),
            ("8.8.8.8", False),
            ("213.47.23.195", False),
            ("::1", True),
            ("2001:4860::8888", False),
        ],
    )
    def test_is_private(self, address: str, private: bool) -> None:
        """reference §1.1: is_private() follows Python's ipaddress notion of private."""
        assert IP(address).is_private() is private

    def test_from_dict(self) -> None:
        """reference §1.1: dict form {"ip": ...}; from_dict accepts exactly that."""
        assert IP.from_dict({"ip": "192.168.1.2"}) == IP("192.168.1.2")
        assert IP("192.168.1.2").as_dict == {"ip": "192.168.1.2"}

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"ip": "nope"}, "ip.ip"),
            ({"ip": 5}, "ip.ip"),
            ({}, "ip.ip"),
            ({"ip": "1.1.1.1", "mask": 24}, "ip"),
            ("1.1.1.1", "ip"),
            (None, "ip"),
        ],
    )
    def test_from_dict_invalid(self, bad: object, field: str) -> None:
        """reference §1.1: an invalid dict is rejected (ProtocolError, a ValueError)."""
        with pytest.raises(ProtocolError) as info:
            IP.from_dict(bad)
        assert info.value.field == field
        assert isinstance(info.value, ValueError)

    def test_immutable(self) -> None:
        """reference §1: components are immutable value objects."""
        ip = IP("1.1.1.1")
        with pytest.raises(AttributeError):
            ip.ip = "2.2.2.2"  # type: ignore[misc]


# --------------------------------------------------------------------------- §1.2 Network


class TestNetwork:
    def test_fields_and_str(self) -> None:
        """reference §1.2: fields ip and mask; str() and repr() give "<ip>/<mask>"."""
        net = Network("192.168.1.0", 24)
        assert (net.ip, net.mask) == ("192.168.1.0", 24)
        assert str(net) == "192.168.1.0/24"
        assert repr(net) == "192.168.1.0/24"

    def test_not_normalised_and_not_validated(self) -> None:
        """reference §1.2: no validation, ip not normalised to the network address."""
        net = Network("175.148.76.156", 26)
        assert str(net) == "175.148.76.156/26"
        assert net != Network("175.148.76.128", 26)
        assert str(Network("whatever", 99)) == "whatever/99"

    def test_equality_and_hash(self) -> None:
        """reference §1: equality and hash are by value."""
        assert Network("10.0.0.0", 8) == Network("10.0.0.0", 8)
        assert Network("10.0.0.0", 8) != Network("10.0.0.0", 16)
        assert hash(Network("10.0.0.0", 8)) == hash(Network("10.0.0.0", 8))
        assert len({Network("10.0.0.0", 8), Network("10.0.0.0", 8)}) == 1

    def test_ordering_as_cidr_blocks(self) -> None:
        """reference §1.2: ordering compares the networks as CIDR blocks, not strings."""
        assert Network("9.0.0.0", 8) < Network("10.0.0.0", 8)  # string order says the opposite
        assert Network("10.0.0.0", 8) > Network("9.0.0.0", 8)
        assert Network("192.168.1.0", 24) < Network("192.168.2.0", 24)
        assert Network("192.168.1.0", 24) <= Network("192.168.1.0", 24)
        assert Network("192.168.1.0", 24) >= Network("192.168.1.0", 24)
        # Same first address: the larger block (shorter prefix) sorts first.
        assert Network("10.0.0.0", 8) < Network("10.0.0.0", 16)
        # A non-normalised address sorts after the normalised one of the same block.
        assert Network("175.148.76.128", 26) < Network("175.148.76.156", 26)
        assert sorted([Network("192.168.10.0", 24), Network("192.168.2.0", 24)]) == [
            Network("192.168.2.0", 24),
            Network("192.168.10.0", 24),
        ]

    def test_ordering_falls_back_to_ip_strings(self) -> None:
        """reference §1.2: if CIDR parsing fails, the ip strings are compared."""
        assert Network("b", 24) > Network("a", 24)
        assert Network("10.0.0.0", 8) < Network("9.0.0.0", 99)  # "10..." < "9..."
        assert Network("1.1.1.0", 24) < Network("x", 8)

    def test_is_private(self) -> None:
        """reference §1.2: is_private() is true for a private CIDR."""
        assert Network("192.168.1.0", 24).is_private()
        assert Network("10.0.0.0", 8).is_private()
        assert not Network("213.47.23.192", 26).is_private()

    def test_from_dict(self) -> None:
        """reference §1.2: dict form {"ip": ..., "mask": ...}."""
        assert Network.from_dict({"ip": "192.168.1.0", "mask": 24}) == Network("192.168.1.0", 24)
        assert Network("192.168.1.0", 24).as_dict == {"ip": "192.168.1.0", "mask": 24}
        # not normalised on input either
        assert Network.from_dict({"ip": "175.148.76.156", "mask": 26}).ip == "175.148.76.156"

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"ip": "1.1.1.0"}, "network.mask"),
            ({"mask": 24}, "network.ip"),
            ({"ip": "1.1.1.0", "mask": "24"}, "network.mask"),
            ({"ip": "1.1.1.0", "mask": True}, "network.mask"),
            ({"ip": "1.1.1.0", "mask": 129}, "network.mask"),
            ({"ip": 1, "mask": 24}, "network.ip"),
            ({"ip": "1.1.1.0", "mask": 24, "x": 1}, "network"),
            ([], "network"),
        ],
    )
    def test_from_dict_invalid(self, bad: object, field: str) -> None:
        """reference §1.2: malformed network dicts are rejected, naming the field."""
        with pytest.raises(ProtocolError) as info:
            Network.from_dict(bad)
        assert info.value.field == field


# --------------------------------------------------------------------------- §1.3 Service


class TestService:
    def test_fields_and_defaults(self) -> None:
        """reference §1.3: name, type="unknown", version="unknown", is_local=True."""
        service = Service("ssh")
        assert (service.name, service.type, service.version, service.is_local) == (
            "ssh",
            "unknown",
            "unknown",
            True,
        )
        full = Service("ssh", "passive", "8.1.0", False)
        assert (full.name, full.type, full.version, full.is_local) == (
            "ssh",
            "passive",
            "8.1.0",
            False,
        )

    def test_equality_and_hash_over_all_fields(self) -> None:
        """reference §1.3: hashable and compared over all four fields."""
        assert Service("ssh", "passive", "8.1.0", False) == Service(
            "ssh", "passive", "8.1.0", False
        )
        assert Service("ssh", "passive", "8.1.0", False) != Service("ssh", "passive", "8.1.0", True)
        assert Service("ssh", "passive", "8.1.0") != Service("ssh", "passive", "8.2.0")
        assert len({Service("ssh"), Service("ssh"), Service("http")}) == 2

    def test_ordering_over_all_fields(self) -> None:
        """reference §1.3: ordered over (name, type, version, is_local)."""
        assert Service("a") < Service("b")
        assert Service("a", "x") < Service("a", "y")
        assert Service("a", "x", "1") < Service("a", "x", "2")
        assert Service("a", "x", "1", False) < Service("a", "x", "1", True)
        assert sorted([Service("ssh"), Service("http"), Service("ftp")]) == [
            Service("ftp"),
            Service("http"),
            Service("ssh"),
        ]

    def test_immutable(self) -> None:
        """reference §1: components are immutable."""
        with pytest.raises(AttributeError):
            Service("ssh").name = "x"  # type: ignore[misc]

    def test_from_dict(self) -> None:
        """reference §1.3: dict form {"name","type","version","is_local"}; from_dict."""
        service = Service("ssh", "passive", "8.1.0", False)
        assert service.as_dict == {
            "name": "ssh",
            "type": "passive",
            "version": "8.1.0",
            "is_local": False,
        }
        assert Service.from_dict(service.as_dict) == service
        assert Service.from_dict({"name": "ssh"}) == Service("ssh")

    def test_from_dict_unknown_key_is_an_error(self) -> None:
        """reference §1.3: from_dict passes keys to the constructor, so an unknown key fails."""
        with pytest.raises(ProtocolError) as info:
            Service.from_dict({"name": "ssh", "port": 22})
        assert info.value.field == "service"

    def test_from_dict_complete_requires_all_keys(self) -> None:
        """reference §1.9: state service entries need all four keys."""
        with pytest.raises(ProtocolError) as info:
            Service.from_dict({"name": "ssh", "type": "passive", "version": "1"}, complete=True)
        assert info.value.field == "service.is_local"


# --------------------------------------------------------------------------- §1.4 Data


class TestData:
    def test_fields_and_defaults(self) -> None:
        """reference §1.4: owner, id, size=0, type="", content=""."""
        data = Data("User1", "DatabaseData")
        assert (data.owner, data.id, data.size, data.type, data.content) == (
            "User1",
            "DatabaseData",
            0,
            "",
            "",
        )

    def test_equality_and_hash_ignore_size_and_content(self) -> None:
        """reference §1.4: equality and hash use only (owner, id, type)."""
        assert Data("U", "D", size=5, content="x") == Data("U", "D")
        assert hash(Data("U", "D", size=5, content="x")) == hash(Data("U", "D"))
        assert len({Data("U", "D", size=1), Data("U", "D", size=2, content="c")}) == 1

    def test_type_owner_and_id_matter(self) -> None:
        """reference §1.4: a different type (or owner, or id) breaks equality."""
        assert Data("U", "D", type="log") != Data("U", "D")
        assert Data("U", "D", type="log") != Data("U", "D", type="db")
        assert Data("U", "D") != Data("V", "D")
        assert Data("U", "D") != Data("U", "E")

    def test_repr_omits_content(self) -> None:
        """reference §1.4: the repr omits content."""
        text = repr(Data("U", "D", size=3, type="log", content="SECRET-CONTENT"))
        assert "SECRET-CONTENT" not in text
        assert "'U'" in text and "'D'" in text and "log" in text

    def test_dict_form(self) -> None:
        """reference §1.4: dict form {"owner","id","size","type","content"}."""
        data = Data("U", "D", 4, "log", "abcd")
        assert data.as_dict == {
            "owner": "U",
            "id": "D",
            "size": 4,
            "type": "log",
            "content": "abcd",
        }
        back = Data.from_dict(data.as_dict)
        assert (back.owner, back.id, back.size, back.type, back.content) == (
            "U",
            "D",
            4,
            "log",
            "abcd",
        )

    def test_from_dict_partial_needs_only_owner_and_id(self) -> None:
        """reference §1.4: Data.from_dict (used by action parsing) needs only owner and id."""
        data = Data.from_dict({"owner": "U", "id": "D"})
        assert (data.size, data.type, data.content) == (0, "", "")

    @pytest.mark.parametrize("missing", ["owner", "id", "size", "type", "content"])
    def test_from_dict_complete_requires_all_five_keys(self, missing: str) -> None:
        """reference §1.4: GameState.from_dict requires all five keys."""
        full = {"owner": "U", "id": "D", "size": 0, "type": "", "content": ""}
        del full[missing]
        with pytest.raises(ProtocolError) as info:
            Data.from_dict(full, complete=True)
        assert info.value.field == f"data.{missing}"

    def test_from_dict_partial_still_needs_owner_and_id(self) -> None:
        """reference §1.4: owner and id are always required."""
        with pytest.raises(ProtocolError) as info:
            Data.from_dict({"owner": "U"})
        assert info.value.field == "data.id"


# --------------------------------------------------------------------------- §1.6 AgentInfo


class TestAgentInfo:
    def test_fields_and_repr(self) -> None:
        """reference §1.6: fields name and role; repr() is name(role), the role as an
        f-string formats it (AgentRole.Attacker, reference §1.7)."""
        info = AgentInfo("MyAgent", AgentRole.Attacker)
        assert (info.name, info.role) == ("MyAgent", AgentRole.Attacker)
        assert repr(info) == "MyAgent(AgentRole.Attacker)"

    def test_dict_form(self) -> None:
        """reference §1.6: dict form {"name": ..., "role": "Attacker"}."""
        assert AgentInfo("MyAgent", AgentRole.Defender).as_dict == {
            "name": "MyAgent",
            "role": "Defender",
        }

    @pytest.mark.parametrize("role", ["Attacker", "attacker", "ATTACKER", "AgentRole.Attacker"])
    def test_from_dict_role_any_case(self, role: str) -> None:
        """reference §1.6: role converted with AgentRole.from_string."""
        info = AgentInfo.from_dict({"name": "a", "role": role})
        assert info.role is AgentRole.Attacker

    def test_from_dict_accepts_python_literal_string(self) -> None:
        """reference §1.6: a string holding a Python-literal dict is accepted."""
        info = AgentInfo.from_dict("{'name': 'a', 'role': 'benign'}")
        assert info == AgentInfo("a", AgentRole.Benign)

    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            ({"name": "a", "role": "king"}, "agent_info.role"),
            ({"name": "a"}, "agent_info.role"),
            ({"role": "Attacker"}, "agent_info.name"),
            ({"name": 1, "role": "Attacker"}, "agent_info.name"),
            ("not a dict", "agent_info"),
            ("{[1]: 2}", "agent_info"),
            ("{{}}", "agent_info"),
            (42, "agent_info"),
        ],
    )
    def test_from_dict_invalid(self, bad: object, field: str) -> None:
        """reference §1.6: an unknown role (or malformed info) raises ValueError."""
        with pytest.raises(ProtocolError) as info:
            AgentInfo.from_dict(bad)
        assert info.value.field == field
