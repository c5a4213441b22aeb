"""Held joins leave no ghost seats (issue 13, item 3; PROTOCOL.md §3.2 and §7).

A client waiting for its game to start does not know its seat yet. When it closes or is
interrupted it gives the seat up with a QUIT that names its JOIN's seq; the world answers
the held JOIN (SEAT_RELEASED) and the QUIT (OK). A client that vanishes (SIGKILL) loses the
seat after its lease, also while the join is held; a living one keeps it, since its resent
JOINs renew the lease.

The first tests drive a GameHost directly (time passed in); the rest run real `arena`
processes (broker, world, `arena play`) on loopback with real SIGINT, SIGTERM and SIGKILL,
and raw DEALER sockets for the wire form."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq

from agents import BaseAgent, ParallelBaseAgent
from bin.stack import Stack
from protocol import PROTOCOL_FRAME, AgentRole, Command, ErrorCode, GameStatus, decode_reply, pack, seq_bytes
from world import parse_task
from world.game_host import GameHost
from world.session import HELD_JOIN_LEASE_MIN

from .fake_broker import context
from .play_harness import (
    TASKS,
    Lines,
    arena_play,
    killed_at_exit,
    running_stack,
    seat_count,
    seats_in,
    task_file,
    wait_until,
)
from .test_broker_faults import Agent, World, running

__all__ = ["context", "running"]  # fixtures, imported for pytest

JOIN, QUIT, REQUEST = Command.JOIN.frame, Command.QUIT.frame, Command.REQUEST.frame


# ---------------------------------------------------------------------- the world's rules
def pair_task(seat_lease: float, hold_timeout: float = 60.0) -> Any:
    """The default task where a game starts only with both its attacker and its defender."""
    document = yaml.safe_load((TASKS / "default.yaml").read_text())
    document["arena"].update(name="pair", start={"Attacker": 1, "Defender": 1}, seat_lease=seat_lease,
                             hold_timeout=hold_timeout)
    return parse_task(document, "pair.yaml")


def send(host: GameHost, command: bytes, seat: bytes, seq: int, body: bytes, now: float) -> list[list[bytes]]:
    return host.request([PROTOCOL_FRAME, REQUEST, b"c1", command, seat, seq_bytes(seq), body], now)


JOIN_BODY = pack({"task": "pair", "role": "Attacker", "game": "g", "name": "red"})


def test_a_held_join_loses_its_seat_after_its_lease_unless_resends_renew_it() -> None:
    host = GameHost({"pair": pair_task(seat_lease=1.0)}, "w")
    assert send(host, JOIN, b"red", 1, JOIN_BODY, now=0.0) == [], "held: the game waits for a defender"
    assert host.run_timers(HELD_JOIN_LEASE_MIN - 0.1) == [] and b"red" in host.seats, "a held join's lease is >= 5 s"
    assert send(host, JOIN, b"red", 1, JOIN_BODY, now=4.0) == [], "a resend runs nothing ..."
    assert host.run_timers(4.0 + HELD_JOIN_LEASE_MIN - 0.1) == [] and b"red" in host.seats, "... but renews the lease"
    [released] = host.run_timers(4.0 + HELD_JOIN_LEASE_MIN + 0.1)
    reply = decode_reply(released[6])
    assert released[3:6] == [JOIN, b"red", seq_bytes(1)] and reply.code is ErrorCode.SEAT_RELEASED
    assert b"red" not in host.seats and host.release_message()[2] == pack({"seats": ["red"], "closed": ["g"]})


def test_a_quit_of_a_held_join_answers_both_requests_once() -> None:
    host = GameHost({"pair": pair_task(seat_lease=600)}, "w")
    send(host, JOIN, b"red", 1, JOIN_BODY, now=0.0)
    answers = send(host, QUIT, b"red", 2, b"\xc0", now=1.0)  # as the broker forwards a QUIT naming JOIN 1
    assert sorted((message[3], decode_reply(message[6]).status, decode_reply(message[6]).code)
                  for message in answers) == [(JOIN, GameStatus.BAD_REQUEST, ErrorCode.SEAT_RELEASED),
                                              (QUIT, GameStatus.OK, None)]
    assert host.seats == {} and host.games == {}


# ---------------------------------------------------------------------- the wire, through a real stack
@pytest.fixture(scope="module")
def short_holds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One world serving the default task with 8 s holds: an attacker stuck behind a ghost
    defender fails within seconds instead of a minute."""
    with running_stack(tasks=[task_file(tmp_path_factory.mktemp("tasks"), "ghosts", hold_timeout=8)],
                       worlds=1) as stack:
        yield stack


class Raw:
    """A raw DEALER on the broker's frontend."""

    def __init__(self, frontend: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(frontend)

    def send(self, command: bytes, seat: bytes, seq: int, body: Any) -> None:
        self.socket.send_multipart([PROTOCOL_FRAME, command, seat, seq_bytes(seq), pack(body)])

    def replies(self, count: int, timeout: float = 10.0) -> list[tuple[bytes, bytes, int, Any]]:
        """``count`` replies as (command, seat, seq, reply); then nothing more for 0.5 s."""
        got = []
        for _ in range(count):
            assert self.socket.poll(timeout * 1000), f"only {len(got)} of {count} replies: {got}"
            _, command, seat, seq, body = self.socket.recv_multipart()
            got.append((command, seat, int.from_bytes(seq, "big"), decode_reply(body)))
        assert not self.socket.poll(500), "one reply per request, no more"
        return got

    def close(self) -> None:
        self.socket.close(linger=0)


def test_the_quit_of_a_pending_join_on_the_wire(short_holds: Stack) -> None:
    frontend = short_holds.endpoints["frontend"]
    raw = Raw(frontend)
    try:
        raw.send(JOIN, b"", 1, {"task": None, "role": "Defender", "game": "wire", "name": "blue"})
        wait_until(lambda: seats_in(frontend, "wire").get("Defender"), "the defender's seat is placed", 10)
        raw.send(QUIT, b"", 2, {"join": seq_bytes(1)})  # gives up JOIN 1, whose seat it never heard of
        [(c1, seat1, n1, r1), (c2, seat2, n2, r2)] = sorted(raw.replies(2))
        assert (c1, n1, r1.code) == (JOIN, 1, ErrorCode.SEAT_RELEASED), "the held join answered once"
        assert (c2, n2, r2.status) == (QUIT, 2, GameStatus.OK) and seat2 == seat1, "the QUIT names the seat"
        wait_until(lambda: seat_count(frontend) == 0, "the seat is free", 10)

        raw.send(QUIT, b"", 3, {"join": seq_bytes(99)})  # no such join: nothing to give up, still one answer
        [(command, seat, number, reply)] = raw.replies(1)
        assert (command, seat, number, reply.status) == (QUIT, b"", 3, GameStatus.OK)
        raw.send(QUIT, b"", 4, {"join": 1})  # not a seq frame
        [(command, _, number, reply)] = raw.replies(1)
        assert (command, number, reply.code) == (QUIT, 4, ErrorCode.MALFORMED)

        raw.send(JOIN, b"", 5, {"task": None, "role": "Attacker", "game": "answered", "name": "red"})
        [(command, seat, _, reply)] = raw.replies(1)
        assert reply.status is GameStatus.CREATED, "this one was answered at once"
        raw.send(QUIT, b"", 6, {"join": seq_bytes(5)})  # a client that gave up before reading its reply
        [(command, quit_seat, _, reply)] = raw.replies(1)
        assert (command, quit_seat, reply.status) == (QUIT, seat, GameStatus.OK)
        wait_until(lambda: seat_count(frontend) == 0, "that seat is free too", 10)
    finally:
        raw.close()


def test_after_a_broker_restart_a_quit_waits_behind_its_parked_join(running: Any, context: zmq.Context) -> None:
    broker = running(recovery=5.0)
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    world = World(context, broker.endpoints["backend"])
    try:
        agent.join(3, retry=True)                              # resent after the restart: parked
        agent.request(QUIT, b"", 4, {"join": seq_bytes(3)})    # and given up: parked behind it, in order
        assert agent.silent(0.3)
        world.register("w1", [{"game": "g", "task": "solo",
                               "seats": [["joining", "Attacker", b"agent-1", seq_bytes(3)]]}])
        first, second = world.next_request(), world.next_request()
        assert first[3:6] == [JOIN, b"joining", seq_bytes(3)] and second[3:6] == [QUIT, b"joining", seq_bytes(4)]
        agent.request(QUIT, b"", 5, {"join": seq_bytes(77)})  # a JOIN nobody holds: answered now, not parked
        frames, reply = agent.reply(timeout=1.0)
        assert frames[1:4] == [QUIT, b"", seq_bytes(5)] and reply.status is GameStatus.OK
    finally:
        world.close()
        agent.close()


# ---------------------------------------------------------------------- arena play, interrupted and killed
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_waiting_defender_leaves_no_ghost_seat(short_holds: Stack, signum: int) -> None:
    frontend = short_holds.endpoints["frontend"]
    game = f"duel-{signal.Signals(signum).name.lower()}"
    defender = arena_play(frontend, "--agent", "defender", "--game", game, "--episodes", "3")
    with killed_at_exit(defender):
        wait_until(lambda: seats_in(frontend, game) == {"Defender": 1}, "the defender's join is placed", 30)
        defender.send_signal(signum)
        out, err = defender.communicate(timeout=30)
    took = wait_until(lambda: not any(seats_in(frontend, game).values()), "the defender's seat is freed", 5)
    print(f"\n{signal.Signals(signum).name}: seat freed {took:.2f} s after the defender exited")
    assert defender.returncode == 128 + signum, err
    assert f"interrupted by {signal.Signals(signum).name}" in err and "0 episodes" in out
    attacker = arena_play(frontend, "--agent", "kill-chain", "--game", game, "--episodes", "4", "--json")
    with killed_at_exit(attacker):
        out, err = attacker.communicate(timeout=120)
    assert attacker.returncode == 0, err
    assert '"episodes": 4' in out and "HOLD_TIMEOUT" not in err, "no reset held for a ghost"


def test_a_killed_waiting_client_loses_its_seat_within_its_lease_and_a_living_one_keeps_it(tmp_path: Path) -> None:
    task = task_file(tmp_path, "leases", seat_lease=1.0, hold_timeout=60)
    with running_stack(tasks=[task], worlds=1) as stack:
        frontend = stack.endpoints["frontend"]
        doomed = arena_play(frontend, "--agent", "defender", "--game", "doomed")
        living = arena_play(frontend, "--agent", "defender", "--game", "living")
        with killed_at_exit(doomed, living):
            stderr = {}
            for process, game in ((doomed, "doomed"), (living, "living")):
                assert process.stderr is not None
                stderr[game] = Lines(process.stderr)
                stderr[game].wait_for(f"waiting for the game to start (game {game})", 30)
            started = time.monotonic()
            doomed.kill()
            doomed.wait()
            took = wait_until(lambda: not any(seats_in(frontend, "doomed").values()), "the killed client's seat", 30)
            print(f"\na SIGKILLed waiting client's seat was freed {took:.2f} s after the kill "
                  f"(lease 1 s, held-join minimum {HELD_JOIN_LEASE_MIN:g} s, hold timeout 60 s)")
            assert took < 20, "freed by the lease, not by the 60 s hold timeout"
            while time.monotonic() - started < 2 * HELD_JOIN_LEASE_MIN:
                assert seats_in(frontend, "living") == {"Defender": 1}, "the living client's resends renew it"
                time.sleep(0.5)
            living.send_signal(signal.SIGINT)
            assert living.wait(30) == 130
            assert stderr["living"].rest().count("waiting for the game to start") == 1, "said once, not per resend"


# ---------------------------------------------------------------------- the clients, in process
def test_clients_give_up_joins_still_in_flight_on_quit_close_and_timeout(short_holds: Stack) -> None:
    frontend = short_holds.endpoints["frontend"]
    envs = ParallelBaseAgent(frontend, AgentRole.Defender, 2, game=["held-1", "held-2"], timeout=30)
    try:
        envs.send_joins()
        wait_until(lambda: seat_count(frontend) == 2, "both joins are held", 10)
        envs.quit()
        assert envs.last_errors == [None, None], "both QUITs answered OK"
        wait_until(lambda: seat_count(frontend) == 0, "quit gave up both seats", 5)
    finally:
        envs.terminate_connection()

    with BaseAgent(frontend, AgentRole.Defender, game="held-3", timeout=1.0) as agent:
        assert agent.register() is None and agent.last_error is not None and agent.last_error.code == "TIMEOUT"
        assert seat_count(frontend) == 1, "the world still holds the join"
        assert agent.register() is None, "a second register() sends the same JOIN again ..."
        assert seat_count(frontend) == 1, "... so it waits for the same seat, not a second one"
    wait_until(lambda: seat_count(frontend) == 0, "closing gave up the join that timed out", 5)
