"""BATCH and the QUIT of a pending join through a real broker (PROTOCOL.md §1, §3.2, §7).

A real Broker runs in a thread of the test process on loopback `*` ports; raw DEALER
sockets speak the backend protocol as worlds and the frontend protocol as agents (the
helpers of tests/test_broker_faults.py). No mocks; every wait is bounded.

Covered: a batch is forwarded whole to the world it names and its batch reply returned;
a malformed batch is one BAD_FRAMES error; each triple of a batch is checked on its own
(seq size, unknown seat, another connection's seat, a seat on another world) and only the
good ones are forwarded; during the recovery window a batch waits only for seats no world
listed yet. The QUIT of a pending join is forwarded as a plain QUIT of its seat under its
own seq; a JOIN that holds no seat is answered OK by the broker; a malformed body is
MALFORMED; during the recovery window the QUIT waits behind its parked JOIN only."""

from __future__ import annotations

from typing import Any

import pytest
import zmq

from broker import Broker
from protocol import PROTOCOL_FRAME, Command, ErrorCode, GameStatus, pack, seq_bytes

from .fake_broker import context
from .test_broker_faults import Agent, World, join_and_answer, pair, running, wait_for

__all__ = ["context", "pair", "running"]  # fixtures, imported for pytest

JOIN, STEP, BATCH, RESET, QUIT = (Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame, Command.RESET.frame,
                                  Command.QUIT.frame)
REQUEST, REPLY, READY, DISCONNECT = Command.REQUEST.frame, Command.REPLY.frame, Command.READY.frame, \
    Command.DISCONNECT.frame
NIL = b"\xc0"
BAD_BATCH = "Expected [ARENA1][BATCH][world][STEP|RESET] then (seat, seq, body) triples."
BAD_SEQ = "A batch's seq frames must be 1 to 8 bytes."
NOTHING_TO_GIVE_UP = "No seat waits for this JOIN: nothing to give up."
Pair = tuple[Broker, World, Agent]
#: seconds: the bound of a wait for what the broker sends at once (a mutant that drops it fails fast)
SHORT = 3.0


def replies(agent: Agent, count: int) -> list[tuple[tuple[bytes, ...], Any]]:
    """``count`` single replies: their (command, seat, seq) frames and decoded bodies, sorted."""
    found = []
    for _ in range(count):
        frames, reply = agent.reply(SHORT)
        assert len(frames) == 5, "a single reply"
        found.append((tuple(frames[1:4]), error(reply)))
    return sorted(found)


def no_request(world: World, seconds: float) -> bool:
    """Whether no REQUEST reaches ``world`` within ``seconds`` (heartbeats do not count)."""
    try:
        world.next_request(seconds)
    except TimeoutError:
        return True
    return False


def error(reply: Any) -> tuple[GameStatus, Any, str]:
    return reply.status, reply.code, reply.message["message"]


# ---------------------------------------------------------------------- BATCH
def test_a_batch_is_forwarded_whole_and_its_batch_reply_returned(pair: Pair, context: zmq.Context) -> None:
    """PROTOCOL.md §1: the broker forwards a batch whole (1- and 8-byte seqs alike) and
    hands the world's batch reply back; the seats are the batching connection's after it."""
    broker, world, agent = pair
    first, second = join_and_answer(world, agent, 1), join_and_answer(world, agent, 2)
    agent.send(PROTOCOL_FRAME, BATCH, b"w1", STEP, first, seq_bytes(2), b"a1", second, b"\x03", b"a2")
    request = world.next_request(SHORT)
    assert request == [PROTOCOL_FRAME, REQUEST, b"agent-1", BATCH, b"w1", STEP,
                       first, seq_bytes(2), b"a1", second, b"\x03", b"a2"]
    assert broker.inflight_of == {b"agent-1": 2}, "each triple is in flight"
    world.send(PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"w1", STEP, first, seq_bytes(2), b"r1", second, b"\x03",
               b"r2")
    assert agent.receive(SHORT) == [PROTOCOL_FRAME, BATCH, b"w1", STEP, first, seq_bytes(2), b"r1",
                                    second, b"\x03", b"r2"]
    wait_for(lambda: broker.inflight_of == {}, "the batch settled", SHORT)
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    try:
        other.request(STEP, first, 3, [0])
        frames, reply = other.reply(SHORT)
        assert frames[1:4] == [STEP, first, seq_bytes(3)] and reply.code is ErrorCode.NOT_YOUR_SEAT
    finally:
        other.close()


@pytest.mark.parametrize("shape", ["short", "count", "inner"])
def test_a_malformed_batch_is_one_bad_frames_error(pair: Pair, shape: str) -> None:
    """PROTOCOL.md §1: a batch needs a world, STEP or RESET, and whole (seat, seq, body)
    triples; anything else is answered once, BAD_FRAMES, and nothing reaches the world."""
    _, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    frames = {"short": [b"w1", STEP],
              "count": [b"w1", STEP, seat, seq_bytes(2), b"a", b"extra"],
              "inner": [b"w1", JOIN, seat, seq_bytes(2), b"a"]}[shape]
    agent.send(PROTOCOL_FRAME, BATCH, *frames)
    answer, reply = agent.reply(SHORT)
    assert answer[:4] == [PROTOCOL_FRAME, BATCH, b"", b""] and len(answer) == 5
    assert error(reply) == (GameStatus.BAD_REQUEST, ErrorCode.BAD_FRAMES, BAD_BATCH)
    assert no_request(world, 0.2)


def test_each_triple_of_a_batch_is_checked_on_its_own(pair: Pair, context: zmq.Context) -> None:
    """A bad triple is answered on its own (its inner command, seat and seq) and the good
    ones still go to the world, in order; a batch with no good triple sends nothing."""
    broker, w1, agent = pair
    mine = join_and_answer(w1, agent, 1)
    w2 = World(context, broker.endpoints["backend"])
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    try:
        w2.register("w2")
        wait_for(lambda: len(broker.placement.worlds) == 2, "w2's READY", SHORT)
        elsewhere = join_and_answer(w2, agent, 2)          # the less loaded world
        theirs = join_and_answer(w1, other, 1)             # a tie: the older world
        agent.send(PROTOCOL_FRAME, BATCH, b"w1", RESET,
                   mine, seq_bytes(5), b"ok1",
                   b"nope", seq_bytes(1), b"x",
                   theirs, seq_bytes(1), b"x",
                   elsewhere, seq_bytes(1), b"x",
                   mine, b"", b"x",
                   mine, b"123456789", b"x",
                   mine, seq_bytes(6), b"ok2")
        assert w1.next_request(SHORT) == [PROTOCOL_FRAME, REQUEST, b"agent-1", BATCH, b"w1", RESET,
                                     mine, seq_bytes(5), b"ok1", mine, seq_bytes(6), b"ok2"]
        bad = (GameStatus.BAD_REQUEST, ErrorCode.BAD_FRAMES, BAD_SEQ)
        assert replies(agent, 5) == sorted([
            ((RESET, b"nope", seq_bytes(1)), (GameStatus.BAD_REQUEST, ErrorCode.UNKNOWN_SEAT,
                                              "Unknown seat: JOIN first (or the seat was released).")),
            ((RESET, theirs, seq_bytes(1)), (GameStatus.BAD_REQUEST, ErrorCode.NOT_YOUR_SEAT,
                                             "This seat belongs to another connection.")),
            ((RESET, elsewhere, seq_bytes(1)), (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                                                "Seat is not on world b'w1'.")),
            ((RESET, mine, b""), bad),
            ((RESET, mine, b""), bad),
        ])
        assert no_request(w2, 0.1), "nothing for the other world"
        agent.send(PROTOCOL_FRAME, BATCH, b"w1", STEP, b"nope", seq_bytes(7), b"x")
        assert [key for key, _ in replies(agent, 1)] == [(STEP, b"nope", seq_bytes(7))]
        assert no_request(w1, 0.2), "a batch with no good triple sends the world nothing"
    finally:
        w2.close()
        other.close()


def test_a_batch_naming_an_unknown_world_is_game_lost_per_triple(pair: Pair) -> None:
    """A batch goes to one world, named as its join replies named it (PROTOCOL.md §1): a
    world the broker does not know fails each triple GAME_LOST, the name cut to 40 bytes."""
    _, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    name = b"w" * 40 + b"-unknown"
    agent.send(PROTOCOL_FRAME, BATCH, name, STEP, seat, seq_bytes(2), b"a")
    assert replies(agent, 1) == [((STEP, seat, seq_bytes(2)), (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST,
                                                               f"Seat is not on world {name[:40]!r}."))]
    assert no_request(world, 0.2)


def test_in_the_recovery_window_a_batch_waits_only_for_seats_no_world_listed(running: Any,
                                                                            context: zmq.Context) -> None:
    """DESIGN §7 / PROTOCOL.md §7: after a restart, a batch naming a seat no world listed yet
    waits for its world; a batch of known seats goes at once."""
    broker = running(recovery=5.0)
    w1 = World(context, broker.endpoints["backend"])
    w9 = World(context, broker.endpoints["backend"])
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    try:
        w1.register("w1")
        wait_for(lambda: broker.placement.worlds, "w1's READY", SHORT)
        seat = join_and_answer(w1, agent, 1)
        agent.send(PROTOCOL_FRAME, BATCH, b"w1", STEP, seat, seq_bytes(2), b"a", seat, seq_bytes(3), b"b")
        assert w1.next_request(SHORT)[6:] == [seat, seq_bytes(2), b"a", seat, seq_bytes(3), b"b"]
        agent.send(PROTOCOL_FRAME, BATCH, b"w9", STEP, b"old-seat", seq_bytes(4), b"c")
        assert agent.silent(0.3), "parked: its world may still be re-registering"
        w9.register("w9", [{"game": "g9", "task": "solo", "seats": [["old-seat", "Attacker", b"agent-1", b""]]}])
        assert w9.next_request(SHORT) == [PROTOCOL_FRAME, REQUEST, b"agent-1", BATCH, b"w9", STEP, b"old-seat",
                                     seq_bytes(4), b"c"]
    finally:
        for peer in (w1, w9, agent):
            peer.close()


def test_an_adopted_seat_with_a_pending_join_and_no_client_goes_to_its_first_claimant(pair: Pair) -> None:
    """PROTOCOL.md §3.4: a seat a world lists without its client is the first claimant's,
    by a single request or in a batch, also while it still names a JOIN seq."""
    broker, world, agent = pair
    world.register("w1", [{"game": "g", "task": "solo", "seats": [["one", "Attacker", b"", seq_bytes(1)],
                                                                    ["two", "Attacker", b"", seq_bytes(2)]]}])
    wait_for(lambda: b"two" in broker.placement.seats, "the seats adopted", SHORT)
    agent.request(STEP, b"one", 3, [0])
    assert world.next_request(SHORT)[2:6] == [b"agent-1", STEP, b"one", seq_bytes(3)]
    agent.send(PROTOCOL_FRAME, BATCH, b"w1", STEP, b"two", seq_bytes(3), b"a")
    assert world.next_request(SHORT)[2:] == [b"agent-1", BATCH, b"w1", STEP, b"two", seq_bytes(3), b"a"]


# ---------------------------------------------------------------------- QUIT of a pending join
def test_the_quit_of_a_pending_join_goes_to_its_seats_world_under_its_own_seq(pair: Pair) -> None:
    """PROTOCOL.md §3.2: the broker finds the seat from (client, JOIN seq) and forwards a plain
    QUIT of it (nil body) under the QUIT's seq; the world answers both, nothing stays in flight."""
    broker, world, agent = pair
    agent.send(PROTOCOL_FRAME, JOIN, b"", b"\x01", pack({"task": "solo", "role": "Attacker", "name": "a"}))
    join = world.next_request(SHORT)                              # held: never answered yet
    seat = join[4]
    agent.request(QUIT, b"", 2, {"join": b"\x01"})
    assert world.next_request(SHORT) == [PROTOCOL_FRAME, REQUEST, b"agent-1", QUIT, seat, seq_bytes(2), NIL]
    assert broker.inflight_of == {b"agent-1": 2}
    world.answer(join, GameStatus.BAD_REQUEST, {"message": "released"})
    world.answer([PROTOCOL_FRAME, REQUEST, b"agent-1", QUIT, seat, seq_bytes(2)])
    answered = sorted((tuple(frames[1:4]), reply.status) for frames, reply in (agent.reply(SHORT), agent.reply(SHORT)))
    assert answered == [((JOIN, seat, b"\x01"), GameStatus.BAD_REQUEST), ((QUIT, seat, seq_bytes(2)), GameStatus.OK)]
    wait_for(lambda: broker.inflight_of == {}, "both settled", SHORT)


def test_a_forwarded_quit_of_a_pending_join_is_game_lost_with_its_world(pair: Pair) -> None:
    """DESIGN §7: a world that goes away answers what it had in flight GAME_LOST, the
    forwarded QUIT under its own command, seat and seq."""
    broker, world, agent = pair
    agent.join(1)
    seat = world.next_request(SHORT)[4]
    agent.request(QUIT, b"", 2, {"join": seq_bytes(1)})
    world.next_request(SHORT)
    world.send(PROTOCOL_FRAME, DISCONNECT)
    gone = (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST, "The world hosting this game is gone (it disconnected).")
    assert replies(agent, 2) == sorted([((JOIN, seat, seq_bytes(1)), gone), ((QUIT, seat, seq_bytes(2)), gone)])
    assert broker.inflight_of == {}


def test_a_quit_naming_a_join_that_holds_no_seat_is_answered_by_the_broker(pair: Pair, context: zmq.Context,
                                                                           ) -> None:
    """PROTOCOL.md §3.2: never sent, another connection's, or a JOIN whose seat made other
    requests: nothing to give up; the broker answers 200 OK with an empty seat frame."""
    broker, world, agent = pair
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    try:
        seat = join_and_answer(world, agent, 1)
        agent.request(STEP, seat, 2, [0])
        world.answer(world.next_request(SHORT))
        agent.reply(SHORT)
        other.join(5)
        world.next_request(SHORT)                                 # agent-2's JOIN 5, held
        for seq, join_seq in ((3, 99), (4, 1), (6, 5)):
            agent.request(QUIT, b"", seq, {"join": seq_bytes(join_seq)})
            frames, reply = agent.reply(SHORT)
            assert frames == [PROTOCOL_FRAME, QUIT, b"", seq_bytes(seq), frames[4]]
            assert (reply.status, reply.code, reply.message) == (GameStatus.OK, None, {"message": NOTHING_TO_GIVE_UP})
        assert no_request(world, 0.2)
    finally:
        other.close()


@pytest.mark.parametrize(("body", "got"), [
    ({"join": 1}, "int 1"), ({"join": b""}, "bytes b''"), ({"join": b"123456789"}, "bytes b'123456789'"),
    ([b"\x01"], "list [b'\\x01']"), (None, "NoneType None"),
])
def test_a_malformed_quit_of_a_pending_join_is_malformed(pair: Pair, body: Any, got: str) -> None:
    """PROTOCOL.md §3.2: a body that is not {"join": seq frame of 1 to 8 bytes} is MALFORMED,
    the error naming the field, what was expected and what came."""
    _, world, agent = pair
    agent.join(1)
    world.next_request(SHORT)
    agent.request(QUIT, b"", 2, body)
    expected = f"quit.join: expected the JOIN's seq frame (1 to 8 bytes), got {got}"
    assert replies(agent, 1) == [((QUIT, b"", seq_bytes(2)), (GameStatus.BAD_REQUEST, ErrorCode.MALFORMED, expected))]
    assert no_request(world, 0.1)


def test_in_the_recovery_window_a_quit_waits_behind_its_own_parked_join_only(running: Any,
                                                                          context: zmq.Context) -> None:
    """PROTOCOL.md §3.2 and §7: a QUIT whose JOIN is parked waits behind it, in order; a QUIT
    naming a JOIN nobody holds, or another connection's parked JOIN, is answered at once."""
    broker = running(recovery=5.0)
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    world = World(context, broker.endpoints["backend"])
    try:
        agent.join(3, retry=True)
        agent.request(QUIT, b"", 4, {"join": seq_bytes(3)})
        other.join(6, retry=True)
        assert agent.silent(0.3), "both parked"
        for seq, join_seq in ((5, 77), (7, 6)):
            agent.request(QUIT, b"", seq, {"join": seq_bytes(join_seq)})
            frames, reply = agent.reply(SHORT)
            assert frames[1:4] == [QUIT, b"", seq_bytes(seq)] and reply.message == {"message": NOTHING_TO_GIVE_UP}
        world.register("w1", [{"game": "g", "task": "solo",
                               "seats": [["joining", "Attacker", b"agent-1", seq_bytes(3)],
                                         ["other", "Attacker", b"agent-2", seq_bytes(6)]]}])
        forwarded = [world.next_request(SHORT)[2:7] for _ in range(3)]
        mine = [f[1:] for f in forwarded if f[0] == b"agent-1"]
        assert [f[:3] for f in mine] == [[JOIN, b"joining", seq_bytes(3)], [QUIT, b"joining", seq_bytes(4)]], "in order"
        assert mine[1][3] == NIL
        assert [f[1:4] for f in forwarded if f[0] == b"agent-2"] == [[JOIN, b"other", seq_bytes(6)]]
    finally:
        for peer in (agent, other, world):
            peer.close()


def test_a_world_that_goes_away_fails_each_triple_of_a_batch_in_flight(pair: Pair) -> None:
    """DESIGN §7: what a world had in flight is answered GAME_LOST at once; a batch's triples
    one by one, each under the batch's inner command, its seat and its seq."""
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    agent.send(PROTOCOL_FRAME, BATCH, b"w1", RESET, seat, seq_bytes(2), b"a")
    world.next_request(SHORT)
    world.send(PROTOCOL_FRAME, DISCONNECT)
    gone = (GameStatus.BAD_REQUEST, ErrorCode.GAME_LOST, "The world hosting this game is gone (it disconnected).")
    assert replies(agent, 1) == [((RESET, seat, seq_bytes(2)), gone)]
    assert broker.inflight_of == {}
