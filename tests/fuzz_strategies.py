"""Hostile input for the process fuzz tests (tests/test_fuzz_processes.py), and what each
target must answer: the shared part and the broker frontend.

Hypothesis strategies build whole messages; each comes with the answer the protocol
prescribes (PROTOCOL.md §1, §5), so a test checks replies one by one instead of only
"the process survived". Inputs that would be *valid* (a join that would take a seat, a
step of the seat we watch) are turned invalid by construction: the point is hostile
input, and a valid request changing a game is not a finding.

This module holds the command frames, the values, bodies and seqs every target gets,
the broker frontend's messages and expected replies, and a seat owner's garbage. The
broker backend, world worker and gateway strategies are in :mod:`tests.fuzz_peer_strategies`.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import attrs
from hypothesis import strategies as st

from protocol import (
    MAX_SEQ_BYTES,
    PROTOCOL_FRAME,
    AgentRole,
    Command,
    ErrorCode,
    ProtocolError,
    action_from_compact,
    pack,
    unpack,
)
from protocol.messages import MAX_SEAT_BYTES

JOIN, STEP, BATCH, RESET, QUIT, STATUS, ERROR = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame,
                                                 Command.RESET.frame, Command.QUIT.frame, Command.STATUS.frame,
                                                 Command.ERROR.frame)
READY, HEARTBEAT, DISCONNECT, RELEASE, REQUEST, REPLY = (
    Command.READY.frame, Command.HEARTBEAT.frame, Command.DISCONNECT.frame, Command.RELEASE.frame,
    Command.REQUEST.frame, Command.REPLY.frame)
SEAT_COMMANDS = (STEP, RESET, QUIT)
BATCH_INNER = (STEP, RESET)
ALL_COMMANDS = [command.frame for command in Command]
#: "OK" stands for a 200 reply without a code (a STATUS answer) among the error codes.
OK = "OK"
#: Not ARENA1: other versions, other protocols, near misses.
WRONG_PROTOCOLS = [b"", b"ARENA", b"ARENA0", b"ARENA2", b"ARENA10", b"ARENA1\x00", b"arena1", b"ARENA\x01",
                   b"\x00" * 6, b"\xff\x00\x00\x00\x00\x00\x00\x01\x7f", b"GET / HTTP/1.1\r\n"]
#: Hand-made msgpack that decoders find hard: reserved byte, huge length claims, deep
#: nesting, ext types (a Timestamp decodes to an object, not an error), int map keys.
NASTY_MSGPACK = [b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xc6\x7f\xff\xff\xff",
                 b"\xdf\xff\xff\xff\xff", b"\x91" * 3000 + b"\xc0", b"\x81" * 1500 + b"\xa1a\xc0", b"\x81\x01\x01",
                 b"\xd6\xff\x00\x00\x00\x00", b"\xd4\x05\x00", b"\xc7\x00\x05", b"\x81\x80\x01",
                 b"\x81\x91\x01\x01", b"\x93\xc2\xc2", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"]

# ---------------------------------------------------------------------------- values and bodies
#: Leaf values of every msgpack type, the edges of each, and strings a parser might take.
LEAVES: list[Any] = [None, True, False, 0, 1, -1, 7, 255, 2**31, 2**63 - 1, 2**64 - 1, -(2**63), 0.5, -0.0, math.nan,
                     math.inf, -math.inf, "", "x", "Attacker", "attacker", "Defender", "Benign", "192.168.2.2",
                     "192.168.1.0", "213.47.23.195", "1.1.1.300", "scenario1_small_attacker", "default", "kept",
                     "\x00", "\u00e9\u00e9", "x" * 300, b"", b"\x00\xff", b"Attacker", [], {}, [None], {"": None}]
_KEYS = ["task", "role", "game", "name", "retry", "seats", "closed", "", "x"]
_leaf = st.one_of(st.sampled_from(LEAVES), st.sampled_from(LEAVES),
                  st.integers(min_value=-(2**63), max_value=2**64 - 1), st.binary(max_size=8), st.text(max_size=6))
#: Any msgpack value, wrong types included (nested ones cost many draws: one branch of four).
values = st.one_of(_leaf, st.lists(_leaf, max_size=4), st.dictionaries(st.sampled_from(_KEYS), _leaf, max_size=3),
                   st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                                max_leaves=6))
#: Packed values drawn in one choice: every leaf, pairs of them, one-key maps.
PACKED = [pack(v) for v in LEAVES] + [pack([a, b]) for a in LEAVES[::3] for b in LEAVES[1::4]] + [
    pack({key: value}) for key in _KEYS for value in LEAVES[::2]]

#: Request bodies: packed values of any type, near-miss compact actions, truncated or
#: trailing-garbage msgpack, random bytes, and the hand-made nasty ones.
bodies = st.one_of(
    st.sampled_from(PACKED),
    values.map(pack),
    st.tuples(st.integers(min_value=-1, max_value=9), st.lists(_leaf, max_size=3)).map(lambda t: pack([t[0], *t[1]])),
    st.tuples(st.sampled_from(PACKED), st.integers(min_value=0, max_value=64)).map(
        lambda t: t[0][:t[1] % max(len(t[0]), 1)]),
    st.tuples(st.sampled_from(PACKED), st.binary(min_size=1, max_size=4)).map(lambda t: t[0] + t[1]),
    st.binary(max_size=24),
    st.sampled_from(NASTY_MSGPACK),
)
#: Sequence frames: mostly short (1 to 8 bytes is valid), empty and too long too.
seqs = st.one_of(st.binary(max_size=12), st.binary(min_size=1, max_size=MAX_SEQ_BYTES))
_long_seats = st.integers(min_value=MAX_SEAT_BYTES + 1, max_value=2 * MAX_SEAT_BYTES).map(lambda n: b"s" * n)
_frames = st.lists(st.binary(max_size=16), max_size=5)
_unknown_commands = st.one_of(st.sampled_from([c for c in ALL_COMMANDS if c not in (JOIN, STEP, BATCH, RESET, QUIT,
                                                                                      STATUS)]),
                              st.binary(min_size=0, max_size=3).filter(lambda c: c not in ALL_COMMANDS))
#: Roles no parser accepts (AgentRole.from_string takes any case and a dotted prefix).
BAD_ROLES = st.one_of(st.sampled_from(["", "Wizard", "Attacker-ish", "x" * 30, "Attacker\x00", "ActionType.Scan"]),
                      st.sampled_from([None, 1, 0.5, True, [], {}, b"Attacker", ["Attacker"]]))


def _loads(body: bytes) -> Any:
    try:
        return unpack(body)
    except ProtocolError:
        return ProtocolError


def role_parses(value: Any) -> bool:
    """Whether a decoded JOIN body names a real role (then the join could take a seat)."""
    if not isinstance(value, dict) or not isinstance(value.get("role"), str):
        return False
    try:
        AgentRole.from_string(value["role"])
    except ValueError:
        return False
    return True


def _step_ok(body: bytes) -> bool:
    try:
        action_from_compact(unpack(body))
    except ProtocolError:
        return False
    return True


def _reset_ok(body: bytes) -> bool:
    value = _loads(body)
    return isinstance(value, list) and len(value) == 3  # lenient: anything reset-shaped is taken out


@st.composite
def join_bodies(draw: st.DrawFn, task: str) -> bytes:
    """JOIN bodies that never take a seat: wrong types, missing or unknown roles."""
    body = draw(st.one_of(
        bodies,
        st.fixed_dictionaries({"role": BAD_ROLES}, optional={
            "task": st.one_of(st.just(task), values), "game": st.one_of(st.just("kept"), values),
            "name": values, "retry": st.booleans()}).map(pack)))
    return b"\xc1" if role_parses(_loads(body)) else body


# ---------------------------------------------------------------------------- the broker frontend
@attrs.frozen
class Expect:
    """One reply the frontend owes: the acceptable outcomes (error codes, or OK), the
    command frame it carries, and the seat and seq it echoes (None: not checked)."""

    outcomes: frozenset[str]
    command: bytes
    seat: bytes | None = None
    seq: bytes | None = None


def _codes(*codes: ErrorCode | str) -> frozenset[str]:
    return frozenset(str(code) for code in codes)


def _seq_ok(seq: bytes) -> bool:
    return 0 < len(seq) <= MAX_SEQ_BYTES


def _seat_expect(command: bytes, seat: bytes, seq: bytes, others: frozenset[bytes]) -> Expect:
    if command == QUIT and not seat:  # the QUIT of a pending JOIN (PROTOCOL.md §3.2): none is pending
        return Expect(_codes(ErrorCode.MALFORMED, OK), QUIT, b"", seq)
    if seat in others:
        return Expect(_codes(ErrorCode.NOT_YOUR_SEAT), command, seat, seq)
    if not 0 < len(seat) <= MAX_SEAT_BYTES:  # an out-of-spec seat: either answer is clear
        return Expect(_codes(ErrorCode.UNKNOWN_SEAT, ErrorCode.BAD_FRAMES), command)
    return Expect(_codes(ErrorCode.UNKNOWN_SEAT), command, seat, seq)


def frontend_expectations(parts: list[bytes], others: frozenset[bytes]) -> list[Expect]:
    """The replies a client socket that owns no seat gets for one message (PROTOCOL.md §1,
    §5): one each, a batch one per triple. ``others``: seats of other clients."""
    first = parts[0] if parts else b""
    if first != PROTOCOL_FRAME:
        return [Expect(_codes(ErrorCode.BAD_VERSION if first.startswith(b"ARENA") else ErrorCode.BAD_FRAMES), ERROR)]
    if len(parts) < 2:  # strictly BAD_FRAMES: the deterministic table checks that
        return [Expect(_codes(ErrorCode.BAD_FRAMES, ErrorCode.BAD_VERSION), ERROR)]
    command = parts[1]
    if command in SEAT_COMMANDS:
        if len(parts) != 5 or not _seq_ok(parts[3]):
            return [Expect(_codes(ErrorCode.BAD_FRAMES), command)]
        return [_seat_expect(command, parts[2], parts[3], others)]
    if command == JOIN:
        if len(parts) != 5 or not _seq_ok(parts[3]):
            return [Expect(_codes(ErrorCode.BAD_FRAMES), JOIN)]
        return [Expect(_codes(ErrorCode.MALFORMED), JOIN, b"", parts[3])]
    if command == BATCH:
        if len(parts) < 7 or (len(parts) - 4) % 3 or parts[3] not in BATCH_INNER:
            return [Expect(_codes(ErrorCode.BAD_FRAMES), BATCH)]
        inner = parts[3]
        return [_seat_expect(inner, parts[i], parts[i + 1], others) if _seq_ok(parts[i + 1])
                else Expect(_codes(ErrorCode.BAD_FRAMES), inner, parts[i]) for i in range(4, len(parts), 3)]
    if command == STATUS:
        return [Expect(frozenset({OK}) if len(parts) == 5 else _codes(OK, ErrorCode.BAD_FRAMES), STATUS)]
    return [Expect(_codes(ErrorCode.BAD_FRAMES), ERROR)]


def frontend_table(victim: bytes, other: bytes, world: bytes, step: bytes) -> list[tuple[list[bytes], list[Expect]]]:
    """Hand-made hostile messages whose one answer PROTOCOL.md fixes exactly. ``victim``
    and ``other``: seats of other clients on ``world``; ``step``: a valid action body."""
    seq = b"\x00" * 7 + b"\x01"

    def answer(*outcomes: ErrorCode | str, command: bytes = ERROR, seat: bytes | None = None) -> list[Expect]:
        return [Expect(_codes(*outcomes), command, seat, seq if seat is not None else None)]

    return [
        ([PROTOCOL_FRAME], answer(ErrorCode.BAD_FRAMES)),  # a wrong frame count, not another version
        ([b"ARENA2", STEP, victim, seq, step], answer(ErrorCode.BAD_VERSION)),
        ([b""], answer(ErrorCode.BAD_FRAMES)),
        ([PROTOCOL_FRAME, b"\x63", b"", seq, b"\xc0"], answer(ErrorCode.BAD_FRAMES)),
        ([PROTOCOL_FRAME, STEP, victim, seq, step], answer(ErrorCode.NOT_YOUR_SEAT, command=STEP, seat=victim)),
        ([PROTOCOL_FRAME, QUIT, victim, seq, b"\xc0"], answer(ErrorCode.NOT_YOUR_SEAT, command=QUIT, seat=victim)),
        ([PROTOCOL_FRAME, RESET, victim, seq, pack([False, False, None])],
         answer(ErrorCode.NOT_YOUR_SEAT, command=RESET, seat=victim)),
        ([PROTOCOL_FRAME, BATCH, world, STEP, victim, seq, step, other, seq, step],
         answer(ErrorCode.NOT_YOUR_SEAT, command=STEP, seat=victim)
         + answer(ErrorCode.NOT_YOUR_SEAT, command=STEP, seat=other)),
        ([PROTOCOL_FRAME, STEP, victim, b"\x00" * 9, step], answer(ErrorCode.BAD_FRAMES, command=STEP)),
        ([PROTOCOL_FRAME, STEP, victim, b"", step], answer(ErrorCode.BAD_FRAMES, command=STEP)),
        ([PROTOCOL_FRAME, STEP, b"s" * 65, seq, step],
         answer(ErrorCode.BAD_FRAMES, ErrorCode.UNKNOWN_SEAT, command=STEP)),
        ([PROTOCOL_FRAME, JOIN, b"", seq, pack(["scenario1_small_attacker", "Attacker"])],
         answer(ErrorCode.MALFORMED, command=JOIN)),
        ([PROTOCOL_FRAME, JOIN, b"", seq, b"\xc1"], answer(ErrorCode.MALFORMED, command=JOIN)),
        ([PROTOCOL_FRAME, JOIN, b"", seq, pack({"role": 5})], answer(ErrorCode.MALFORMED, command=JOIN)),
        ([PROTOCOL_FRAME, JOIN, b"", seq], answer(ErrorCode.BAD_FRAMES, command=JOIN)),
        ([PROTOCOL_FRAME, STATUS, b"", seq, b"\xc0"], answer(OK, command=STATUS)),
    ]


@st.composite
def frontend_messages(draw: st.DrawFn, others: list[bytes], world: bytes, task: str) -> list[bytes]:
    """One hostile message for the broker frontend. ``others``: seats of other clients
    (impersonation), ``world``: their world's name (for batches)."""
    seat = st.one_of(st.binary(max_size=12), st.sampled_from(others), _long_seats)
    kind = draw(st.sampled_from(["raw", "protocol", "seat", "seat", "seat", "count", "join", "batch", "status",
                                 "unknown"]))
    if kind == "raw":
        return draw(st.lists(st.binary(max_size=24), min_size=1, max_size=7))
    if kind == "protocol":
        return [draw(st.sampled_from(WRONG_PROTOCOLS)), *draw(_frames)]
    if kind == "seat":
        return [PROTOCOL_FRAME, draw(st.sampled_from(SEAT_COMMANDS)), draw(seat), draw(seqs), draw(bodies)]
    if kind == "count":
        command = draw(st.sampled_from([*SEAT_COMMANDS, JOIN]))
        return [PROTOCOL_FRAME, command, *draw(_frames.filter(lambda f: len(f) != 3))]
    if kind == "join":
        return [PROTOCOL_FRAME, JOIN, draw(st.sampled_from([b"", *others])), draw(seqs), draw(join_bodies(task))]
    if kind == "batch":
        inner = draw(st.one_of(st.sampled_from(BATCH_INNER), st.sampled_from(BATCH_INNER),
                               st.binary(max_size=2)))
        frames = [PROTOCOL_FRAME, BATCH, draw(st.one_of(st.just(world), st.binary(max_size=8))), inner]
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            frames += [draw(seat), draw(seqs), draw(bodies)]
        return frames + draw(st.lists(st.binary(max_size=8), max_size=2))
    if kind == "status":
        return [PROTOCOL_FRAME, STATUS, *draw(st.lists(st.binary(max_size=8), max_size=4))]
    return [PROTOCOL_FRAME, draw(_unknown_commands), *draw(_frames)]


# ---------------------------------------------------------------------------- a seat's own client
#: The seat owner's hostile requests use seq frames of 1 or 2 bytes (mostly stale), of 3
#: bytes from a counter above those (fresh: the world parses the body), or over 8 (refused
#: by the broker); its legitimate ones come after, with larger numbers.
OWNER_FRESH_SEQS = itertools.count(1 << 16)
_owner_seqs = st.one_of(st.just(b""), st.just(b""), st.binary(min_size=1, max_size=2),
                        st.binary(min_size=MAX_SEQ_BYTES + 1, max_size=12))


@st.composite
def owner_messages(draw: st.DrawFn, own: bytes, world: bytes, others: list[bytes]) -> list[bytes]:
    """Garbage a client sends for the seat it owns (forwarded to the seat's world), alone
    or in batches with other clients' seats, unknown seats and the wrong world. Bodies
    never play, reset or quit (the owner's game must stay as it was)."""
    def triple(command: bytes, seat: bytes) -> list[bytes]:
        body = draw(bodies)
        if (command == STEP and _step_ok(body)) or (command == RESET and _reset_ok(body)):
            body = b"\xc1"
        seq = draw(_owner_seqs) or next(OWNER_FRESH_SEQS).to_bytes(3, "big")
        return [seat, seq, body]

    if draw(st.booleans()):
        command = draw(st.sampled_from(BATCH_INNER))
        return [PROTOCOL_FRAME, command, *triple(command, own)]
    inner = draw(st.sampled_from(BATCH_INNER))
    frames = [PROTOCOL_FRAME, BATCH, draw(st.one_of(st.just(world), st.just(world), st.binary(max_size=6))), inner]
    seats = st.one_of(st.just(own), st.just(own), st.sampled_from(others), st.binary(max_size=8))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        frames += triple(inner, draw(seats))
    return frames


def owner_expectations(parts: list[bytes], own: bytes, world: bytes, others: frozenset[bytes]) -> list[Expect]:
    """What the owner gets for :func:`owner_messages`: for its own seat the world's error
    (MALFORMED, or STALE_REQUEST below the seat's last seq; command STEP or RESET, as
    ``command=b""``), the broker's for the rest (wrong seq, seats not its own, wrong world)."""
    def one(command: bytes, seat: bytes, seq: bytes, on_world: bool) -> Expect:
        if not _seq_ok(seq):
            return Expect(_codes(ErrorCode.BAD_FRAMES), command)
        if seat != own:
            return _seat_expect(command, seat, seq, others)
        if not on_world:
            return Expect(_codes(ErrorCode.GAME_LOST), command, seat, seq)
        return Expect(_codes(ErrorCode.MALFORMED, ErrorCode.STALE_REQUEST), b"", seat, seq)

    if parts[1] != BATCH:
        return [one(parts[1], parts[2], parts[3], True)]
    return [one(parts[3], parts[i], parts[i + 1], parts[2] == world) for i in range(4, len(parts), 3)]
