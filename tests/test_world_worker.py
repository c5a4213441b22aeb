"""The world worker against a minimal broker made of a real ROUTER socket (no mocks).

The test binds a ROUTER (the broker's backend) and a SUB (the trace input) on free
loopback ports, runs a WorldWorker in a thread and speaks PROTOCOL.md §1's backend
dialect to it. Every wait is bounded; the trace is counted only after an ``alive``
event proved the subscription is through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from protocol import (
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    action_to_compact,
    pack,
    seq_bytes,
)
from world import GameSession, load_task
from world.worker import WorldWorker, game_seed

from .conftest import WINNING_ATTACK
from .worker_harness import (
    CLIENT_ID,
    DISCONNECT,
    REQUEST,
    SCAN,
    WAIT,
    FakeBroker,
    Harness,
    Trace,
    quick_task,
    start_game,
)


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def arena(context: zmq.Context) -> Iterator[Callable[..., Harness]]:
    """``arena(tasks=None, heartbeat=0.2, liveness=25, ...)``: a FakeBroker, a trace SUB and
    a running WorldWorker that has sent READY. Stops and joins every worker afterwards."""
    made: list[Harness] = []

    def start(tasks: list[Any] | None = None, *, heartbeat: float = 0.2, liveness: int = 25,
              **options: Any) -> Harness:
        broker = FakeBroker(context)
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"trace.")
        sub.bind("tcp://127.0.0.1:*")
        worker = WorldWorker(broker.endpoint, tasks or [load_task()], name="w-test",
                             trace_input=sub.getsockopt_string(zmq.LAST_ENDPOINT), heartbeat=heartbeat,
                             liveness=liveness, **options)
        thread = threading.Thread(target=worker.run, name="world-worker", daemon=True)
        harness = Harness(broker, worker, thread, Trace(sub))
        made.append(harness)
        thread.start()
        broker.wait(lambda: broker.readies, "READY")
        return harness

    yield start
    for harness in made:
        harness.worker.stop()
        harness.thread.join(WAIT)
        assert not harness.thread.is_alive(), "the worker did not stop"
        harness.broker.close()
        harness.trace.socket.close(linger=0)


# ---------------------------------------------------------------------- registration
def test_ready_announces_tasks_and_heartbeats_flow_when_idle(arena: Any) -> None:
    h = arena()
    identity, ready = h.broker.readies[0]
    task = load_task()
    assert ready == {"world": "w-test", "capacity": 1000, "heartbeat": 0.2, "games": [],
                     "tasks": {"default": {"seats": {"Attacker": 1, "Defender": 1},
                                           "allowed_roles": ["Attacker", "Defender"],
                                           "hash": task.configuration_hash}}}
    h.broker.wait(lambda: h.broker.heartbeats >= 3, "three heartbeats")
    assert len(h.broker.readies) == 1 and h.broker.identity == identity


# ---------------------------------------------------------------------- joining and playing
def test_join_is_held_until_the_game_starts_and_steps_match_a_local_session(arena: Any) -> None:
    h = arena()
    broker = h.broker
    broker.join(b"s-blue", "Defender", "duel")
    broker.listen(0.4)
    assert broker.answers == {}, "a defender alone does not start the default task's game"
    broker.join(b"s-red", "Attacker", "duel")
    red, blue = broker.reply(b"s-red", 1), broker.reply(b"s-blue", 1)
    for reply, seat in ((red, "s-red"), (blue, "s-blue")):
        assert reply.status is GameStatus.CREATED and reply.code is None
        assert isinstance(reply.message, dict)
        assert {k: reply.message[k] for k in ("seat", "world", "game", "task")} == {
            "seat": seat, "world": "w-test", "game": "duel", "task": "default"}
        assert reply.message["configuration_hash"] == load_task().configuration_hash

    # The same game, played in process with the seed the world derives from the game name.
    local = GameSession(load_task(), seed=game_seed(42, "duel"), name="duel")
    local.join("s-blue", "s-blue", "Defender", 0.0)
    expected = local.join("s-red", "s-red", "Attacker", 0.0)
    assert {r.seat: r.observation for r in expected} == {"s-red": red.observation, "s-blue": blue.observation}
    for seq, action in enumerate(WINNING_ATTACK[:3], start=2):
        reply = broker.call(Command.STEP, b"s-red", seq, action_to_compact(action))
        (want,) = local.step("s-red", action, 0.0)
        assert reply.status is GameStatus.OK
        assert reply.observation == want.observation
    assert reply.observation is not None and len(reply.observation.state.controlled_hosts) == 3


def test_a_batch_of_steps_gets_one_batch_reply(arena: Any) -> None:
    h = arena()
    broker = h.broker
    for seat, game in ((b"s-1", "g1"), (b"s-2", "g2")):
        start_game(broker, seat, game)
    triples = [b"s-1", seq_bytes(2), pack(SCAN), b"s-2", seq_bytes(2), pack(SCAN)]
    before = len(broker.reply_messages)
    broker.send(PROTOCOL_FRAME, REQUEST, CLIENT_ID, Command.BATCH.frame, b"w-test", Command.STEP.frame, *triples)
    one, two = broker.answer(b"s-1", 2), broker.answer(b"s-2", 2)
    assert len(broker.reply_messages) == before + 1, "one batch reply for the whole batch"
    assert one.batched and two.batched and one.command == Command.STEP.frame and one.client == CLIENT_ID
    assert one.body.status is two.body.status is GameStatus.OK
    assert one.body.observation == two.body.observation  # same task, same start, same scan


def test_reset_returns_the_last_trajectory_as_a_map(arena: Any) -> None:
    h = arena()
    start_game(h.broker, b"s-r", "solo")
    assert h.broker.call(Command.STEP, b"s-r", 2, SCAN).status is GameStatus.OK
    reply = h.broker.call(Command.RESET, b"s-r", 3, [True, False, None])
    assert reply.status is GameStatus.RESET_DONE and isinstance(reply.message, dict)
    trajectory = reply.message["last_trajectory"]
    assert trajectory["agent_name"] == "s-r" and len(trajectory["trajectory"]["actions"]) == 1


# ---------------------------------------------------------------------- bad input
def test_malformed_requests_name_the_field_and_garbage_never_kills_the_world(arena: Any) -> None:
    h = arena()
    broker = h.broker
    start_game(broker, b"s-m", "m")

    def reason(seq: int) -> str:
        reply = broker.reply(b"s-m", seq)
        assert reply.status is GameStatus.BAD_REQUEST and reply.code is ErrorCode.MALFORMED, reply
        assert isinstance(reply.message, dict)
        return reply.message["reason"]

    broker.request(Command.STEP, b"s-m", 2, b"\xc1")
    assert reason(2).startswith("body:")
    broker.request(Command.STEP, b"s-m", 3, [0, "not-an-ip", ["192.168.1.0", 24]])
    assert reason(3).startswith("action.source_host:")
    broker.request(Command.RESET, b"s-m", 4, [1, False, None])
    assert reason(4).startswith("reset.request_trajectory:")
    broker.request(Command.RESET, b"s-m", 5, "reset please")
    assert reason(5).startswith("reset:")

    lost = broker.call(Command.STEP, b"s-nobody", 1, SCAN)
    assert lost.status is GameStatus.BAD_REQUEST and lost.code is ErrorCode.GAME_LOST

    broker.request(Command.JOIN, b"s-bad", 1, ["not", "a", "map"])
    assert broker.reply(b"s-bad", 1).code is ErrorCode.MALFORMED
    broker.join(b"s-task", "Attacker", "elsewhere", task="no-such-task")
    assert broker.reply(b"s-task", 1).code is ErrorCode.UNKNOWN_TASK
    broker.wait(lambda: {"s-bad", "s-task"} <= set(broker.released()[0]), "the refused seats' release")

    for garbage in ([b"junk"], [PROTOCOL_FRAME], [PROTOCOL_FRAME, b"\x99", b"x"], [PROTOCOL_FRAME, REQUEST],
                    [b"ARENA9", REQUEST, CLIENT_ID, Command.STEP.frame, b"s-m", seq_bytes(9), b""]):
        broker.send(*garbage)
    broker.send(PROTOCOL_FRAME, REQUEST, CLIENT_ID, b"\x42", b"s-m", seq_bytes(6), b"\xc0")
    assert broker.reply(b"s-m", 6).code is ErrorCode.BAD_FRAMES
    broker.send(PROTOCOL_FRAME, REQUEST, CLIENT_ID, Command.STEP.frame, b"s-m", seq_bytes(7))
    assert broker.reply(b"s-m", 7).code is ErrorCode.BAD_FRAMES
    broker.send(PROTOCOL_FRAME, REQUEST, CLIENT_ID, Command.BATCH.frame, b"w-test", Command.QUIT.frame,
                b"s-m", seq_bytes(8), b"\xc0")
    refusal = broker.answer(b"", b"")   # a batch that cannot be read is refused like the broker does
    assert refusal.command == Command.BATCH.frame and refusal.body.code is ErrorCode.BAD_FRAMES

    assert broker.call(Command.STEP, b"s-m", 10, SCAN).status is GameStatus.OK
    assert h.thread.is_alive()


def test_a_resend_is_answered_from_the_cache_and_runs_nothing_twice(arena: Any) -> None:
    h = arena()
    broker = h.broker
    start_game(broker, b"s-c", "cache")
    first = broker.answer(b"s-c", 1)
    broker.answers.clear()
    broker.join(b"s-c", "Attacker", "cache")            # the JOIN again, same seq
    assert broker.answer(b"s-c", 1).raw == first.raw
    broker.request(Command.STEP, b"s-c", 2, SCAN)
    stepped = broker.answer(b"s-c", 2)
    broker.answers.clear()
    broker.request(Command.STEP, b"s-c", 2, b"\xc1")    # same seq: the cached reply, not a parse
    assert broker.answer(b"s-c", 2).raw == stepped.raw
    # A resend of a request the game still holds runs nothing (no BUSY, no second reply),
    # but the reply goes to the client that resent it (a client that reconnected).
    broker.join(b"s-held", "Defender", "held")
    broker.request(Command.JOIN, b"s-held", 1, {"task": "default", "role": "Defender", "game": "held",
                                               "name": "again"}, client=b"agent-2")
    broker.listen(0.3)
    assert (b"s-held", seq_bytes(1)) not in broker.answers
    broker.join(b"s-red", "Attacker", "held")
    answer = broker.answer(b"s-held", 1)
    assert answer.client == b"agent-2" and answer.body.status is GameStatus.CREATED
    assert answer.body.message["seat"] == "s-held"


# ---------------------------------------------------------------------- leaving and timers
def test_quit_is_answered_and_the_seat_and_game_are_released(arena: Any) -> None:
    h = arena()
    start_game(h.broker, b"s-q", "q")
    reply = h.broker.call(Command.QUIT, b"s-q", 2, None)
    assert reply.status is GameStatus.OK and "quit" in reply.message["message"]
    h.broker.wait(lambda: h.broker.released() == (["s-q"], ["q"]), "RELEASE of the seat and the game")
    assert h.broker.call(Command.STEP, b"s-q", 3, SCAN).code is ErrorCode.GAME_LOST


def test_the_loop_expires_held_joins(arena: Any) -> None:
    """A held join is answered HOLD_TIMEOUT after the task's ``hold_timeout`` (0.3 s here;
    PROTOCOL.md §4), by the worker's own timer: not before, and not 5x later."""
    h = arena([quick_task(0.3)])
    started = time.monotonic()
    h.broker.join(b"s-h", "Attacker", "lonely", task="quick")
    reply = h.broker.reply(b"s-h", 1)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0, f"held join answered after {elapsed:.2f} s, not the 0.3 s hold timeout"
    assert reply.status is GameStatus.BAD_REQUEST and reply.code is ErrorCode.HOLD_TIMEOUT
    h.broker.wait(lambda: h.broker.released() == (["s-h"], ["lonely"]), "RELEASE after the hold timeout")


# ---------------------------------------------------------------------- the broker link
def test_disconnect_drops_the_games_and_registers_again(arena: Any) -> None:
    h = arena()
    broker = h.broker
    start_game(broker, b"s-a", "kept")
    broker.join(b"s-d", "Defender", "waiting", seq=1)    # held: no attacker in that game
    broker.listen(0.2)
    old = broker.identity
    broker.send(PROTOCOL_FRAME, DISCONNECT)
    lost = broker.reply(b"s-d", 1)
    assert lost.status is GameStatus.BAD_REQUEST and lost.code is ErrorCode.GAME_LOST
    broker.wait(lambda: len(broker.readies) == 2, "READY after DISCONNECT")
    identity, ready = broker.readies[1]
    assert identity != old and ready["games"] == []
    assert broker.call(Command.STEP, b"s-a", 2, SCAN).code is ErrorCode.GAME_LOST


def test_a_silent_broker_gets_a_new_registration_with_the_games(arena: Any) -> None:
    h = arena(liveness=3)
    broker = h.broker
    broker.beat = 0.1
    start_game(broker, b"s-k", "keep")
    broker.beat = None                                      # the broker goes quiet
    quiet_since = time.monotonic()                          # its last message came before this
    broker.wait(lambda: len(broker.readies) >= 2, "a second READY")
    elapsed = time.monotonic() - quiet_since                # liveness 3 x 0.2 s (PROTOCOL.md §7)
    assert 0.4 <= elapsed < 1.5, f"registered again {elapsed:.2f} s after the broker fell silent, not ~0.6 s"
    broker.beat = 0.1
    identity, ready = broker.readies[-1]
    assert identity != broker.readies[0][0]
    # Each seat with its client and the seq of its JOIN (answered, no request since): a
    # restarted broker knows whose seat it is and where a resent JOIN belongs.
    assert ready["games"] == [{"game": "keep", "task": "default",
                               "seats": [["s-k", "Attacker", CLIENT_ID, seq_bytes(1)]]}]
    assert broker.call(Command.STEP, b"s-k", 2, SCAN).status is GameStatus.OK


def test_a_restarted_broker_is_told_the_games_at_once(arena: Any) -> None:
    h = arena(liveness=50)                                  # silence would take 10 s
    broker = h.broker
    start_game(broker, b"s-b", "survivor")
    started = time.monotonic()
    broker.restart()
    broker.wait(lambda: len(broker.readies) >= 2, "READY to the new broker", timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"READY {elapsed:.2f} s after the restart: not at once (the dropped link, not liveness)"
    assert broker.readies[-1][1]["games"][0]["seats"] == [["s-b", "Attacker", CLIENT_ID, seq_bytes(1)]]
    assert broker.call(Command.STEP, b"s-b", 2, SCAN).status is GameStatus.OK


def test_stop_answers_held_requests_sends_disconnect_and_exits(arena: Any) -> None:
    h = arena()
    h.broker.join(b"s-w", "Defender", "w")
    h.broker.listen(0.2)
    h.worker.stop()
    h.thread.join(WAIT)
    assert not h.thread.is_alive()
    assert h.broker.reply(b"s-w", 1).code is ErrorCode.GAME_LOST
    h.broker.wait(lambda: h.broker.disconnects == 1, "DISCONNECT")


# ---------------------------------------------------------------------- trace
def test_trace_events_arrive_in_order_with_consecutive_seq(arena: Any) -> None:
    h = arena()
    h.trace.handshake()
    start_game(h.broker, b"s-t", "traced")
    for seq, action in enumerate(WINNING_ATTACK, start=2):
        reply = h.broker.call(Command.STEP, b"s-t", seq, action_to_compact(action))
    assert reply.observation is not None and reply.observation.end
    topic = b"trace.default.traced"
    h.trace.wait(lambda: any(e["kind"] == "episode" for e in h.trace.events(topic)), "the episode event")
    events = h.trace.events(topic)
    assert [e["kind"] for e in events] == ["join", *["step"] * len(WINNING_ATTACK), "episode"]
    assert [e["step"] for e in events if e["kind"] == "step"] == list(range(1, len(WINNING_ATTACK) + 1))
    assert all(e["seat"] == "s-t" and e["game"] == "traced" and e["task"] == "default" for e in events)
    assert events[-1]["end_reason"] == "AgentStatus.Success"
    assert events[-2]["action"] == action_to_compact(WINNING_ATTACK[-1])
    seqs = [m["seq"] for _, m in h.trace.messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "one publisher, no gaps"
    assert all(m["publisher"] == "w-test" for _, m in h.trace.messages)


def test_episodes_level_leaves_out_step_events(arena: Any) -> None:
    h = arena(trace_level="episodes")
    h.trace.handshake()
    start_game(h.broker, b"s-e", "quiet")
    for seq, action in enumerate(WINNING_ATTACK, start=2):
        h.broker.call(Command.STEP, b"s-e", seq, action_to_compact(action))
    topic = b"trace.default.quiet"
    h.trace.wait(lambda: any(e["kind"] == "episode" for e in h.trace.events(topic)), "the episode event")
    assert [e["kind"] for e in h.trace.events(topic)] == ["join", "episode"]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="trace_level"):
        WorldWorker("tcp://127.0.0.1:1", [load_task()], trace_level="everything")
    with pytest.raises(ValueError, match="two tasks"):
        WorldWorker("tcp://127.0.0.1:1", [load_task(), load_task()])
