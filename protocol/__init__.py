"""netsec-arena's protocol: the game's types, their NetSecGame JSON forms and their
compact msgpack forms, error codes and the protocol version.

>>> from protocol import Action, ActionType, IP, Network
>>> Action(ActionType.ScanNetwork, {"source_host": IP("192.168.2.2"),
...        "target_network": Network("192.168.1.0", 24)}).as_dict["action_type"]
'ActionType.ScanNetwork'
"""

from __future__ import annotations

from .action import PASS, REQUIRED_PARAMETERS, Action, PassAction, validate_action
from .compact import (
    action_from_compact,
    action_from_packed,
    action_to_compact,
    observation_from_compact,
    observation_to_compact,
    pack,
    pack_action,
    pack_state,
    state_from_compact,
    state_to_compact,
    unpack,
)
from .components import IP, AgentInfo, Data, Network, Service
from .constants import MAX_BODY_BYTES, MAX_SEQ_BYTES, PROTOCOL_VERSION, ErrorCode
from .enums import GAME_ACTIONS, ActionType, AgentRole, AgentStatus, GameStatus
from .errors import ArenaError, ProtocolError
from .messages import PROTOCOL_FRAME, Command, ReplyBody, decode_reply, encode_reply, int_from_seq, seq_bytes
from .security import CurveClient, CurveKeys, CurveServer
from .state import GameState, Observation

__all__ = [
    "GAME_ACTIONS",
    "IP",
    "MAX_BODY_BYTES",
    "MAX_SEQ_BYTES",
    "PASS",
    "PROTOCOL_FRAME",
    "PROTOCOL_VERSION",
    "REQUIRED_PARAMETERS",
    "Action",
    "ActionType",
    "AgentInfo",
    "AgentRole",
    "AgentStatus",
    "ArenaError",
    "Command",
    "CurveClient",
    "CurveKeys",
    "CurveServer",
    "Data",
    "ErrorCode",
    "GameState",
    "GameStatus",
    "Network",
    "Observation",
    "PassAction",
    "ProtocolError",
    "ReplyBody",
    "Service",
    "action_from_compact",
    "action_from_packed",
    "action_to_compact",
    "decode_reply",
    "encode_reply",
    "int_from_seq",
    "observation_from_compact",
    "observation_to_compact",
    "pack",
    "pack_action",
    "pack_state",
    "seq_bytes",
    "state_from_compact",
    "state_to_compact",
    "unpack",
    "validate_action",
]
