"""Hostile and broken input at every entry point of the real processes (issue 5, item 4).

The stack is started the way users start it (:class:`bin.stack.Stack`: a broker, one
world, the NetSecGame gateway), plus one more ``arena world`` whose broker is this test.
Generated hostile messages go to the world, the gateway, and the broker's frontend and
backend: malformed msgpack, wrong frame counts and types, unknown commands, other
protocol versions, oversized frames and bodies, floods, and requests naming another
client's seat. Each must get the answer PROTOCOL.md prescribes (checked reply by reply,
in order) or a dropped connection. Afterwards every process is alive, no process logged
a traceback, no seat is left over, the games that were playing changed by not one step
(each checked against an in-process copy of it to the end of its episode) and a normal
agent plays an episode.

Hypothesis runs derandomized, without deadline and without shrinking (the targets are
live processes; a failing assertion names the offending message itself). Each example is
one batch of messages; ``SENT`` counts what was sent, and each test checks that it sent
exactly its share of ``THROWS``: the README ("When things fail") states the totals per
entry point, and a test compares them, so neither can drift.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st

from agents import BaseAgent
from agents.play import play_episodes
from agents.policies import POLICIES, random_attacker
from agents.status import query_status
from bin.stack import Stack
from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    AgentRole,
    ErrorCode,
    GameStatus,
    action_to_compact,
    decode_reply,
    pack,
    seq_bytes,
    unpack,
)

from . import fuzz_harness as fh
from . import fuzz_peer_harness as fph
from . import fuzz_peer_strategies as fps
from . import fuzz_strategies as fs

FUZZ = settings(deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck), print_blob=False,
                verbosity=Verbosity.quiet)  # the assertion names the message; the whole batch is noise
#: Requests on the gateway per run: Hypothesis's generated connections carry a number
#: that depends on what it draws, a flood on one connection makes up the rest (at least
#: ``GATEWAY_FLOOD``), and two oversized requests end it.
GATEWAY_THROWS = 3000
GATEWAY_FLOOD = 300
#: Hostile messages each test throws, per entry point, exactly: examples x batch size as
#: their ``settings`` and strategies say, plus the hand-made messages.
THROWS: dict[str, Counter[str]] = {
    "warm-up": Counter(frontend=1),                       # the ``frontend`` fixture's first message
    "world": Counter(world=30 * 100),
    "gateway": Counter(gateway=GATEWAY_THROWS),
    "frontend table": Counter(frontend=16),               # fuzz_strategies.frontend_table
    "frontend": Counter(frontend=40 * 100),
    "flood": Counter(frontend=1500 + 3 + 2),              # the flood, 3 refused bodies, 2 oversized frames
    "owner": Counter(frontend=12 * 50),
    "strangers": Counter(backend=10 * 50),
    "registered world": Counter(backend=8 * 60 + 1),      # the barrage, then a RELEASE of another world's seat
    "hijacker": Counter(backend=1),
}
#: What one run of this module throws at each entry point.
PER_RUN: Counter[str] = sum(THROWS.values(), Counter())
README = Path(__file__).resolve().parents[1] / "README.md"
#: Tests that sent their share of hostile messages (the totals are checked when all did).
FUZZED: set[str] = {"warm-up"}
WATCHED = b"watched-seat"
#: What a world may answer hostile requests (anything else, an internal error included, fails).
WORLD_CODES = frozenset(str(code) for code in (
    ErrorCode.BAD_FRAMES, ErrorCode.MALFORMED, ErrorCode.GAME_LOST, ErrorCode.ALREADY_JOINED,
    ErrorCode.STALE_REQUEST, ErrorCode.UNKNOWN_TASK, ErrorCode.ROLE_NOT_ALLOWED, ErrorCode.GAME_TASK_MISMATCH))


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-logs")


@pytest.fixture(scope="module")
def arena(logs: Path) -> Iterator[fh.Arena]:
    """The stack (broker, world, gateway; children's stderr in a log file) and two victims."""
    stack = Stack(tasks=[str(fh.SOLO)], worlds=1, heartbeat=0.2, gateway="127.0.0.1:0")
    context = zmq.Context()
    victims: list[fh.Victim] = []
    try:
        with fh.children_stderr_to(logs / "stack.log"):
            stack.start()
        stack.wait_registered()
        victims += [fh.Victim(stack.endpoints["frontend"], f"victim-{n}") for n in (1, 2)]
        found = fh.tracebacks((logs / "stack.log").read_text(errors="replace"))
        assert not found, f"the stack logged tracebacks before the fuzz:\n{found[0]}"
        yield fh.Arena(stack, logs / "stack.log", victims, context)
    finally:
        for victim in victims:
            victim.agent.terminate_connection()
        codes = stack.stop()
        context.destroy(linger=0)
    assert all(code is not None for code in codes)


@pytest.fixture(scope="module")
def frontend(arena: fh.Arena) -> Iterator[list[zmq.Socket]]:
    """Four client sockets that own no seat. After a start the broker keeps requests for
    unknown seats for its recovery window (10 s): the first answer waits for its end."""
    sockets = [arena.dealer() for _ in range(4)]
    try:
        warm_up = [PROTOCOL_FRAME, fs.STEP, b"nobody", seq_bytes(1), b"\xc0"]
        fh.exchange(sockets[:1], [(0, warm_up, fs.frontend_expectations(warm_up, frozenset()))], timeout=30)
        yield sockets
    finally:
        for sock in sockets:
            sock.close(linger=0)


def fuzzed(name: str, before: Counter[str]) -> None:
    """A test sent exactly its share of hostile messages (``THROWS[name]``); ``before``: a
    copy of ``fh.SENT`` taken when it started."""
    sent = fh.SENT - before
    assert sent == THROWS[name], f"{name}: sent {dict(sent)}, THROWS says {dict(THROWS[name])}"
    FUZZED.add(name)


def test_the_readme_says_what_a_run_throws_at_each_entry_point() -> None:
    """README "When things fail" states the exact counts per entry point (no processes)."""
    text = " ".join(README.read_text().split())
    found = re.search(r"per run: ([\d,]+) at the broker's frontend, ([\d,]+) at its backend, "
                      r"([\d,]+) at a world and ([\d,]+) at the gateway", text)
    assert found, "the README's fuzz sentence is gone or reworded"
    stated = dict(zip(("frontend", "backend", "world", "gateway"),
                      (int(number.replace(",", "")) for number in found.groups()), strict=True))
    assert stated == dict(PER_RUN), f"README says {stated}, a run throws {dict(PER_RUN)}"


# ============================================================================ a world worker
def test_world_worker_answers_hostile_requests_and_its_game_is_untouched(arena: fh.Arena, logs: Path) -> None:
    """The test is the world's broker. Every hostile request is answered with its client,
    (seat, seq) and an error code; other frames are dropped; the world never reconnects;
    the watched seat's game then plays to its end exactly like its reference."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(logs / "world.log")
    world = fph.WorldUnderFuzz(arena.context, logs / "world.log")
    try:
        assert world.pump(lambda: world.identity is not None, 60), "the world never sent READY"
        reference = fh.Reference("kept")
        join = {"task": fh.TASK, "role": "Attacker", "game": "kept", "name": "watched"}
        joined = world.call(fs.JOIN, WATCHED, seq_bytes(1), pack(join))
        assert fh.same(joined.observation, reference.join()) and joined.observation is not None, joined
        seqs = itertools.count(2)

        def step(action: Any) -> Any:
            return world.call(fs.STEP, WATCHED, seq_bytes(next(seqs)), pack(action_to_compact(action))).observation

        rng = random.Random(5)
        observation, _ = fh.play_lock_step(step, reference, joined.observation, rng, steps=1)

        @settings(FUZZ, max_examples=30)
        @given(data=st.data())
        def barrage(data: st.DataObject) -> None:
            batch = data.draw(st.lists(fps.world_messages(WATCHED, fh.TASK), min_size=100, max_size=100))
            start = len(world.answers)
            owed = [fps.world_expectations(parts) for parts in batch]
            for parts in batch:
                world.send(parts)
                fh.SENT["world"] += 1
            total = sum(len(wanted) for wanted in owed)
            world.pump(lambda: len(world.answers) - start >= total)
            answers = world.answers[start:]
            assert len(answers) == total, f"{len(answers)} answers to {total} requests"
            for parts, wanted in zip(batch, owed, strict=True):
                got, answers = answers[:len(wanted)], answers[len(wanted):]
                for client, _, _, _, body in got:
                    reply = decode_reply(body)
                    fh.OUTCOMES[f"world {reply.code}"] += 1
                    assert client == parts[2] and reply.status in (GameStatus.BAD_REQUEST, GameStatus.FORBIDDEN) \
                        and str(reply.code) in WORLD_CODES, f"{fh.short(parts)} answered {reply}"
                pairs = sorted(pair for pair in wanted if pair is not None)
                assert sorted((a[2], a[3]) for a in got if (a[2], a[3]) in pairs) == pairs, \
                    f"{fh.short(parts)}: answers echo {[(a[2], a[3]) for a in got]}"
            assert not world.strange, f"unexpected messages from the world: {fh.short(world.strange)}"

        barrage()
        assert world.process.poll() is None, "the world exited"
        assert world.readies == 1, "the world reconnected (it found its broker silent: a stall)"
        released = [unpack(body) for body in world.releases]
        assert not [r for r in released if WATCHED.decode() in r["seats"] or "kept" in r["closed"]], released
        seqs = itertools.count(2**40)  # the fuzz's seq frames for the watched seat had at most 4 bytes
        fh.play_lock_step(step, reference, observation, rng)
    finally:
        code = world.close()
    assert code == 0, f"the world exited with {code} on SIGTERM"
    fh.assert_no_tracebacks(watch, "the world")
    fuzzed("world", before)


# ============================================================================ the gateway
def test_gateway_answers_hostile_tcp_clients(arena: fh.Arena) -> None:
    """Garbage bytes, broken and hostile JSON, half requests, pipelined requests, abrupt
    closes, oversized requests and a flood on NetSecGame TCP connections: NetSecGame-style
    errors, one per request, or a closed connection; then a normal client plays."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    host, _, port = arena.stack.endpoints["gateway"].rpartition(":")
    address = (host, int(port))

    @settings(FUZZ, max_examples=36)
    @given(data=st.data())
    def barrage(data: st.DataObject) -> None:
        script = fps.gateway_scripts(fph.join_document(), fph.gateway_would_send)
        scripts = data.draw(st.lists(script, min_size=10, max_size=10))
        results = fph.run_gateway_scripts(address, scripts)
        fh.SENT["gateway"] += sum(script.count for script in scripts)
        for script, (replies, closed) in zip(scripts, results, strict=True):
            fph.check_gateway_replies(script, replies, closed)

    barrage()
    size = GATEWAY_THROWS - 2 - (fh.SENT - before)["gateway"]  # the flood makes up the count
    assert size >= GATEWAY_FLOOD, f"the generated connections carried {GATEWAY_THROWS - 2 - size} requests: " \
                                  f"raise GATEWAY_THROWS (and the README's figure)"
    flood = fps.GatewayScript(b'{"action_type": "Nope"}\n' * size, size, size)
    [(replies, _)] = fph.run_gateway_scripts(address, [flood])
    fh.SENT["gateway"] += flood.count
    fph.check_gateway_replies(flood, replies, False)
    for _ in range(2):  # oversized: answered, then the connection is closed
        with socket.create_connection(address, timeout=fh.WAIT) as sock:
            sock.sendall(b'{"action_type": "' + b"x" * (MAX_BODY_BYTES + 4096))
            fh.SENT["gateway"] += 1
            data = b""
            while chunk := sock.recv(1 << 16):
                data += chunk
        assert data.count(b"EOF") == 1 and b"GameStatus.BAD_REQUEST" in data, data[:300]
    with socket.create_connection(address, timeout=fh.WAIT) as sock:  # a normal client still plays
        sock.sendall(fph.join_document("after-the-fuzz"))
        assert b"GameStatus.CREATED" in fph.read_reply(sock)
        sock.sendall(json.dumps({"action_type": "ActionType.ScanNetwork", "parameters": {
            "source_host": {"ip": "192.168.2.2"}, "target_network": {"ip": "192.168.1.0", "mask": 24}}}).encode())
        assert b'"GameStatus.OK"' in fph.read_reply(sock)
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the gateway fuzz)")
    fuzzed("gateway", before)


# ============================================================================ the broker frontend
def test_broker_frontend_gives_the_prescribed_answers(arena: fh.Arena, frontend: list[zmq.Socket]) -> None:
    """Hand-made hostile messages whose answer PROTOCOL.md fixes exactly."""
    before = fh.SENT.copy()
    victim, other = arena.victims
    step = pack(action_to_compact(random_attacker(victim.observation, random.Random(0))))
    table = fs.frontend_table(victim.seat, other.seat, (victim.agent.world or "").encode(), step)
    failures = []
    for parts, expects in table:  # one by one, so each wrong answer is reported
        try:
            fh.exchange(frontend[:1], [(0, parts, expects)])
        except AssertionError as error:
            failures.append(str(error).splitlines()[0])
    assert not failures, "\n".join(failures)
    fuzzed("frontend table", before)


def test_broker_frontend_answers_every_hostile_message(arena: fh.Arena, frontend: list[zmq.Socket]) -> None:
    """Generated messages on four sockets: each gets its one reply (a batch one per
    triple), in order, with the prescribed code and its seat and seq echoed; another
    client's seat is always NOT_YOUR_SEAT."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    others = [victim.seat for victim in arena.victims]
    world = (arena.victims[0].agent.world or "").encode()

    @settings(FUZZ, max_examples=40)
    @given(data=st.data())
    def barrage(data: st.DataObject) -> None:
        messages = st.tuples(st.integers(0, len(frontend) - 1), fs.frontend_messages(others, world, fh.TASK))
        batch = data.draw(st.lists(messages, min_size=100, max_size=100))
        fh.exchange(frontend, [(i, parts, fs.frontend_expectations(parts, frozenset(others))) for i, parts in batch])

    barrage()
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the frontend fuzz)")
    fuzzed("frontend", before)


def test_broker_frontend_flood_and_oversized_messages(arena: fh.Arena, frontend: list[zmq.Socket]) -> None:
    """A flood on one connection is answered in full while others are served. A body over
    the 1 MiB body limit is refused with a reply; a frame over the frontend's MAXMSGSIZE
    (4 MiB) drops the connection, and the client's socket reconnects and is served."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    theirs = frozenset(victim.seat for victim in arena.victims)
    flooder = arena.dealer()
    try:
        flood = [(0, parts, fs.frontend_expectations(parts, theirs)) for parts in (
            [PROTOCOL_FRAME, fs.STEP, b"flood-%d" % n, seq_bytes(n + 1), b"\xc0"] if n % 2 else
            [PROTOCOL_FRAME, bytes([n % 256]), b"flood"] for n in range(1500))]
        started = time.monotonic()
        pending = fh.send_batch([flooder], flood)
        assert query_status(arena.frontend, timeout=fh.WAIT).get("worlds"), "no STATUS answer during a flood"
        assert time.monotonic() - started < 10, "STATUS waited for the flood"
        fh.receive_replies([flooder], pending)
    finally:
        flooder.close(linger=0)
    sock = frontend[0]
    seq = seq_bytes(7)
    padded = pack({"task": fh.TASK, "role": "Attacker", "game": "oversized", "pad": "x" * MAX_BODY_BYTES})
    refused = [[PROTOCOL_FRAME, fs.JOIN, b"", seq, padded],  # a valid join but for its size
               [PROTOCOL_FRAME, fs.STEP, b"nobody", seq, b"\xc0" * (2 * MAX_BODY_BYTES)],
               [PROTOCOL_FRAME, fs.STEP, arena.victims[0].seat, seq, b"\xc0" * (3 * MAX_BODY_BYTES)]]
    fh.exchange([sock], [(0, parts, fs.frontend_expectations(parts, theirs)) for parts in refused])
    huge = 4 * MAX_BODY_BYTES + 1
    for oversized in ([PROTOCOL_FRAME, fs.STEP, b"nobody", seq, b"\xc0" * huge],
                      [PROTOCOL_FRAME, fs.STEP, b"s" * huge, seq, b"\xc0"]):
        sock.send_multipart(oversized)
        fh.SENT["frontend"] += 1
        answered = False
        deadline = time.monotonic() + fh.WAIT
        while not answered and time.monotonic() < deadline:  # STATUS until the reconnected socket is answered
            sock.send_multipart([PROTOCOL_FRAME, fs.STATUS, b"", seq_bytes(1), b"\xc0"])
            while sock.poll(300):
                frames = sock.recv_multipart()
                assert frames[1] == fs.STATUS, f"the oversized message was answered: {fh.short(frames)}"
                answered = True
        assert answered, "no STATUS answer after the oversized message (no reconnect?)"
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the flood)")
    fuzzed("flood", before)


def test_broker_forwards_a_seat_owners_garbage_to_its_world(arena: fh.Arena, frontend: list[zmq.Socket]) -> None:
    """A client that owns a seat sends garbage for it, alone and in batches mixed with
    other clients' seats, unknown seats and a wrong world: every request is answered once
    (the world's MALFORMED or STALE_REQUEST, the broker's errors for the rest); then the
    seat plays to the end of its episode exactly like its reference, and quits."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    others = [victim.seat for victim in arena.victims]
    owner = arena.dealer()
    reference = fh.Reference("owned")
    try:
        join = {"task": fh.TASK, "role": "Attacker", "game": "owned", "name": "owner"}
        owner.send_multipart([PROTOCOL_FRAME, fs.JOIN, b"", seq_bytes(1), pack(join)])
        [joined] = fh.collect(owner, 1, fh.WAIT)
        reply = decode_reply(joined[4])
        assert fh.same(reply.observation, reference.join()) and isinstance(reply.message, dict), reply
        seat, world = joined[2], reply.message["world"].encode()
        seqs = itertools.count(2)

        def step(action: Any) -> Any:
            body = pack(action_to_compact(action))
            owner.send_multipart([PROTOCOL_FRAME, fs.STEP, seat, seq_bytes(next(seqs)), body])
            [frames] = fh.collect(owner, 1, fh.WAIT)
            return decode_reply(frames[4]).observation

        rng = random.Random(11)
        observation, _ = fh.play_lock_step(step, reference, reply.observation, rng, steps=1)

        @settings(FUZZ, max_examples=12)
        @given(data=st.data())
        def barrage(data: st.DataObject) -> None:
            batch = data.draw(st.lists(fs.owner_messages(seat, world, others), min_size=50, max_size=50))
            owed = [(parts, expect) for parts in batch
                    for expect in fs.owner_expectations(parts, seat, world, frozenset(others))]
            for parts in batch:
                owner.send_multipart(parts)
                fh.SENT["frontend"] += 1
            fh.receive_unordered(owner, owed)

        barrage()
        seqs = itertools.count(2**40)  # the garbage used seq frames of at most 4 bytes
        fh.play_lock_step(step, reference, observation, rng)
        owner.send_multipart([PROTOCOL_FRAME, fs.QUIT, seat, seq_bytes(next(seqs)), b"\xc0"])
        [frames] = fh.collect(owner, 1, fh.WAIT)
        assert decode_reply(frames[4]).status is GameStatus.OK, frames
    finally:
        owner.close(linger=0)
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the seat owner's garbage)")
    fuzzed("owner", before)


# ============================================================================ the broker backend
def test_broker_backend_refuses_strangers(arena: fh.Arena) -> None:
    """Peers that never registered: every ARENA1 message but DISCONNECT is answered
    DISCONNECT (register first), broken READYs are refused, other frames dropped."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    strangers = [arena.dealer(arena.stack.endpoints["backend"]) for _ in range(3)]
    try:
        @settings(FUZZ, max_examples=10)
        @given(data=st.data())
        def barrage(data: st.DataObject) -> None:
            batch = data.draw(st.lists(st.tuples(st.integers(0, len(strangers) - 1), fps.stranger_messages()),
                                       min_size=50, max_size=50))
            owed = Counter[int]()
            for index, parts in batch:
                strangers[index].send_multipart(parts)
                fh.SENT["backend"] += 1
                owed[index] += fps.stranger_disconnects(parts)
            for index, sock in enumerate(strangers):
                got = fh.collect(sock, owed[index], 3.0)
                if got != [[PROTOCOL_FRAME, fs.DISCONNECT]] * owed[index]:  # which message: the log says
                    logged = fh.tracebacks(watch.new())
                    raise AssertionError(f"{len(got)} answers {fh.short(got, 100)} for {owed[index]} DISCONNECTs "
                                         f"owed; the broker logged {logged[0] if logged else 'no traceback'}")

        barrage()
    finally:
        for sock in strangers:
            sock.close(linger=0)
    status = arena.status_until(lambda s: len(s.get("worlds", [])) == 1)
    assert len(status.get("worlds", [])) == 1, f"a stranger got registered: {status}"
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the backend fuzz)")
    fuzzed("strangers", before)


def test_broker_backend_survives_a_broken_registered_world(arena: fh.Arena) -> None:
    """A registered world (serving no task) sends malformed REPLYs, RELEASEs, heartbeats
    and unknown commands: each dropped, the world stays registered; and a RELEASE naming
    a seat of another world's game frees nothing."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    fake = arena.dealer(arena.stack.endpoints["backend"], identity=b"fuzz-registered-world")
    victim = arena.victims[1]

    def registered(status: dict[str, Any]) -> bool:
        return any(w["world"] == "fuzz-registered" for w in status.get("worlds", []))

    try:
        ready = {"world": "fuzz-registered", "capacity": 1, "heartbeat": 30.0, "tasks": {}, "games": []}
        fake.send_multipart([PROTOCOL_FRAME, fs.READY, pack(ready)])
        assert registered(arena.status_until(registered)), "a valid READY was refused"

        @settings(FUZZ, max_examples=8)
        @given(data=st.data())
        def barrage(data: st.DataObject) -> None:
            for parts in data.draw(st.lists(fps.registered_world_messages(), min_size=60, max_size=60)):
                fake.send_multipart(parts)
                fh.SENT["backend"] += 1
            got = fh.collect(fake, 0, 0.05)
            assert all(frames == [PROTOCOL_FRAME, fs.HEARTBEAT] for frames in got), f"to the world: {fh.short(got)}"

        barrage()
        release = {"seats": [victim.seat.decode()], "closed": [victim.game]}  # another world's seat and game
        fake.send_multipart([PROTOCOL_FRAME, fs.RELEASE, pack(release)])
        fh.SENT["backend"] += 1
        fake.send_multipart([PROTOCOL_FRAME, fs.HEARTBEAT])
        status = arena.status_until(registered)
        assert registered(status), "the broken world was dropped"
        got = fh.collect(fake, 0, 0.2)
        assert all(frames == [PROTOCOL_FRAME, fs.HEARTBEAT] for frames in got), f"to the world: {fh.short(got)}"
        games = {game["game"]: game for game in status.get("games", [])}
        assert games.get(victim.game, {}).get("seats") == {"Attacker": 1}, \
            f"a RELEASE from another world freed {victim.game}'s seat: {games.get(victim.game)}"
        victim.play(1)
    finally:
        fake.send_multipart([PROTOCOL_FRAME, fs.DISCONNECT])
        fake.close(linger=1000)
    assert not registered(arena.status_until(lambda s: not registered(s))), "DISCONNECT did not unregister"
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (during the backend fuzz)")
    fuzzed("registered world", before)


def test_broker_backend_keeps_a_live_worlds_seat_from_another_worlds_ready(arena: fh.Arena) -> None:
    """A READY that lists a game and seat another live world hosts (a hostile or stale
    world) must not take them over: the seat's agent plays on, its game stays where it is."""
    before = fh.SENT.copy()
    watch = fh.LogWatch(arena.log)
    victim = fh.Victim(arena.frontend, "victim-3")
    fake = arena.dealer(arena.stack.endpoints["backend"], identity=b"fuzz-hijacker")
    try:
        fake.send_multipart([PROTOCOL_FRAME, fs.READY, pack({
            "world": "fuzz-hijacker", "capacity": 1, "heartbeat": 30.0, "tasks": {},
            "games": [{"game": victim.game, "task": fh.TASK,
                       "seats": [[victim.seat.decode(), "Attacker", b"fuzz-client", b""]]}]})])
        fh.SENT["backend"] += 1
        refused = fh.collect(fake, 1, fh.WAIT)  # refused whole: DISCONNECT, so it registers again without
        assert refused == [[PROTOCOL_FRAME, fs.DISCONNECT]], f"to the hijacker: {fh.short(refused)}"
        status = query_status(arena.frontend, timeout=fh.WAIT)
        assert "fuzz-hijacker" not in [w["world"] for w in status.get("worlds", [])], status
        games = {game["game"]: game for game in status.get("games", [])}
        assert games.get(victim.game, {}).get("world") == arena.victims[0].agent.world, \
            f"another world's READY took {victim.game} over: {games.get(victim.game)}"
        victim.play(1)
    finally:
        fake.close(linger=0)
        victim.agent.terminate_connection()
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (a READY naming another world's seat)")
    fuzzed("hijacker", before)


# ============================================================================ afterwards
def test_after_the_barrage_every_process_serves_and_no_game_changed(arena: fh.Arena) -> None:
    """Every process alive; only the real world registered; no seat but the victims';
    the victims' games play to the end exactly like their references; a new agent plays
    an episode; every seat is freed; and (when every fuzz test ran) exactly ``PER_RUN``
    hostile messages were sent to each entry point, as the README says."""
    watch = fh.LogWatch(arena.log)
    arena.assert_alive()
    status = arena.status_until(lambda s: s.get("seats") == len(arena.victims))  # QUITs of closed connections
    assert status.get("seats") == len(arena.victims), f"seats left over: {status}"
    assert [w["world"] for w in status["worlds"]] == [w["world"] for w in arena.stack.endpoints["worlds"]], status
    for victim in arena.victims:
        victim.play()
        victim.agent.terminate_connection()
    agent = BaseAgent(arena.frontend, AgentRole.Attacker, task=fh.TASK, timeout=fh.WAIT)
    try:
        (outcome,) = list(play_episodes(agent, POLICIES["random"], 1, random.Random(7)))
    finally:
        agent.terminate_connection()
    assert 1 <= outcome.steps <= 50
    status = arena.status_until(lambda s: s.get("seats") == 0 and s.get("games") == [])
    assert status.get("seats") == 0 and status.get("games") == [], status
    arena.assert_alive()
    fh.assert_no_tracebacks(watch, "the stack (after the fuzz)")  # each fuzz test checked its own part of the log
    print(f"hostile messages sent: {dict(fh.SENT)}, total {sum(fh.SENT.values())}; "
          f"answers: {dict(sorted(fh.OUTCOMES.items()))}")
    if set(THROWS) == FUZZED:
        assert fh.SENT == PER_RUN, f"sent {dict(fh.SENT)}, PER_RUN (and the README) say {dict(PER_RUN)}"
