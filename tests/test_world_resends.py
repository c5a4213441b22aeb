"""Resends and stale requests at a world (DESIGN §7): a GameHost's per-seat reply cache, no
sockets. A client that lost its broker sends a request again with the same seq; the world
must answer it without running it twice, and must refuse an old seq outright."""

from __future__ import annotations

from typing import Any

from protocol import (
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ReplyBody,
    action_to_compact,
    decode_reply,
    pack,
    seq_bytes,
)
from world import load_task
from world.game_host import GameHost

from .conftest import scan
from .worker_harness import CLIENT, quick_task

REQUEST, JOIN, STEP, RESET = (Command.REQUEST.frame, Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame)
SCAN = pack(action_to_compact(scan(CLIENT, "192.168.1.0/24")))


def request(host: GameHost, command: bytes, seat: bytes, seq: int, body: Any, client: bytes = b"c1",
            now: float = 0.0) -> list[list[bytes]]:
    return host.request([PROTOCOL_FRAME, REQUEST, client, command, seat, seq_bytes(seq), body], now)


def join_body(role: str = "Attacker", game: str = "g", task: str = "default") -> bytes:
    return pack({"task": task, "role": role, "game": game, "name": "a"})


def only(messages: list[list[bytes]]) -> tuple[bytes, ReplyBody]:
    [message] = messages
    return message[2], decode_reply(message[6])


def test_a_resent_step_gets_the_same_reply_and_runs_once() -> None:
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body())
    first = request(host, STEP, b"s1", 2, SCAN)
    again = request(host, STEP, b"s1", 2, SCAN, client=b"c1-reconnected")
    assert again[0][6] == first[0][6], "the cached reply, byte for byte"
    assert again[0][2] == b"c1-reconnected", "sent to whoever resent it"
    session = host.games["g"].session
    assert session.seats["s1"].steps == 1, "the step ran once"
    _, reply = only(request(host, STEP, b"s1", 3, SCAN))
    assert reply.status is GameStatus.OK and session.seats["s1"].steps == 2


def test_a_seq_below_the_last_answered_one_is_refused_and_changes_nothing() -> None:
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body())
    request(host, STEP, b"s1", 5, SCAN)
    _, reply = only(request(host, STEP, b"s1", 4, SCAN))
    assert reply.status is GameStatus.BAD_REQUEST and reply.code is ErrorCode.STALE_REQUEST
    assert host.games["g"].session.seats["s1"].steps == 1


def test_a_resent_held_request_runs_nothing_and_its_reply_follows_the_resender() -> None:
    host = GameHost({"quick": quick_task(hold_timeout=60)}, "w")
    assert request(host, JOIN, b"red", 1, join_body(task="quick")) == [], "held until the defender comes"
    assert request(host, JOIN, b"red", 1, join_body(task="quick"), client=b"c1-new") == [], "a no-op"
    released = request(host, JOIN, b"blue", 1, join_body("Defender", task="quick"), client=b"c2")
    clients = sorted(message[2] for message in released)
    assert clients == [b"c1-new", b"c2"], "the held join answered once, to the resender"
    assert len(host.games["g"].session.seats) == 2


def test_ready_lists_each_seat_with_its_client_and_its_join_until_the_next_request() -> None:
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 7, join_body())
    [game] = host.hosted()
    assert game["seats"] == [["s1", "Attacker", b"c1", seq_bytes(7)]]
    request(host, STEP, b"s1", 8, SCAN, client=b"c1-again")
    [game] = host.hosted()
    assert game["seats"] == [["s1", "Attacker", b"c1-again", b""]], "a JOIN with seq 7 is no longer a resend"


def test_a_resent_join_after_its_reply_gets_the_cached_reply_not_a_second_seat() -> None:
    host = GameHost({"default": load_task()}, "w")
    _, first = only(request(host, JOIN, b"s1", 1, join_body()))
    _, again = only(request(host, JOIN, b"s1", 1, join_body()))
    assert first == again and first.status is GameStatus.CREATED
    assert list(host.seats) == [b"s1"]
