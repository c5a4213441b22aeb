"""Hostile input for the broker's peers in the process fuzz tests (tests/test_fuzz_processes.py).

ZeroMQ messages for the broker backend (from strangers and from a registered but broken
world) and for a world worker (with the answers it owes), and TCP byte scripts for the
NetSecGame gateway. Shared frames, values and bodies come from :mod:`tests.fuzz_strategies`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
from hypothesis import strategies as st

from protocol import PROTOCOL_FRAME, ActionType, pack

from .fuzz_strategies import (
    ALL_COMMANDS,
    BATCH,
    BATCH_INNER,
    DISCONNECT,
    ERROR,
    HEARTBEAT,
    JOIN,
    QUIT,
    READY,
    RELEASE,
    REPLY,
    REQUEST,
    RESET,
    STATUS,
    STEP,
    WRONG_PROTOCOLS,
    _frames,
    _loads,
    _long_seats,
    _reset_ok,
    _step_ok,
    _unknown_commands,
    bodies,
    join_bodies,
    role_parses,
    seqs,
    values,
)

# ---------------------------------------------------------------------------- the broker backend
#: Changes that make a READY body invalid (PROTOCOL.md §3.4), each on its own.
_READY_BREAKS: list[tuple[str, Any]] = [
    *(("world", value) for value in (None, 5, "", [], {"w": 1})),
    *(("capacity", value) for value in (0, -1, "x", None, math.inf, -math.inf, math.nan, [], {})),
    *(("heartbeat", value) for value in (0, -1, 61, 1e300, math.nan, math.inf, "x", None, [])),
    *(("tasks", value) for value in (None, [], 5, "tasks", {"t": 5}, {"t": {}},
                                      {"t": {"seats": 5, "allowed_roles": []}},
                                      {"t": {"seats": {"Attacker": "x"}, "allowed_roles": []}},
                                      {"t": {"seats": {"Attacker": math.inf}, "allowed_roles": []}},
                                      {"t": {"seats": {"Attacker": 1}, "allowed_roles": 5}})),
    *(("games", value) for value in (5, "x", {}, [5], [{"game": 5, "task": "t"}],
                                      [{"game": "g", "task": "t", "seats": [5]}],
                                      [{"game": "g", "task": "t", "seats": [["s"]]}],
                                      [{"game": "g", "task": "t", "seats": [["s", 5]]}])),
]


@st.composite
def broken_ready_bodies(draw: st.DrawFn) -> bytes:
    """READY bodies the broker must refuse: a valid one with at least one field broken or
    missing, or no map at all."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        body = draw(st.one_of(bodies, st.lists(values, max_size=3).map(pack)))
        return b"\xc1" if isinstance(_loads(body), dict) else body
    ready: dict[str, Any] = {"world": "fuzz-world", "capacity": 10, "heartbeat": 1.0, "games": [],
                             "tasks": {"fuzz-only": {"seats": {"Attacker": 1}, "allowed_roles": ["Attacker"]}}}
    for key, value in draw(st.lists(st.sampled_from(_READY_BREAKS), min_size=1, max_size=3)):
        ready[key] = value
    dropped = draw(st.sampled_from([None, None, "world", "tasks"]))
    if dropped is not None:
        ready.pop(dropped)
    return pack(ready)


@st.composite
def stranger_messages(draw: st.DrawFn) -> list[bytes]:
    """What a peer that never registered sends the backend."""
    kind = draw(st.sampled_from(["raw", "protocol", "command", "command", "ready", "ready"]))
    if kind == "raw":
        return draw(st.lists(st.binary(max_size=24), min_size=1, max_size=7))
    if kind == "protocol":
        return [draw(st.sampled_from(WRONG_PROTOCOLS)), *draw(_frames)]
    if kind == "command":
        command = draw(st.one_of(st.sampled_from([c for c in ALL_COMMANDS if c != READY]), st.binary(max_size=2)))
        return [PROTOCOL_FRAME, command, *draw(_frames)]
    return [PROTOCOL_FRAME, READY, draw(broken_ready_bodies()), *draw(st.lists(st.binary(max_size=4), max_size=1))]


def stranger_disconnects(parts: list[bytes]) -> int:
    """A stranger speaking ARENA1 is told DISCONNECT (register first), except for its own
    DISCONNECT; anything else is dropped unanswered."""
    return int(len(parts) >= 2 and parts[0] == PROTOCOL_FRAME and parts[1] != DISCONNECT)


_small = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(min_value=-5, max_value=300),
                                st.floats(allow_nan=True), st.text(max_size=8), st.binary(max_size=8)),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)


@st.composite
def registered_world_messages(draw: st.DrawFn) -> list[bytes]:
    """What a registered (but broken) world sends: REPLYs of any shape to unknown clients,
    RELEASE bodies of any shape, HEARTBEATs with extra frames, unknown commands. Integers
    in RELEASE bodies stay small: a handler that made a seat of one with ``bytes(n)``
    would allocate n bytes (a bug to find, but not with a 2**63-byte allocation)."""
    kind = draw(st.sampled_from(["reply", "reply", "batch", "release", "release", "heartbeat", "unknown"]))
    client = draw(st.binary(min_size=1, max_size=12).map(lambda c: b"nobody-" + c))
    if kind == "reply":
        return [PROTOCOL_FRAME, REPLY, *draw(st.lists(st.binary(max_size=12), max_size=7).map(
            lambda f: [client, *f] if f else f))]
    if kind == "batch":
        return [PROTOCOL_FRAME, REPLY, client, BATCH, *draw(st.lists(st.binary(max_size=8), max_size=8))]
    if kind == "release":
        body = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"seats": _small, "closed": _small}).map(pack),
            st.fixed_dictionaries({"seats": st.lists(_small, max_size=4),
                                   "closed": st.lists(_small, max_size=3)}).map(pack),
            bodies.filter(lambda b: len(b) < 64 and not _has_big_int(_loads(b)))))
        return [PROTOCOL_FRAME, RELEASE, body, *draw(st.lists(st.binary(max_size=4), max_size=1))]
    if kind == "heartbeat":
        return [PROTOCOL_FRAME, HEARTBEAT, *draw(st.lists(st.binary(max_size=8), min_size=1, max_size=3))]
    return [PROTOCOL_FRAME, draw(st.one_of(st.sampled_from([ERROR, JOIN, STEP, BATCH, STATUS, REQUEST]),
                                           st.binary(min_size=1, max_size=2).filter(lambda c: c not in ALL_COMMANDS))),
            *draw(_frames)]


def _has_big_int(value: Any) -> bool:
    if isinstance(value, int):
        return abs(value) > 1000
    if isinstance(value, list):
        return any(_has_big_int(item) for item in value)
    if isinstance(value, dict):
        return any(_has_big_int(item) for item in value.values())
    return False


# ---------------------------------------------------------------------------- a world worker
#: The watched seat's hostile requests use seq frames of at most this many bytes; its
#: legitimate ones come after, with larger numbers (a world refuses a lower seq as stale).
FUZZ_SEQ_BYTES = 4


def _defuse(command: bytes, seat: bytes, seq: bytes, body: bytes, watched: bytes) -> tuple[bytes, bytes, bytes]:
    """Make sure a request cannot play, reset or quit the watched seat, nor join a game."""
    if seat == watched:
        if command == QUIT:
            seat = b"not-" + seat
        seq = seq[-FUZZ_SEQ_BYTES:]
        if (command == STEP and _step_ok(body)) or (command == RESET and _reset_ok(body)):
            body = b"\xc1"
    if command == JOIN and role_parses(_loads(body)):
        body = b"\xc1"
    return seat, seq, body


def defuse_world_message(parts: list[bytes], watched: bytes) -> list[bytes]:
    """``parts`` with every request that could change the watched seat or add a game made
    harmless (and DISCONNECT, which legitimately makes a world drop its games, renamed)."""
    parts = list(parts)
    if len(parts) >= 2 and parts[0] == PROTOCOL_FRAME and parts[1] == DISCONNECT:
        parts[1] = b"\x63"
    if len(parts) < 4 or parts[0] != PROTOCOL_FRAME or parts[1] != REQUEST:
        return parts
    command = parts[3]
    if command == BATCH:
        if len(parts) >= 9 and (len(parts) - 6) % 3 == 0 and parts[5] in BATCH_INNER:
            for i in range(6, len(parts), 3):
                parts[i:i + 3] = _defuse(parts[5], parts[i], parts[i + 1], parts[i + 2], watched)
    elif len(parts) == 7:
        parts[4:7] = _defuse(command, parts[4], parts[5], parts[6], watched)
    return parts


def world_expectations(parts: list[bytes]) -> list[tuple[bytes, bytes] | None]:
    """The answers a world owes one message: one per request, one per triple of a
    well-formed batch; each the (seat, seq) it echoes, or None (not checked)."""
    if len(parts) < 4 or parts[0] != PROTOCOL_FRAME or parts[1] != REQUEST:
        return []  # not a request, or too short to answer: dropped
    if parts[3] == BATCH:
        if len(parts) < 9 or (len(parts) - 6) % 3 or parts[5] not in BATCH_INNER:
            return [None]
        return [(parts[i], parts[i + 1]) for i in range(6, len(parts), 3)]
    return [(parts[4], parts[5])] if len(parts) == 7 else [None]


@st.composite
def world_messages(draw: st.DrawFn, watched: bytes, task: str) -> list[bytes]:
    """One hostile message from "the broker" to a world; requests naming ``watched`` (a
    seat that plays a game there) are defused (:func:`defuse_world_message`)."""
    seat = st.one_of(st.binary(max_size=12), st.just(watched), st.just(watched), _long_seats)
    client = st.one_of(st.just(b"client-1"), st.binary(max_size=12))
    command = st.one_of(st.sampled_from([JOIN, STEP, RESET, QUIT]), st.sampled_from([JOIN, STEP, RESET, QUIT]),
                        _unknown_commands)
    kind = draw(st.sampled_from(["raw", "protocol", "command", "short", "count", "request", "request", "request",
                                 "join", "batch", "batch"]))
    if kind == "raw":
        parts = draw(st.lists(st.binary(max_size=24), min_size=1, max_size=7))
    elif kind == "protocol":
        parts = [draw(st.sampled_from(WRONG_PROTOCOLS)), REQUEST, *draw(_frames)]
    elif kind == "command":
        parts = [PROTOCOL_FRAME, draw(st.one_of(st.sampled_from([c for c in ALL_COMMANDS if c != REQUEST]),
                                                st.binary(max_size=2))), *draw(_frames)]
    elif kind == "short":
        parts = [PROTOCOL_FRAME, REQUEST, *draw(st.lists(st.binary(max_size=8), max_size=1))]
    elif kind == "count":
        parts = [PROTOCOL_FRAME, REQUEST, draw(client), draw(command), *draw(_frames.filter(lambda f: len(f) != 3))]
    elif kind == "request":
        parts = [PROTOCOL_FRAME, REQUEST, draw(client), draw(command), draw(seat), draw(seqs), draw(bodies)]
    elif kind == "join":
        parts = [PROTOCOL_FRAME, REQUEST, draw(client), JOIN, draw(seat), draw(seqs), draw(join_bodies(task))]
    else:
        inner = draw(st.one_of(st.sampled_from(BATCH_INNER), st.sampled_from(BATCH_INNER), st.binary(max_size=2)))
        parts = [PROTOCOL_FRAME, REQUEST, draw(client), BATCH, draw(st.binary(max_size=8)), inner]
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            parts += [draw(seat), draw(seqs), draw(bodies)]
        parts += draw(st.lists(st.binary(max_size=8), max_size=2))
    return defuse_world_message(parts, watched)


# ---------------------------------------------------------------------------- the gateway
_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                       st.floats(allow_nan=False), st.text(max_size=10),
                       st.sampled_from(["192.168.2.2", "192.168.1.0", "1.1.1.300", "Attacker", "EOF", "\u0000"]))
json_values = st.recursive(_json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                              st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=10)
ACTION_NAMES = [f"ActionType.{member.value}" for member in ActionType] + ["ScanNetwork", "ActionType.", "Nope", ""]
PARAMETER_NAMES = ["source_host", "target_network", "target_host", "target_service", "data", "agent_info",
                   "request_trajectory", "randomize_topology", "seed", "blocked_host"]
_near_parameter = st.one_of(json_values, st.fixed_dictionaries({"ip": json_values}),
                            st.fixed_dictionaries({"ip": st.sampled_from(["192.168.1.0", "x"]), "mask": json_values}),
                            st.fixed_dictionaries({}, optional={"name": json_values, "role": json_values}))
_actions = st.fixed_dictionaries(
    {"action_type": st.one_of(st.sampled_from(ACTION_NAMES), json_values)},
    optional={"parameters": st.one_of(st.dictionaries(st.sampled_from(PARAMETER_NAMES), _near_parameter,
                                                      max_size=3), json_values)})
_junk = st.binary(max_size=40).map(lambda b: b.replace(b'"', b"").replace(b"\\", b""))
#: Whole JSON documents (objects or arrays, each one request to the gateway): actions
#: with wrong types or values, other JSON, and objects with invalid UTF-8 inside a string.
documents = st.one_of(
    _actions.map(lambda d: json.dumps(d).encode()), _actions.map(lambda d: json.dumps(d).encode()),
    json_values.filter(lambda v: isinstance(v, (dict, list))).map(lambda v: json.dumps(v).encode()),
    _junk.map(lambda j: b'{"' + j + b'": 1}'),
    st.sampled_from([b"{}", b"[]", b'{"action_type": 1' + b"0" * 5000 + b"}", b"[" * 3000 + b"]" * 3000,
                     b'{"action_type": "ActionType.ScanNetwork", "parameters": {"source_host": {"ip": "EOF"}}}',
                     b'{"a": 1,}', b'{"a" 1}', b"[1 2]", b'{"\\ud800": 1}',
                     b'{"action_type": "ActionType.JoinGame", "parameters": {"agent_info": {"name": "\\ud800", '
                     b'"role": "Attacker"}}}',
                     b'{"action_type": "ActionType.ExfiltrateData", "parameters": {"source_host": '
                     b'{"ip": "192.168.2.2"}, "target_host": {"ip": "213.47.23.195"}, "data": {"owner": "\\udfff", '
                     b'"id": "x"}}}']),
)
_separators = st.sampled_from([b"", b" ", b"\n", b"\r\n", b"\t \n"])


@attrs.frozen
class GatewayScript:
    """One TCP connection's input: ``data``; ``replies`` it must get exactly (None: at
    least one, for garbage whose framing depends on how reads split it); ``join``: it
    joins first; ``count``: requests it carries (what the fuzz counts as sent);
    ``vanish``: it closes (RST) right after sending, its requests still in flight."""

    data: bytes
    replies: int | None
    count: int
    join: bool = False
    vanish: bool = False


@st.composite
def gateway_scripts(draw: st.DrawFn, join_document: bytes, valid: Any) -> GatewayScript:
    """A connection's input. ``valid(document)``: "join" or "play" for a document the
    gateway would take as a valid JoinGame or game action (left out where they would not
    get an error: a join before, a game action after the connection's join), else None."""
    kind = draw(st.sampled_from(["documents", "documents", "documents", "half", "garbage", "joined", "vanish"]))
    if kind == "vanish":  # a join (and maybe more) from an agent that is gone before the answer
        docs = draw(st.lists(documents, max_size=3))
        return GatewayScript(b"\n".join([join_document, *docs]), 0, 1 + len(docs), vanish=True)
    if kind == "garbage":
        data = draw(st.binary(min_size=1, max_size=200).filter(lambda b: b.strip()))
        return GatewayScript(data, None, 1)
    unwanted = "play" if kind == "joined" else "join"
    docs = [doc for doc in draw(st.lists(documents, min_size=2, max_size=14)) if valid(doc) != unwanted] or [b"[]"]
    data = b"".join(doc + draw(_separators) for doc in docs)
    count = len(docs)
    if kind == "half":
        whole = draw(documents)
        data += whole[:draw(st.integers(min_value=1, max_value=len(whole) - 1))]
        count += 1
    if kind == "joined":
        return GatewayScript(join_document + b"\n" + data, count, count + 1, join=True)
    return GatewayScript(data, count, count)
