"""The game's value objects and enums behave as NetSecGame's (reference netsecgame.md §1).

Each test cites the reference section it checks. Wire (dict/JSON/compact) forms are in
test_protocol_codec.py.
"""

from __future__ import annotations

import json

import pytest

from protocol import (
    IP,
    Action,
    ActionType,
    AgentInfo,
    AgentRole,
    AgentStatus,
    Data,
    GameState,
    GameStatus,
    Network,
    Observation,
    ProtocolError,
    Service,
)

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


# --------------------------------------------------------------------------- §1.5 ActionType


class TestActionType:
    def test_values_in_declaration_order(self) -> None:
        """reference §1.5: nine values in declaration order; each value equals its name."""
        assert [t.name for t in ActionType] == [
            "ScanNetwork",
            "FindServices",
            "FindData",
            "ExploitService",
            "ExfiltrateData",
            "BlockIP",
            "JoinGame",
            "QuitGame",
            "ResetGame",
        ]
        assert all(t.value == t.name for t in ActionType)

    @pytest.mark.parametrize("action_type", list(ActionType))
    def test_str_and_hash(self, action_type: ActionType) -> None:
        """reference §1.5: str() is "ActionType.X" (the wire form); hash is hash of the value."""
        assert str(action_type) == f"ActionType.{action_type.name}"
        assert f"{action_type}" == f"ActionType.{action_type.name}"
        assert hash(action_type) == hash(action_type.name)

    @pytest.mark.parametrize("action_type", list(ActionType))
    def test_equal_to_both_string_forms(self, action_type: ActionType) -> None:
        """reference §1.5: equal to "X" and "ActionType.X"."""
        assert action_type == action_type.name
        assert action_type == f"ActionType.{action_type.name}"
        assert not (action_type != action_type.name)  # noqa: SIM202 (tests __ne__)
        assert action_type != "Nonsense"

    def test_not_equal_to_other_members_or_types(self) -> None:
        """reference §1.5: members differ from each other and from non-strings."""
        assert ActionType.ScanNetwork != ActionType.FindData
        assert ActionType.ScanNetwork != "FindData"
        assert ActionType.ScanNetwork != 0

    @pytest.mark.parametrize("text", ["ScanNetwork", "ActionType.ScanNetwork"])
    def test_from_string(self, text: str) -> None:
        """reference §1.5: from_string strips an optional "ActionType." prefix."""
        assert ActionType.from_string(text) is ActionType.ScanNetwork

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "scannetwork",
            "Scan",
            "ActionType.",
            "AgentRole.ScanNetwork",
            "ActionType.ActionType.ScanNetwork",
            None,
            3,
        ],
    )
    def test_from_string_rejects(self, bad: object) -> None:
        """reference §1.5: ValueError("Invalid ActionType: ...") on failure."""
        with pytest.raises(ValueError, match="Invalid ActionType"):
            ActionType.from_string(bad)  # type: ignore[arg-type]


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


# --------------------------------------------------------------------------- §1.7 enums


class TestAgentRole:
    def test_values(self) -> None:
        """reference §1.7: a str-based enum with values Attacker, Defender, Benign."""
        assert [r.value for r in AgentRole] == ["Attacker", "Defender", "Benign"]
        assert isinstance(AgentRole.Attacker, str)

    def test_str_format_and_repr(self) -> None:
        """reference §1.7: str() and f-string give "AgentRole.Attacker"; repr() gives "Attacker"."""
        assert str(AgentRole.Attacker) == "AgentRole.Attacker"
        assert f"{AgentRole.Attacker}" == "AgentRole.Attacker"
        assert repr(AgentRole.Attacker) == "Attacker"

    @pytest.mark.parametrize(
        "text", ["Attacker", "attacker", "ATTACKER", "AgentRole.Attacker", "agentrole.attacker"]
    )
    def test_case_insensitive_equality(self, text: str) -> None:
        """reference §1.7: equality with strings ignores case and an "agentrole." prefix."""
        assert AgentRole.Attacker == text
        assert text == AgentRole.Attacker
        assert not (AgentRole.Attacker != text)  # noqa: SIM202 (tests __ne__)

    def test_inequality(self) -> None:
        """reference §1.7: different roles and other strings are unequal."""
        assert AgentRole.Attacker != AgentRole.Defender
        assert AgentRole.Attacker != "Defender"
        assert AgentRole.Attacker != "Attackers"
        assert AgentRole.Attacker != 1

    def test_hash_is_hash_of_value(self) -> None:
        """reference §1.7: the hash is the hash of the value."""
        assert hash(AgentRole.Defender) == hash("Defender")

    @pytest.mark.parametrize(
        ("text", "role"),
        [
            ("Attacker", AgentRole.Attacker),
            ("defender", AgentRole.Defender),
            ("BENIGN", AgentRole.Benign),
            ("AgentRole.Attacker", AgentRole.Attacker),
            ("some.prefix.defender", AgentRole.Defender),
        ],
    )
    def test_from_string(self, text: str, role: AgentRole) -> None:
        """reference §1.7: from_string keeps the text after the last dot, any case."""
        assert AgentRole.from_string(text) is role

    @pytest.mark.parametrize("bad", ["", "king", "Attacker.", None])
    def test_from_string_rejects(self, bad: object) -> None:
        """reference §1.7: unknown roles raise ValueError."""
        with pytest.raises(ValueError):
            AgentRole.from_string(bad)  # type: ignore[arg-type]

    def test_usable_as_dict_key(self) -> None:
        """reference §11 (test_enums): usable as a dict key, found by its value too."""
        table = {AgentRole.Attacker: 1, AgentRole.Defender: 2}
        assert table[AgentRole.Attacker] == 1
        assert table["Defender"] == 2
        assert {"Attacker": 3}[AgentRole.Attacker] == 3

    def test_json_serialises_as_value(self) -> None:
        """reference §1.7: it JSON-serialises as its value."""
        assert json.dumps(AgentRole.Attacker) == '"Attacker"'
        assert json.dumps({"role": AgentRole.Benign}) == '{"role": "Benign"}'
        assert json.dumps({AgentRole.Defender: 1}) == '{"Defender": 1}'


class TestAgentStatus:
    def test_values(self) -> None:
        """reference §1.7: the six AgentStatus values."""
        assert [s.value for s in AgentStatus] == [
            "Playing",
            "PlayingWithTimeout",
            "TimeoutReached",
            "ResetRequested",
            "Success",
            "Fail",
        ]

    @pytest.mark.parametrize("status", list(AgentStatus))
    def test_str_equality_hash_from_string(self, status: AgentStatus) -> None:
        """reference §1.7: str() "AgentStatus.X" (wire form of end_reason); equal to "X"
        and "AgentStatus.X"; from_string accepts both; hashed by value."""
        assert str(status) == f"AgentStatus.{status.value}"
        assert f"{status}" == f"AgentStatus.{status.value}"
        assert status == status.value
        assert status == f"AgentStatus.{status.value}"
        assert AgentStatus.from_string(status.value) is status
        assert AgentStatus.from_string(str(status)) is status
        assert hash(status) == hash(status.value)

    def test_inequality_and_bad_from_string(self) -> None:
        """reference §1.7: other statuses and strings differ; from_string rejects them."""
        assert AgentStatus.Success != AgentStatus.Fail
        assert AgentStatus.Success != "Fail"
        assert AgentStatus.Success != "success"  # case matters for AgentStatus
        with pytest.raises(ValueError):
            AgentStatus.from_string("Winning")
        with pytest.raises(ValueError):
            AgentStatus.from_string("")

    def test_terminal(self) -> None:
        """reference §2.2: Success, Fail and TimeoutReached end an episode."""
        assert {s for s in AgentStatus if s.is_terminal} == {
            AgentStatus.Success,
            AgentStatus.Fail,
            AgentStatus.TimeoutReached,
        }


class TestGameStatus:
    def test_values(self) -> None:
        """reference §1.7: OK=200, CREATED=201, RESET_DONE=202, BAD_REQUEST=400, FORBIDDEN=403."""
        assert {s.name: s.value for s in GameStatus} == {
            "OK": 200,
            "CREATED": 201,
            "RESET_DONE": 202,
            "BAD_REQUEST": 400,
            "FORBIDDEN": 403,
        }

    @pytest.mark.parametrize("status", list(GameStatus))
    def test_str_repr_and_from_string(self, status: GameStatus) -> None:
        """reference §1.7: str() and repr() are "GameStatus.X" (the wire form); round-trip."""
        assert str(status) == f"GameStatus.{status.name}"
        assert repr(status) == f"GameStatus.{status.name}"
        assert GameStatus.from_string(str(status)) is status

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "OK",
            "ok",
            "GameStatus.ok",
            "GameStatus.",
            "200",
            "GameStatus.NOT_FOUND",
            "AgentStatus.OK",
            None,
            200,
        ],
    )
    def test_from_string_accepts_only_the_five(self, bad: object) -> None:
        """reference §1.7: from_string accepts only the five strings; ValueError for anything
        else, including ""."""
        with pytest.raises(ValueError):
            GameStatus.from_string(bad)  # type: ignore[arg-type]


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
