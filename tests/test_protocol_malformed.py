"""Rejection of malformed actions (reference netsecgame.md §1.8, §2.2, §2.4) with a
ProtocolError that names the field, and ProtocolError itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import Action, ProtocolError

# =========================================================================== malformed actions

BAD_ACTIONS: list[tuple[str, Any, str]] = [
    # (id, input to Action.from_dict, expected ProtocolError.field)
    ("not-a-dict", "ScanNetwork", "action"),
    ("list", [1, 2], "action"),
    ("none", None, "action"),
    ("missing-type", {"parameters": {}}, "action_type"),
    ("unknown-type", {"action_type": "ActionType.Teleport", "parameters": {}}, "action_type"),
    ("lower-case-type", {"action_type": "scannetwork", "parameters": {}}, "action_type"),
    ("type-not-str", {"action_type": 3, "parameters": {}}, "action_type"),
    ("type-null", {"action_type": None, "parameters": {}}, "action_type"),
    ("missing-parameters", {"action_type": "QuitGame"}, "parameters"),
    ("parameters-list", {"action_type": "QuitGame", "parameters": []}, "parameters"),
    ("parameters-str", {"action_type": "QuitGame", "parameters": "{}"}, "parameters"),
    ("parameters-null", {"action_type": "QuitGame", "parameters": None}, "parameters"),
    (
        "unknown-parameter",
        {"action_type": "ScanNetwork", "parameters": {"target": {"ip": "1.1.1.1"}}},
        "parameters",
    ),
    (
        "ip-as-string",
        {"action_type": "FindData", "parameters": {"source_host": "1.1.1.1"}},
        "parameters.source_host",
    ),
    (
        "ip-null",
        {"action_type": "FindData", "parameters": {"target_host": None}},
        "parameters.target_host",
    ),
    (
        "bad-ip",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": "1.1.1.300"}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-not-str",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": 16843009}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-missing",
        {"action_type": "FindData", "parameters": {"source_host": {}}},
        "parameters.source_host.ip",
    ),
    (
        "ip-extra-key",
        {"action_type": "FindData", "parameters": {"source_host": {"ip": "1.1.1.1", "port": 22}}},
        "parameters.source_host",
    ),
    (
        "bad-blocked-host",
        {"action_type": "BlockIP", "parameters": {"blocked_host": {"ip": "x"}}},
        "parameters.blocked_host.ip",
    ),
    (
        "bad-blocked-ip",
        {"action_type": "BlockIP", "parameters": {"blocked_ip": {"ip": ""}}},
        "parameters.blocked_ip.ip",
    ),
    (
        "mask-as-string",
        {
            "action_type": "ScanNetwork",
            "parameters": {"target_network": {"ip": "1.1.1.0", "mask": "24"}},
        },
        "parameters.target_network.mask",
    ),
    (
        "mask-missing",
        {"action_type": "ScanNetwork", "parameters": {"target_network": {"ip": "1.1.1.0"}}},
        "parameters.target_network.mask",
    ),
    (
        "service-name-int",
        {"action_type": "ExploitService", "parameters": {"target_service": {"name": 22}}},
        "parameters.target_service.name",
    ),
    (
        "service-no-name",
        {"action_type": "ExploitService", "parameters": {"target_service": {"type": "passive"}}},
        "parameters.target_service.name",
    ),
    (
        "service-is-local-str",
        {
            "action_type": "ExploitService",
            "parameters": {"target_service": {"name": "ssh", "is_local": "yes"}},
        },
        "parameters.target_service.is_local",
    ),
    (
        "data-no-id",
        {"action_type": "ExfiltrateData", "parameters": {"data": {"owner": "U"}}},
        "parameters.data.id",
    ),
    (
        "data-size-str",
        {
            "action_type": "ExfiltrateData",
            "parameters": {"data": {"owner": "U", "id": "D", "size": "5"}},
        },
        "parameters.data.size",
    ),
    (
        "data-list",
        {"action_type": "ExfiltrateData", "parameters": {"data": ["U", "D"]}},
        "parameters.data",
    ),
    (
        "unknown-role",
        {"action_type": "JoinGame", "parameters": {"agent_info": {"name": "a", "role": "Admin"}}},
        "parameters.agent_info.role",
    ),
    (
        "role-int",
        {"action_type": "JoinGame", "parameters": {"agent_info": {"name": "a", "role": 1}}},
        "parameters.agent_info.role",
    ),
    (
        "agent-info-junk-string",
        {"action_type": "JoinGame", "parameters": {"agent_info": "me"}},
        "parameters.agent_info",
    ),
    (
        "agent-info-unhashable-literal",
        {"action_type": "JoinGame", "parameters": {"agent_info": "{[1]: 2}"}},
        "parameters.agent_info",
    ),
    ("seed-bool", {"action_type": "ResetGame", "parameters": {"seed": True}}, "parameters.seed"),
    ("seed-false", {"action_type": "ResetGame", "parameters": {"seed": False}}, "parameters.seed"),
    ("seed-str", {"action_type": "ResetGame", "parameters": {"seed": "42"}}, "parameters.seed"),
    ("seed-float", {"action_type": "ResetGame", "parameters": {"seed": 4.2}}, "parameters.seed"),
    (
        "seed-null-lower",
        {"action_type": "ResetGame", "parameters": {"seed": "null"}},
        "parameters.seed",
    ),
    (
        "flag-int",
        {"action_type": "ResetGame", "parameters": {"request_trajectory": 1}},
        "parameters.request_trajectory",
    ),
    (
        "flag-lower",
        {"action_type": "ResetGame", "parameters": {"randomize_topology": "true"}},
        "parameters.randomize_topology",
    ),
    (
        "flag-null",
        {"action_type": "ResetGame", "parameters": {"randomize_topology": None}},
        "parameters.randomize_topology",
    ),
]


@pytest.mark.parametrize(
    ("data", "field"), [(d, f) for _, d, f in BAD_ACTIONS], ids=[i for i, _, _ in BAD_ACTIONS]
)
def test_malformed_action_names_field(data: Any, field: str) -> None:
    """reference §1.8, §2.2: malformed actions are rejected (ValueError upstream,
    "Malformed Action" on the wire); the ProtocolError names the offending field."""
    with pytest.raises(ProtocolError) as info:
        Action.from_dict(data)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["this is not json", "", "{", '{"action_type": ', "\xff", b"\xff\xfe", "[1, 2]", "null", "42"],
)
def test_malformed_action_json(text: str | bytes) -> None:
    """reference §2.4: invalid JSON (or JSON that is not an object) is a ProtocolError
    on "action"."""
    with pytest.raises(ProtocolError) as info:
        Action.from_json(text)
    assert info.value.field == "action"


def test_protocol_error_pickles() -> None:
    """DESIGN: ProtocolError survives pickling (it crosses process boundaries)."""
    import pickle

    error = ProtocolError("parameters.seed", "an integer or null", "bool True")
    back = pickle.loads(pickle.dumps(error))
    assert (back.field, back.expected, back.got) == (error.field, error.expected, error.got)
    assert back.within("action").field == "action.parameters.seed"
