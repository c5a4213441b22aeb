"""The broker under faults (DESIGN §7): a real Broker in a thread on loopback `*` ports,
raw DEALER sockets as worlds and agents (no mocks), short heartbeats, bounded waits.

Covered: a world declared dead (in-flight requests answered at once, idle agents told
GAME_LOST, its old games refused when it comes back), a world re-registering on a new
connection (its requests stay in flight), the recovery window after a restart, resent
JOINs, the per-client flood limit and sequence-frame limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from broker import Broker
from protocol import PROTOCOL_FRAME, Command, ErrorCode, GameStatus, decode_reply, pack, seq_bytes

from .fake_broker import context

__all__ = ["context"]  # the fixture, imported for pytest

WAIT = 10.0
JOIN, STEP, BATCH = Command.JOIN.frame, Command.STEP.frame, Command.BATCH.frame
READY, HEARTBEAT, DISCONNECT = Command.READY.frame, Command.HEARTBEAT.frame, Command.DISCONNECT.frame
REQUEST, REPLY = Command.REQUEST.frame, Command.REPLY.frame
SOLO = {"solo": {"seats": {"Attacker": 1}, "allowed_roles": ["Attacker"], "hash": ""}}


class Peer:
    """A DEALER with bounded receives."""

    def __init__(self, context: zmq.Context, endpoint: str, identity: bytes | None = None) -> None:
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if identity:
            self.socket.setsockopt(zmq.ROUTING_ID, identity)
        self.socket.connect(endpoint)

    def send(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def receive(self, timeout: float = WAIT) -> list[bytes]:
        if not self.socket.poll(timeout * 1000):
            raise TimeoutError(f"nothing received within {timeout} s")
        return self.socket.recv_multipart()

    def silent(self, seconds: float) -> bool:
        return not self.socket.poll(seconds * 1000)

    def close(self) -> None:
        self.socket.close(linger=0)


class World(Peer):
    def register(self, name: str, games: list[Any] | None = None, heartbeat: float = 5.0) -> None:
        """READY; the default heartbeat keeps a world that never beats alive for 15 s."""
        self.send(PROTOCOL_FRAME, READY, pack({"world": name, "capacity": 10, "heartbeat": heartbeat,
                                               "tasks": SOLO, "games": games or []}))

    def next_request(self, timeout: float = WAIT) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames = self.receive(max(0.01, deadline - time.monotonic()))
            if frames[1] == REQUEST:
                return frames
        raise TimeoutError("no REQUEST")

    def answer(self, request: list[bytes], status: GameStatus = GameStatus.OK, message: Any = None) -> None:
        client, command, seat, seq = request[2:6]
        body = pack([status.value, None, message or {"seat": seat.decode(), "world": "w", "game": "g"}, None])
        self.send(PROTOCOL_FRAME, REPLY, client, command, seat, seq, body)


class Agent(Peer):
    def request(self, command: bytes, seat: bytes, seq: int, body: Any = None) -> None:
        self.send(PROTOCOL_FRAME, command, seat, seq_bytes(seq), pack(body))

    def join(self, seq: int = 1, **extra: Any) -> None:
        self.request(JOIN, b"", seq, {"task": "solo", "role": "Attacker", "game": None, "name": "a", **extra})

    def reply(self, timeout: float = WAIT) -> tuple[list[bytes], Any]:
        frames = self.receive(timeout)
        return frames, decode_reply(frames[-1])


@pytest.fixture
def running(context: zmq.Context) -> Iterator[Any]:
    """Start a broker with the given options; stopped and closed afterwards."""
    started: list[tuple[Broker, threading.Thread]] = []

    def start(**options: Any) -> Broker:
        broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, context=context,
                        **{"heartbeat": 0.2, **options})
        broker.bind()
        thread = threading.Thread(target=broker.run, daemon=True)
        thread.start()
        started.append((broker, thread))
        return broker

    yield start
    for broker, thread in started:
        broker.stop()
        thread.join(timeout=WAIT)
        broker.close()


def join_and_answer(world: World, agent: Agent, seq: int = 1) -> bytes:
    agent.join(seq)
    request = world.next_request()
    world.answer(request, GameStatus.CREATED)
    _, reply = agent.reply()
    assert reply.status is GameStatus.CREATED
    return request[4]


@pytest.fixture
def pair(running: Any, context: zmq.Context) -> Iterator[tuple[Broker, World, Agent]]:
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    world.register("w1")
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    wait_for(lambda: broker.placement.worlds, "the world's READY")
    yield broker, world, agent
    world.close()
    agent.close()


def wait_for(condition: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)  # another thread's state: nothing to wait on


def test_a_dead_world_fails_requests_in_flight_at_once_and_idle_agents_on_their_next(
        pair: tuple[Broker, World, Agent], context: zmq.Context) -> None:
    broker, world, agent = pair
    world.register("w1", heartbeat=0.2)                   # it will never beat: dead after 0.6 s
    busy = join_and_answer(world, agent, 1)
    idle_agent = Agent(context, broker.endpoints["frontend"], b"agent-2")
    idle = join_and_answer(world, idle_agent, 1)          # the world's last message: its answer
    silent_since = time.monotonic()
    agent.request(STEP, busy, 2, [0])
    world.next_request()                                  # forwarded, never answered: the world hangs
    frames, reply = agent.reply()                         # liveness 3 x 0.2 s after its last message
    elapsed = time.monotonic() - silent_since
    assert reply.code is ErrorCode.GAME_LOST and frames[2:4] == [busy, seq_bytes(2)]
    assert 0.45 <= elapsed < 1.5, f"declared dead {elapsed:.2f} s after its last message, not ~0.6 s (3 x 0.2 s)"
    idle_agent.request(STEP, idle, 2, [0])
    _, reply = idle_agent.reply()
    assert reply.code is ErrorCode.GAME_LOST, "an idle agent hears GAME_LOST, not UNKNOWN_SEAT"
    assert broker.inflight_of == {}, "nothing counted in flight any more"


def test_a_world_declared_dead_must_drop_its_games_before_it_is_adopted_again(
        pair: tuple[Broker, World, Agent], context: zmq.Context) -> None:
    broker, world, agent = pair
    world.register("w1", heartbeat=0.2)
    seat = join_and_answer(world, agent, 1)
    wait_for(lambda: "w1" in broker.dead_worlds, "the world declared dead")   # it never heartbeats
    back = World(context, broker.endpoints["backend"])
    back.register("w1", [{"game": "solo-1", "task": "solo", "seats": [[seat, "Attacker", b"agent-1", b""]]}])
    frames = back.receive()
    assert frames[1] == DISCONNECT, "told to drop the games its agents were told are lost"
    back.register("w1")
    wait_for(lambda: broker.placement.worlds, "the empty READY accepted")
    assert seat not in broker.placement.seats
    back.close()


def test_a_world_on_a_new_connection_keeps_its_games_and_requests_in_flight(
        pair: tuple[Broker, World, Agent], context: zmq.Context) -> None:
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    agent.request(STEP, seat, 2, [0])
    world.next_request()
    game = broker.placement.seats[seat].game
    again = World(context, broker.endpoints["backend"])
    again.register("w1", [{"game": game, "task": "solo", "seats": [[seat, "Attacker", b"agent-1", b""]]}])
    assert agent.silent(0.3), "no GAME_LOST: the world still hosts the game"
    agent.request(STEP, seat, 2, [0])                     # the agent resends; the new connection gets it
    request = again.next_request()
    assert request[4:6] == [seat, seq_bytes(2)]
    again.answer(request)
    frames, reply = agent.reply()
    assert frames[2:4] == [seat, seq_bytes(2)] and reply.status is GameStatus.OK
    assert broker.inflight_of == {}
    again.close()


def test_a_resent_join_goes_to_the_seat_the_first_took(pair: tuple[Broker, World, Agent]) -> None:
    broker, world, agent = pair
    agent.join(1)
    first = world.next_request()
    agent.join(1, retry=True)
    second = world.next_request()
    assert second[4] == first[4], "the same seat: the world treats it as a resend"
    assert len(broker.placement.seats) == 1


def test_after_a_restart_requests_for_unlisted_seats_wait_for_their_world(running: Any,
                                                                        context: zmq.Context) -> None:
    broker = running(recovery=2.0)  # the world registers well within it, even on a loaded machine
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    agent.request(STEP, b"old-seat", 9, [0])
    agent.join(3, retry=True)                             # a JOIN resent after the restart
    assert agent.silent(0.3), "parked: the seats' world may still be re-registering"
    world = World(context, broker.endpoints["backend"])
    world.register("w1", [{"game": "g", "task": "solo",
                           "seats": [["old-seat", "Attacker", b"agent-1", b""],
                                     ["joining", "Attacker", b"agent-1", seq_bytes(3)]]}])
    forwarded = {tuple(world.next_request()[3:6]) for _ in range(2)}
    assert forwarded == {(STEP, b"old-seat", seq_bytes(9)), (JOIN, b"joining", seq_bytes(3))}
    agent.request(STEP, b"never-was", 1, [0])
    frames, reply = agent.reply(timeout=WAIT)             # answered when the window closes
    assert reply.code is ErrorCode.UNKNOWN_SEAT and frames[2] == b"never-was"
    world.close()
    agent.close()


def test_a_flood_of_requests_in_flight_is_refused_past_the_limit(running: Any, context: zmq.Context) -> None:
    broker = running(recovery=0, max_inflight=5)
    world = World(context, broker.endpoints["backend"])
    world.register("w1")
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    wait_for(lambda: broker.placement.worlds, "READY")
    seat = join_and_answer(world, agent, 1)
    for seq in range(2, 12):
        agent.request(STEP, seat, seq, [0])
    refused = [agent.reply()[1].code for _ in range(5)]
    assert refused == [ErrorCode.TOO_MANY_REQUESTS] * 5
    assert broker.inflight_of == {b"agent-1": 5}
    other = Agent(context, broker.endpoints["frontend"], b"agent-2")
    other.request(STEP, seat, 50, [0])
    assert other.reply()[1].code is ErrorCode.NOT_YOUR_SEAT, "the limit is per client; the seat is still guarded"
    for _ in range(5):
        world.answer(world.next_request())
    assert {agent.reply()[1].status for _ in range(5)} == {GameStatus.OK}
    wait_for(lambda: broker.inflight_of == {}, "the count back to zero")
    world.close()
    agent.close()
    other.close()


@pytest.mark.parametrize("seq", [b"", b"123456789"])
def test_a_sequence_frame_of_the_wrong_size_is_a_bad_frames_error(pair: tuple[Broker, World, Agent],
                                                                   seq: bytes) -> None:
    _, _, agent = pair
    agent.send(PROTOCOL_FRAME, STEP, b"s", seq, pack([0]))
    agent.send(PROTOCOL_FRAME, JOIN, b"", seq, pack({"role": "Attacker"}))
    for _ in range(2):
        _, reply = agent.reply()
        assert reply.code is ErrorCode.BAD_FRAMES and "1 to 8 bytes" in reply.message["message"]


def test_hostile_world_messages_are_dropped_and_strangers_told_to_register(pair: tuple[Broker, World, Agent],
                                                                          context: zmq.Context) -> None:
    broker, world, agent = pair
    for frames in ([PROTOCOL_FRAME, REPLY, b"x"], [PROTOCOL_FRAME, REPLY, b"agent-1", BATCH, b"w", STEP, b"s"],
                   [PROTOCOL_FRAME, Command.RELEASE.frame, b"\xc1"],
                   [PROTOCOL_FRAME, Command.RELEASE.frame, pack({"seats": 3, "closed": [1]})]):
        world.send(*frames)
    stranger = World(context, broker.endpoints["backend"])
    stranger.send(PROTOCOL_FRAME, HEARTBEAT)
    assert stranger.receive()[1] == DISCONNECT, "a stranger must register first"
    stranger.send(PROTOCOL_FRAME, READY, pack({"world": "w9", "tasks": {}, "games": "nope"}))
    assert stranger.receive()[1] == DISCONNECT, "a broken READY is refused"
    assert [w.name for w in broker.placement.worlds.values()] == ["w1"]
    join_and_answer(world, agent, 1)                      # the world still serves
    stranger.close()


def test_a_ready_cannot_take_over_a_live_worlds_game_or_seat(pair: tuple[Broker, World, Agent],
                                                             context: zmq.Context) -> None:
    broker, world, agent = pair
    seat = join_and_answer(world, agent, 1)
    game = broker.placement.seats[seat].game
    hijacker = World(context, broker.endpoints["backend"])
    for games in ([{"game": game, "task": "solo", "seats": []}],
                  [{"game": "other", "task": "solo", "seats": [[seat, "Attacker", b"x", b""]]}],
                  [{"game": "new", "task": "chess", "seats": []}]):
        hijacker.register("w-hijacker", games)
        assert hijacker.receive()[1] == DISCONNECT
    agent.request(STEP, seat, 2, [0])
    request = world.next_request()                          # still routed to the real world
    assert request[4:6] == [seat, seq_bytes(2)]
    hijacker.close()


def test_one_frame_is_a_frame_count_error_not_a_version_error(pair: tuple[Broker, World, Agent]) -> None:
    _, _, agent = pair
    agent.send(PROTOCOL_FRAME)
    _, reply = agent.reply()
    assert reply.code is ErrorCode.BAD_FRAMES
