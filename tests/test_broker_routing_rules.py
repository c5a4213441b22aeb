"""The broker's routing, limits and fault answers in detail (PROTOCOL.md §1, §2, §3.1, §3.4, §3.5, §5, §7, §9).

A real Broker runs in a thread of the test process on loopback `*` ports; raw DEALER
sockets speak the backend protocol as worlds and the frontend protocol as agents (the
helpers of tests/test_broker_faults.py). No mocks; every wait is bounded.

Covered: the errors for messages it cannot route (exact texts, seat and seq echoed only when
readable); requests, JOINs (task and game filled in) and STATUS; the per-client flood limit
and resends in flight; the recovery window's limit; the layouts of world replies and batch
replies it passes on; READYs refused, conflicting, from a world declared dead or on a new
connection; heartbeats at each world's rate and a silent world declared dead on time; lost
seats told why; the broker's options, socket limits, binding and CURVE door."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import zmq

import broker.broker as broker_module
from broker import Broker
from broker.security import write_keys
from protocol import MAX_BODY_BYTES, PROTOCOL_FRAME, Command, ErrorCode, GameStatus, pack, seq_bytes, unpack
from protocol.security import CurveKeys

from .fake_broker import context
from .test_broker_faults import Agent, World, join_and_answer, pair, running, wait_for

__all__ = ["context", "pair", "running"]  # fixtures, imported for pytest

STEP, JOIN, RESET, QUIT, STATUS, ERROR = (Command.STEP.frame, Command.JOIN.frame, Command.RESET.frame,
                                         Command.QUIT.frame, Command.STATUS.frame, Command.ERROR.frame)
BATCH, REQUEST, REPLY = Command.BATCH.frame, Command.REQUEST.frame, Command.REPLY.frame
READY, HEARTBEAT, DISCONNECT = Command.READY.frame, Command.HEARTBEAT.frame, Command.DISCONNECT.frame
NIL = b"\xc0"
BAD_SEAT_FRAMES = "Expected [ARENA1][command][seat][seq of 1 to 8 bytes][body]."
BAD_JOIN_FRAMES = "Expected [ARENA1][JOIN][][seq of 1 to 8 bytes][body]."
NOT_ARENA = "Expected the frame ARENA1 first (PROTOCOL.md §1)."
Pair = tuple[Broker, World, Agent]
#: seconds: the bound of a wait for what the broker sends at once (a mutant that drops it fails fast)
SHORT = 3.0


def error(reply: Any) -> tuple[GameStatus, Any, str]:
    return reply.status, reply.code, reply.message["message"]


def not_a_beat(world: World) -> list[bytes]:
    """The next message to ``world`` that is not a HEARTBEAT."""
    deadline = time.monotonic() + SHORT
    while True:
        frames = world.receive(max(0.01, deadline - time.monotonic()))
        if frames[1:] != [HEARTBEAT]:
            return frames


def no_request(world: World, seconds: float) -> bool:
    """Whether no REQUEST reaches ``world`` within ``seconds`` (heartbeats do not count)."""
    try:
        world.next_request(seconds)
    except TimeoutError:
        return True
    return False


def started(running: Any, context: zmq.Context, **options: Any) -> Pair:
    broker = running(**options)
    world = World(context, broker.endpoints["backend"])
    world.register("w1")
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    wait_for(lambda: broker.placement.worlds, "the world's READY")
    return broker, world, agent


def test_the_flood_limit_counts_the_requests_still_in_flight(running: Any, context: zmq.Context) -> None:
    """§7 Limits: a client may have ``max_inflight`` requests in flight; an answered one frees its place."""
    broker, world, agent = started(running, context, recovery=0, max_inflight=2)
    seat = join_and_answer(world, agent, 1)
    agent.request(STEP, seat, 2, [0])
    agent.request(STEP, seat, 3, [0])
    first, _ = world.next_request(SHORT), world.next_request(SHORT)
    world.answer(first)
    frames, reply = agent.reply(SHORT)
    assert frames[3] == seq_bytes(2) and reply.status is GameStatus.OK
    agent.request(STEP, seat, 4, [0])                        # the second place again
    assert world.next_request(SHORT)[5] == seq_bytes(4)
    agent.request(STEP, seat, 5, [0])                        # two in flight (3 and 4): refused
    frames, reply = agent.reply(SHORT)
    assert frames[2:4] == [seat, seq_bytes(5)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.TOO_MANY_REQUESTS,
                            "This connection has 2 requests in flight, the most a client may have.")
    assert broker.inflight_of == {b"agent-1": 2}
    assert no_request(world, 0.2), "a refused request is not forwarded"
    world.close()
    agent.close()


def test_the_recovery_window_keeps_at_most_parked_limit_requests(
        running: Any, context: zmq.Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """§7 Broker restart: requests for seats no world listed yet wait, up to the limit; past it
    they are answered UNKNOWN_SEAT at once."""
    monkeypatch.setattr(broker_module, "PARKED_LIMIT", 2)
    broker = running(recovery=60)
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    for seat in (b"s1", b"s2", b"s3"):
        agent.request(STEP, seat, 1, [0])
    frames, reply = agent.reply(SHORT)
    assert frames[2:4] == [b"s3", seq_bytes(1)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.UNKNOWN_SEAT,
                            "Unknown seat: JOIN first (or the seat was released).")
    assert agent.silent(0.2), "the first two wait for their world"
    assert len(broker._parked) == 2
    agent.close()


def test_a_lost_seat_hears_why_its_world_went_away(pair: Pair) -> None:
    """§7 Liveness: a seat of a world that is gone is answered GAME_LOST, naming the reason."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    world.send(PROTOCOL_FRAME, DISCONNECT)
    wait_for(lambda: not broker.placement.worlds, "the world's DISCONNECT")
    agent.request(STEP, seat, 2, [0])
    frames, reply = agent.reply(SHORT)
    assert frames[2:4] == [seat, seq_bytes(2)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                            "The world hosting this game is gone (it disconnected).")


# ------------------------------------------------------------------ frames (§1, §2)
@pytest.mark.parametrize(("frames", "answer", "code", "message"), [
    ((b"ARENA2", STEP, b"s", b"\x01", NIL), [ERROR, b"", b""], ErrorCode.BAD_VERSION,
     "Expected version 1 first (PROTOCOL.md §1)."),
    ((b"ARENA2",), [ERROR, b"", b""], ErrorCode.BAD_VERSION, "Expected version 1 first (PROTOCOL.md §1)."),
    ((b"HTTP/1.1", STEP, b"s", b"\x01", NIL), [ERROR, b"", b""], ErrorCode.BAD_FRAMES, NOT_ARENA),
    ((PROTOCOL_FRAME,), [ERROR, b"", b""], ErrorCode.BAD_FRAMES, NOT_ARENA),
    ((PROTOCOL_FRAME, b"\x09", b"", b"\x01", NIL), [ERROR, b"", b""], ErrorCode.BAD_FRAMES,
     "Unknown command b'\\t' (PROTOCOL.md §2)."),
    ((PROTOCOL_FRAME, b"\x09abcdef"), [ERROR, b"", b""], ErrorCode.BAD_FRAMES,
     "Unknown command b'\\tabc' (PROTOCOL.md §2)."),
    ((PROTOCOL_FRAME, STEP, b"s", b"", NIL), [STEP, b"", b""], ErrorCode.BAD_FRAMES, BAD_SEAT_FRAMES),
    ((PROTOCOL_FRAME, RESET, b"s", b"123456789", NIL), [RESET, b"", b""], ErrorCode.BAD_FRAMES, BAD_SEAT_FRAMES),
    ((PROTOCOL_FRAME, QUIT, b"s", b"\x01"), [QUIT, b"", b""], ErrorCode.BAD_FRAMES, BAD_SEAT_FRAMES),
    ((PROTOCOL_FRAME, STEP, b"s", b"\x01", NIL, NIL), [STEP, b"", b""], ErrorCode.BAD_FRAMES, BAD_SEAT_FRAMES),
    ((PROTOCOL_FRAME, JOIN, b"", b"", NIL), [JOIN, b"", b""], ErrorCode.BAD_FRAMES, BAD_JOIN_FRAMES),
    ((PROTOCOL_FRAME, JOIN, b"", b"123456789", NIL), [JOIN, b"", b""], ErrorCode.BAD_FRAMES, BAD_JOIN_FRAMES),
    ((PROTOCOL_FRAME, JOIN, b"", b"\x01"), [JOIN, b"", b""], ErrorCode.BAD_FRAMES, BAD_JOIN_FRAMES),
    ((PROTOCOL_FRAME, JOIN, b"", b"\x01", NIL, NIL), [JOIN, b"", b""], ErrorCode.BAD_FRAMES, BAD_JOIN_FRAMES),
    ((PROTOCOL_FRAME, STEP, b"nobody", b"12345678", NIL), [STEP, b"nobody", b"12345678"], ErrorCode.UNKNOWN_SEAT,
     "Unknown seat: JOIN first (or the seat was released)."),
    ((PROTOCOL_FRAME, STEP, b"", b"\x01", NIL), [STEP, b"", b"\x01"], ErrorCode.UNKNOWN_SEAT,
     "Unknown seat: JOIN first (or the seat was released)."),
])
def test_a_message_the_broker_cannot_route_is_answered_with_what_it_expected(
        running: Any, context: zmq.Context, frames: tuple[bytes, ...], answer: list[bytes], code: ErrorCode,
        message: str) -> None:
    """§1: another first frame, an unknown command or the wrong frames get an error reply; seat and
    seq are echoed only when readable."""
    broker = running(recovery=0)
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    agent.send(*frames)
    received, reply = agent.reply(SHORT)
    assert received[:4] == [PROTOCOL_FRAME, *answer] and len(received) == 5
    assert error(reply) == (GameStatus.BAD_REQUEST, code, message)
    agent.close()


@pytest.mark.parametrize("seq", [b"\x02", b"\x00\x00\x00\x00\x00\x00\x00\x02"])
def test_a_request_of_a_seat_is_forwarded_to_its_world_as_it_came(pair: Pair, seq: bytes) -> None:
    """§1: [ARENA1][REQUEST][client][command][seat][seq][body], the body untouched; seqs of 1 to 8 bytes."""
    _, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    agent.send(PROTOCOL_FRAME, STEP, seat, seq, b"opaque body")
    assert world.next_request(SHORT) == [PROTOCOL_FRAME, REQUEST, b"agent-1", STEP, seat, seq, b"opaque body"]
    agent.send(PROTOCOL_FRAME, QUIT, seat, seq + b"\x01" if len(seq) < 8 else b"\x03", NIL)
    assert world.next_request(SHORT)[3:5] == [QUIT, seat]


def test_a_seat_answers_only_its_own_connection(pair: Pair, context: zmq.Context) -> None:
    """§7 Limits: a request naming a seat another connection holds gets NOT_YOUR_SEAT."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    other.request(RESET, seat, 7, [False, False, None])
    frames, reply = other.reply(SHORT)
    assert frames[1:4] == [RESET, seat, seq_bytes(7)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.NOT_YOUR_SEAT, "This seat belongs to another connection.")
    agent.request(STEP, seat, 2, [0])
    assert world.next_request(SHORT)[2:6] == [b"agent-1", STEP, seat, seq_bytes(2)]
    other.close()


def test_an_adopted_seat_without_an_owner_goes_to_its_first_claimant(running: Any, context: zmq.Context) -> None:
    """§3.4: a READY seat listed as [seat, role] has no owner yet; the first connection to use it owns it."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.register("w1", [{"game": "g", "task": "solo", "seats": [["s1", "Attacker"]]}])
    wait_for(lambda: broker.placement.seats, "the READY's seat")
    first, second = (Agent(context, broker.endpoints["frontend"], name) for name in (b"agent-1", b"agent-2"))
    first.request(STEP, b"s1", 4, [0])
    assert world.next_request(SHORT)[2:6] == [b"agent-1", STEP, b"s1", seq_bytes(4)]
    second.request(STEP, b"s1", 5, [0])
    assert error(second.reply(SHORT)[1])[1] is ErrorCode.NOT_YOUR_SEAT
    assert broker.placement.seats[b"s1"].client == b"agent-1"
    for peer in (world, first, second):
        peer.close()


def test_status_is_answered_by_the_broker_with_its_seq_echoed(pair: Pair) -> None:
    """§3.5: STATUS is the broker's own; the seq is echoed (at most 8 bytes), empty when none came."""
    _, world, agent = pair
    agent.send(PROTOCOL_FRAME, STATUS, b"", b"0123456789", NIL)
    frames, reply = agent.reply(SHORT)
    assert frames[:4] == [PROTOCOL_FRAME, STATUS, b"", b"01234567"]
    assert reply.status is GameStatus.OK and reply.message["worlds"][0]["world"] == "w1"
    assert reply.message["tasks"] == ["solo"] and reply.message["seats"] == 0
    for short in ([], [b""]):
        agent.send(PROTOCOL_FRAME, STATUS, *short)
        frames, reply = agent.reply(SHORT)
        assert frames[:4] == [PROTOCOL_FRAME, STATUS, b"", b""] and reply.status is GameStatus.OK
    agent.send(PROTOCOL_FRAME, STATUS, b"", b"\x07")  # a seq and no body: still echoed
    frames, reply = agent.reply(SHORT)
    assert frames[:4] == [PROTOCOL_FRAME, STATUS, b"", b"\x07"] and reply.status is GameStatus.OK
    assert world.silent(0.05) or world.receive()[1] == HEARTBEAT, "nothing forwarded"


def test_a_resend_in_flight_is_counted_once(running: Any, context: zmq.Context) -> None:
    """§7: a resend (same seat and seq) of a request in flight is forwarded again, not counted again."""
    broker, world, agent = started(running, context, recovery=0, max_inflight=1)
    seat = join_and_answer(world, agent, 1)
    agent.request(STEP, seat, 2, [0])
    agent.request(STEP, seat, 2, [0])
    first, second = world.next_request(SHORT), world.next_request(SHORT)
    assert first[4:6] == second[4:6] == [seat, seq_bytes(2)]
    assert broker.inflight_of == {b"agent-1": 1}
    world.answer(second)
    assert agent.reply(SHORT)[1].status is GameStatus.OK
    wait_for(lambda: broker.inflight_of == {}, "the count back to zero", SHORT)
    world.close()
    agent.close()


# ------------------------------------------------------------------ JOIN (§3.1)
def test_a_join_is_forwarded_with_its_task_and_game_filled_in(pair: Pair) -> None:
    """§3.1: the broker forwards the body with task and game filled in; catalog only when asked."""
    broker, world, agent = pair
    agent.request(JOIN, b"", 1, {"task": None, "role": "attacker", "catalog": True})
    request = world.next_request(SHORT)
    seat = broker.placement.joins[(b"agent-1", seq_bytes(1))]
    assert request[:6] == [PROTOCOL_FRAME, REQUEST, b"agent-1", JOIN, seat, seq_bytes(1)]
    assert unpack(request[6]) == {"task": "solo", "role": "Attacker", "game": "solo-1", "name": "agent",
                                  "catalog": True}
    agent.request(JOIN, b"", 2, {"task": "solo", "role": "Attacker", "game": "mine", "name": "red",
                                 "catalog": False})
    assert unpack(world.next_request(SHORT)[6]) == {"task": "solo", "role": "Attacker", "game": "mine",
                                                    "name": "red"}
    agent.send(PROTOCOL_FRAME, JOIN, b"", seq_bytes(1), b"the resend's own body")
    assert world.next_request(SHORT) == [PROTOCOL_FRAME, REQUEST, b"agent-1", JOIN, seat, seq_bytes(1),
                                         b"the resend's own body"], "a resend goes to the first seat as it came"
    assert broker.inflight_of == {b"agent-1": 2}


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"task": "solo", "role": "Spy"}, ErrorCode.MALFORMED,
     "join.role: expected Attacker, Defender or Benign, got str 'Spy'"),
    ([1], ErrorCode.MALFORMED, "join: expected a map {task, role, game, name}, got list [1]"),
    ({"task": "chess", "role": "Attacker"}, ErrorCode.UNKNOWN_TASK, "Unknown task 'chess': this broker serves solo."),
    ({"task": "solo", "role": "Defender"}, ErrorCode.ROLE_NOT_ALLOWED,
     "Role Defender is not allowed in task solo (allowed: Attacker)."),
])
def test_a_join_that_cannot_be_placed_is_answered_by_the_broker(pair: Pair, body: Any, code: ErrorCode,
                                                                message: str) -> None:
    broker, _, agent = pair
    agent.request(JOIN, b"", 3, body)
    frames, reply = agent.reply(SHORT)
    assert frames[:4] == [PROTOCOL_FRAME, JOIN, b"", seq_bytes(3)]
    assert error(reply) == (GameStatus.BAD_REQUEST, code, message)
    assert broker.placement.seats == {} and broker.inflight_of == {}


def test_a_join_past_the_flood_limit_takes_no_seat(running: Any, context: zmq.Context) -> None:
    """§7 Limits: a JOIN refused TOO_MANY_REQUESTS leaves no seat behind."""
    broker, world, agent = started(running, context, recovery=0, max_inflight=1)
    seat = join_and_answer(world, agent, 1)
    agent.request(STEP, seat, 2, [0])
    world.next_request(SHORT)
    agent.request(JOIN, b"", 3, {"task": "solo", "role": "Attacker", "game": "g"})
    frames, reply = agent.reply(SHORT)
    assert (frames[1], frames[3]) == (JOIN, seq_bytes(3))
    assert error(reply)[:2] == (GameStatus.BAD_REQUEST, ErrorCode.TOO_MANY_REQUESTS)
    wait_for(lambda: list(broker.placement.seats) == [seat], "the refused JOIN's seat released", SHORT)
    assert broker.placement.games["g"].taken == {"Attacker": 0}
    world.close()
    agent.close()


# ------------------------------------------------------------------ worlds (§1, §3.4, §7)
def test_a_world_message_without_the_protocol_frame_is_dropped(running: Any, context: zmq.Context) -> None:
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.send(b"ARENA2", READY, pack({"world": "w1", "tasks": {}}))
    world.send(PROTOCOL_FRAME)
    world.send(PROTOCOL_FRAME, HEARTBEAT)
    assert world.receive(SHORT)[1:] == [DISCONNECT], "not registered: a stranger must register"
    assert broker.placement.worlds == {}
    world.close()


def test_strangers_are_told_to_register_unless_they_are_leaving(running: Any, context: zmq.Context) -> None:
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.send(PROTOCOL_FRAME, DISCONNECT)
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", STEP, b"s", b"\x01", NIL)
    assert world.receive(SHORT) == [PROTOCOL_FRAME, DISCONNECT]
    assert world.silent(0.2), "one DISCONNECT: none for the DISCONNECT"
    world.send(PROTOCOL_FRAME, READY, pack({"world": "w1", "tasks": {}}), b"extra")
    assert world.receive(SHORT) == [PROTOCOL_FRAME, DISCONNECT], "a READY is [ARENA1][READY][body]"
    assert broker.placement.worlds == {}
    world.close()


def test_replies_reach_the_agent_only_in_the_documented_layout(pair: Pair) -> None:
    """§1: [ARENA1][REPLY][client][command][seat][seq][body]; other frame counts are dropped."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    agent.request(STEP, seat, 2, [0])
    world.next_request(SHORT)
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", STEP, seat, seq_bytes(2))
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", STEP, seat, seq_bytes(2), b"body", b"extra")
    world.send(PROTOCOL_FRAME, b"\x30", b"what")                          # an unknown command: ignored
    assert agent.silent(0.2)
    assert broker.inflight_of == {b"agent-1": 1}
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", STEP, seat, seq_bytes(2), b"the body")
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, STEP, seat, seq_bytes(2), b"the body"]
    wait_for(lambda: broker.inflight_of == {}, "settled", SHORT)
    assert [w.name for w in broker.placement.worlds.values()] == ["w1"]


def test_batch_replies_reach_the_agent_whole_and_settle_each_triple(pair: Pair) -> None:
    """§1: a batch reply keeps the batch layout; a world's error about a whole batch is a single reply."""
    broker, world, agent = pair
    first, second = join_and_answer(world, agent, 1), join_and_answer(world, agent, 2)
    agent.send(PROTOCOL_FRAME, BATCH, b"w1", STEP, first, b"\x03", NIL, second, b"\x04", NIL)
    assert world.next_request(SHORT)[3:] == [BATCH, b"w1", STEP, first, b"\x03", NIL, second, b"\x04", NIL]
    assert broker.inflight_of == {b"agent-1": 2}
    head = [PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"w1", STEP]
    world.send(*head, first)                                              # malformed: dropped
    world.send(*head, first, b"\x03", b"a", second)
    world.send(*head, first, b"\x03")
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"", STEP, b"x")   # not the [BATCH][][] error form
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"w1", b"", b"x")
    assert agent.silent(0.2)
    world.send(*head, first, b"\x03", b"a")                                 # one triple: a batch reply too
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, BATCH, b"w1", STEP, first, b"\x03", b"a"]
    wait_for(lambda: broker.inflight_of == {b"agent-1": 1}, "one settled", SHORT)
    world.send(*head, first, b"\x03", b"a", second, b"\x04", b"b")
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, BATCH, b"w1", STEP, first, b"\x03", b"a", second, b"\x04", b"b"]
    wait_for(lambda: broker.inflight_of == {}, "both settled", SHORT)
    agent.send(PROTOCOL_FRAME, BATCH, b"w1", RESET, first, b"\x05", NIL)
    world.next_request(SHORT)
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"", b"", b"the error")
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, BATCH, b"", b"", b"the error"]
    assert broker.inflight_of == {b"agent-1": 1}, "an error about the batch settles nothing"
    world.send(*head[:5], RESET, first, b"\x05", b"c")
    agent.receive(SHORT)
    wait_for(lambda: broker.inflight_of == {}, "settled", SHORT)


def test_any_message_of_a_world_keeps_it_alive_and_it_is_beaten_at_its_own_rate(
        running: Any, context: zmq.Context) -> None:
    """§7 Liveness: the broker heartbeats each world at its READY interval (also when its own is
    longer) and counts any message of the world as one."""
    broker = running(recovery=0, heartbeat=1.0)
    world = World(context, broker.endpoints["backend"])
    world.register("w1", heartbeat=0.1)
    wait_for(lambda: broker.placement.worlds, "the READY", SHORT)
    beats, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:
        world.send(PROTOCOL_FRAME, HEARTBEAT)
        if world.socket.poll(50):
            assert world.socket.recv_multipart() == [PROTOCOL_FRAME, HEARTBEAT]
            beats += 1
    assert 6 <= beats <= 14, f"{beats} heartbeats in 1 s at 0.1 s"
    assert [w.name for w in broker.placement.worlds.values()] == ["w1"], "alive: it sent heartbeats"
    world.close()


def test_a_world_slower_than_the_broker_is_beaten_at_its_own_rate(running: Any, context: zmq.Context) -> None:
    """§7 Liveness: a world that asked for a heartbeat every 0.5 s gets about two in a second,
    not one per tick of a broker that beats every 0.1 s."""
    broker = running(recovery=0, heartbeat=0.1)
    world = World(context, broker.endpoints["backend"])
    world.register("w1", heartbeat=0.5)
    wait_for(lambda: broker.placement.worlds, "the READY", SHORT)
    beats, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if world.socket.poll(200):
            assert world.socket.recv_multipart() == [PROTOCOL_FRAME, HEARTBEAT]
            beats += 1
        world.send(PROTOCOL_FRAME, HEARTBEAT)  # alive
    assert 1 <= beats <= 4, f"{beats} heartbeats in 1 s at 0.5 s"
    world.close()


def test_a_world_that_vanishes_does_not_stop_the_broker(running: Any, context: zmq.Context) -> None:
    """DESIGN §7: a world gone without a word is declared dead; the DISCONNECT to it goes nowhere."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"], b"world-1")
    world.register("w1", heartbeat=0.05)
    wait_for(lambda: broker.placement.worlds, "the READY", SHORT)
    world.close()
    wait_for(lambda: "w1" in broker.dead_worlds, "declared dead", SHORT)
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    agent.send(PROTOCOL_FRAME, STATUS, b"", b"\x01", NIL)
    assert agent.reply(SHORT)[1].message["worlds"] == []
    agent.close()


def test_a_dead_world_answers_the_agents_still_there_when_one_is_gone(pair: Pair, context: zmq.Context) -> None:
    """§7 Liveness: in-flight requests are answered GAME_LOST at once; an agent that left cannot be
    answered, which neither stops the others' answers nor the broker."""
    broker, world, agent = pair
    world.register("w1", heartbeat=0.2)                     # it will never beat again
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    gone, seat = join_and_answer(world, agent, 1), join_and_answer(world, other, 1)
    agent.request(STEP, gone, 2, [0])
    world.next_request(SHORT)
    other.request(STEP, seat, 2, [0])
    world.next_request(SHORT)
    agent.close()
    frames, reply = other.reply(SHORT)
    assert frames[2:4] == [seat, seq_bytes(2)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                            "The world hosting this game is gone (it missed its heartbeats).")
    assert broker.inflight_of == {}
    other.send(PROTOCOL_FRAME, STATUS, b"", b"\x01", NIL)
    assert other.reply(SHORT)[1].status is GameStatus.OK, "the broker still serves"
    other.close()


def test_a_resent_join_after_its_answer_is_in_flight_again(pair: Pair) -> None:
    """§7 Resends: a JOIN resent after the world answered it (the reply was lost) goes to its seat and
    is in flight again: its world's death answers it GAME_LOST."""
    broker, world, agent = pair
    world.register("w1", heartbeat=0.2)                     # it will never beat again
    seat = join_and_answer(world, agent, 1)
    agent.join(1, retry=True)
    assert world.next_request(SHORT)[2:6] == [b"agent-1", JOIN, seat, seq_bytes(1)]
    assert broker.inflight_of == {b"agent-1": 1}
    frames, reply = agent.reply(SHORT)
    assert frames[1:4] == [JOIN, seat, seq_bytes(1)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                            "The world hosting this game is gone (it missed its heartbeats).")
    assert broker.inflight_of == {}


def test_a_refused_ready_of_a_registered_world_drops_it(pair: Pair) -> None:
    """§3.4, §7: a registered world whose new READY is broken is told DISCONNECT and removed; its agents
    hear why."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    world.send(PROTOCOL_FRAME, READY, pack({"world": "w1"}))
    assert not_a_beat(world) == [PROTOCOL_FRAME, DISCONNECT]
    wait_for(lambda: not broker.placement.worlds, "removed", SHORT)
    agent.request(STEP, seat, 2, [0])
    assert error(agent.reply(SHORT)[1]) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                                            "The world hosting this game is gone (its READY was refused).")


def test_a_conflicting_ready_leaves_the_registered_worlds_alone(pair: Pair, context: zmq.Context) -> None:
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    game = broker.placement.seats[seat].game
    world.register("w1", [{"game": game, "task": "solo", "seats": [[seat, "Attacker", b"agent-1", b""]]},
                          {"game": "x", "task": "chess"}])
    assert not_a_beat(world) == [PROTOCOL_FRAME, DISCONNECT]
    assert broker.placement.seats[seat].game == game and set(broker.placement.games) == {game}
    agent.request(STEP, seat, 2, [0])
    assert world.next_request(SHORT)[4:6] == [seat, seq_bytes(2)], "still its world"


def test_a_world_declared_dead_that_comes_back_empty_is_forgiven(running: Any, context: zmq.Context) -> None:
    """§7 Liveness: DISCONNECT to the silent world; once it registered again empty it may later
    come back on a new connection with its new games like any world."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.register("w1", heartbeat=0.05)
    registered = time.monotonic()
    assert not_a_beat(world) == [PROTOCOL_FRAME, DISCONNECT] and "w1" in broker.dead_worlds
    assert time.monotonic() - registered < 0.7, "declared dead about 3 x 0.05 s after its READY, not later"
    world.register("w1")
    wait_for(lambda: broker.placement.worlds, "the empty READY", SHORT)
    assert broker.dead_worlds == {}
    again = World(context, broker.endpoints["backend"])
    again.register("w1", [{"game": "g", "task": "solo", "seats": [["s1", "Attacker", b"agent-1", b""]]}])
    wait_for(lambda: b"s1" in broker.placement.seats, "the games adopted", SHORT)
    world.close()
    again.close()


def test_a_world_on_a_new_connection_loses_the_requests_of_games_it_no_longer_hosts(
        pair: Pair, context: zmq.Context) -> None:
    """§7: requests for games the new READY lists stay in flight; the others are answered GAME_LOST."""
    broker, world, agent = pair
    kept, dropped = join_and_answer(world, agent, 1), join_and_answer(world, agent, 2)
    agent.request(STEP, kept, 3, [0])
    agent.request(STEP, dropped, 4, [0])
    world.next_request(SHORT), world.next_request(SHORT)
    again = World(context, broker.endpoints["backend"])
    again.register("w1", [{"game": broker.placement.seats[kept].game, "task": "solo",
                           "seats": [[kept, "Attacker", b"agent-1", b""]]}])
    frames, reply = agent.reply(SHORT)
    assert frames[2:4] == [dropped, seq_bytes(4)]
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                            "The world hosting this game is gone (it registered again on a new connection).")
    wait_for(lambda: broker.inflight_of == {b"agent-1": 1}, "one still in flight", SHORT)
    again.send(PROTOCOL_FRAME, REPLY, b"agent-1", STEP, kept, seq_bytes(3), b"ok")
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, STEP, kept, seq_bytes(3), b"ok"]
    wait_for(lambda: broker.inflight_of == {}, "the carried request settled", SHORT)
    again.close()


# ------------------------------------------------------------------ the broker itself
@pytest.mark.parametrize(("options", "message"), [
    ({"liveness": 2}, "liveness must be at least 3 heartbeats"),
    ({"heartbeat": 0}, "heartbeat and max_inflight must be positive, recovery not negative"),
    ({"recovery": -0.1}, "heartbeat and max_inflight must be positive, recovery not negative"),
    ({"max_inflight": 0}, "heartbeat and max_inflight must be positive, recovery not negative"),
])
def test_broker_options_out_of_range_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, **options)


def test_the_broker_sockets_have_the_documented_limits(context: zmq.Context) -> None:
    """§7 Limits: 4 MiB frames on the frontend, 64 MiB on the backend, explicit high-water marks."""
    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, context=context, heartbeat=0.5,
                    liveness=3, recovery=0, max_inflight=1)
    assert (broker.heartbeat, broker.liveness, broker.recovery, broker.max_inflight) == (0.5, 3, 0, 1)
    assert broker.frontend.getsockopt(zmq.MAXMSGSIZE) == 4 * MAX_BODY_BYTES == 4 << 20
    assert broker.backend.getsockopt(zmq.MAXMSGSIZE) == 64 << 20
    for socket in (broker.frontend, broker.backend):
        assert (socket.getsockopt(zmq.SNDHWM), socket.getsockopt(zmq.RCVHWM), socket.getsockopt(zmq.LINGER)) == (
            100_000, 100_000, 0)
    assert broker.trace_proxy is None
    broker.close()
    assert not context.closed, "a context the caller gave stays the caller's"


def test_bind_resolves_every_endpoint_and_close_ends_an_own_context() -> None:
    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None)
    assert broker.trace_proxy is None, "the trace proxy needs both of its endpoints"
    endpoints = broker.bind()
    assert sorted(endpoints) == ["backend", "frontend"] and endpoints == broker.endpoints
    assert all(re.fullmatch(r"tcp://127\.0\.0\.1:\d+", value) for value in endpoints.values()), endpoints
    endpoints["frontend"] = "changed"
    assert broker.endpoints["frontend"] != "changed", "a copy"
    broker.close()
    assert broker.context.closed
    traced = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    assert sorted(traced.bind()) == ["backend", "frontend", "trace", "trace_input"]
    traced.close()


def test_run_binds_when_bind_was_not_called(context: zmq.Context) -> None:
    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, context=context, recovery=0)
    thread = threading.Thread(target=broker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "frontend" in broker.endpoints, "bound", SHORT)
        agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
        agent.send(PROTOCOL_FRAME, STATUS, b"", b"\x01", NIL)
        assert agent.reply(SHORT)[1].status is GameStatus.OK
        agent.close()
    finally:
        broker.stop()
        thread.join(SHORT)
        broker.close()
    assert not thread.is_alive()


def test_a_client_reconnecting_under_its_name_takes_its_seat_back(pair: Pair, context: zmq.Context) -> None:
    """PROTOCOL §7 (ROUTER_HANDOVER): a new connection with the same identity replaces the old one."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    again = Agent(context, broker.endpoints["frontend"], b"agent-1")
    deadline = time.monotonic() + SHORT
    request = None
    while request is None and time.monotonic() < deadline:   # the new connection is routed once handed over
        again.request(STEP, seat, 2, [0])
        try:
            request = world.next_request(0.2)
        except TimeoutError:
            continue
    assert request is not None and request[2:6] == [b"agent-1", STEP, seat, seq_bytes(2)]
    world.answer(request)
    assert again.reply(SHORT)[0][2:4] == [seat, seq_bytes(2)]
    again.close()


def test_a_plain_join_is_placed_at_once_during_the_recovery_window(running: Any, context: zmq.Context) -> None:
    """§7 Broker restart: only a JOIN marked as a retry waits for its world; a first JOIN is placed."""
    broker, world, agent = started(running, context, recovery=60)
    agent.join(1)
    assert world.next_request(SHORT)[3] == JOIN
    agent.join(2, retry=True)
    assert no_request(world, 0.2) and len(broker._parked) == 1
    world.close()
    agent.close()


def test_the_broker_remembers_at_most_10000_dead_worlds(running: Any, context: zmq.Context) -> None:
    """DESIGN §7: names of worlds declared dead are kept, the oldest forgotten past 10,000."""
    broker = running(recovery=0)
    broker.dead_worlds.update((f"old-{n}", 0.0) for n in range(10_000))
    world = World(context, broker.endpoints["backend"])
    world.register("w1", heartbeat=0.05)
    wait_for(lambda: "w1" in broker.dead_worlds, "declared dead", SHORT)
    assert len(broker.dead_worlds) == 10_000 and "old-0" not in broker.dead_worlds and "old-1" in broker.dead_worlds
    world.close()


def test_the_broker_defaults_are_the_documented_ones() -> None:
    """PROTOCOL.md §7 and README: heartbeat 1 s, liveness 3, recovery 10 s, max-inflight 4096."""
    broker = Broker()
    try:
        assert broker.addresses == broker_module.DEFAULT_ENDPOINTS
        assert (broker.heartbeat, broker.liveness, broker.recovery, broker.max_inflight) == (1.0, 3, 10.0, 4096)
        assert broker.trace_proxy is not None and broker.curve is None
    finally:
        broker.close()


def test_a_join_goes_to_the_task_it_names(running: Any, context: zmq.Context) -> None:
    """§3.1: with several tasks served, the JOIN's task is the one it names."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.send(PROTOCOL_FRAME, READY, pack({"world": "w1", "capacity": 10, "tasks": {
        "default": {"seats": {"Attacker": 1}, "allowed_roles": ["Attacker"]},
        "duel": {"seats": {"Attacker": 1, "Defender": 1}, "allowed_roles": ["Attacker", "Defender"]}}}))
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    wait_for(lambda: broker.placement.worlds, "the READY", SHORT)
    agent.request(JOIN, b"", 1, {"task": "duel", "role": "Attacker"})
    assert unpack(world.next_request(SHORT)[6])["task"] == "duel"
    world.close()
    agent.close()


def test_with_curve_only_allowed_clients_are_answered(context: zmq.Context, tmp_path: Path) -> None:
    """§9 Security: with CURVE every broker socket is a CURVE server; a client with an allowed key is
    answered, a plain one is not."""
    write_keys(tmp_path, ["agent"])
    keys = CurveKeys(tmp_path)
    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, context=context, recovery=0,
                    curve=keys.server())
    broker.bind()
    thread = threading.Thread(target=broker.run, daemon=True)
    thread.start()
    allowed = context.socket(zmq.DEALER)
    keys.client("agent").apply(allowed)
    plain = context.socket(zmq.DEALER)
    try:
        for socket in (allowed, plain):
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(broker.endpoints["frontend"])
            socket.send_multipart([PROTOCOL_FRAME, STATUS, b"", b"\x01", NIL])
        assert allowed.poll(SHORT * 1000), "an allowed client is answered"
        assert allowed.recv_multipart()[:4] == [PROTOCOL_FRAME, STATUS, b"", b"\x01"]
        assert not plain.poll(200), "a client without CURVE is not"
    finally:
        allowed.close(linger=0)
        plain.close(linger=0)
        broker.stop()
        thread.join(SHORT)
        broker.close()
    traced = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                    curve=keys.server())                # its own context: one ZAP handler per context
    try:
        assert traced.trace_proxy is not None
        sockets = (traced.frontend, traced.backend, traced.trace_proxy.input, traced.trace_proxy.output)
        assert [socket.getsockopt(zmq.CURVE_SERVER) for socket in sockets] == [1, 1, 1, 1], "every socket"
    finally:
        traced.close()


def test_a_lost_seat_is_answered_at_once_also_during_the_recovery_window(running: Any, context: zmq.Context) -> None:
    """§7 Broker restart: only seats no world listed yet wait; a seat whose world is gone is GAME_LOST now."""
    broker, world, agent = started(running, context, recovery=60)
    seat = join_and_answer(world, agent, 1)
    world.send(PROTOCOL_FRAME, DISCONNECT)
    wait_for(lambda: not broker.placement.worlds, "the world's DISCONNECT", SHORT)
    agent.request(STEP, seat, 2, [0])
    frames, reply = agent.reply(SHORT)
    assert frames[2:4] == [seat, seq_bytes(2)] and error(reply)[1] is ErrorCode.GAME_LOST
    assert broker._parked == deque()
    world.close()
    agent.close()
