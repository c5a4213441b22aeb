"""GameHost requests with no sockets (world/game_host.py): short and unknown REQUESTs, the
JOIN refusals a client reads (shutting down, unknown task, full world, game of another task,
a seat the game refuses), internal errors, reply grouping, game seeds and the timer heap.

PROTOCOL.md §1 (REQUEST frames, batches, RELEASE), §2 (error codes), §3.2-§3.3 (JOIN, catalog,
MALFORMED), DESIGN §3 "Randomness" (game seeds), DESIGN §7 (leases, timers).
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import (
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ReplyBody,
    decode_reply,
    pack,
    seq_bytes,
    unpack,
)
from world import load_task
from world.game_host import GameHost, game_seed
from world.session import MALFORMED_MESSAGE, GameSession
from world.task import TaskConfig

from .world_samples import task_with

REQUEST, REPLY = Command.REQUEST.frame, Command.REPLY.frame
JOIN, STEP, RESET, QUIT, BATCH = (Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame, Command.QUIT.frame,
                                  Command.BATCH.frame)
NO_RESET = pack([False, False, None])
BAD_REQUEST_FRAMES = "Expected [client][command][seat][seq][body] after REQUEST."


def request(host: GameHost, command: bytes, seat: bytes, seq: int, body: Any, client: bytes = b"c1",
            now: float = 0.0) -> list[list[bytes]]:
    return host.request([PROTOCOL_FRAME, REQUEST, client, command, seat, seq_bytes(seq), body], now)


def join_body(role: str = "Attacker", game: str = "g", task: str = "default", **more: Any) -> bytes:
    return pack({"task": task, "role": role, "game": game, "name": "a", **more})


def only(messages: list[list[bytes]]) -> ReplyBody:
    [message] = messages
    assert len(message) == 7
    return decode_reply(message[6])


def released(host: GameHost) -> dict[str, Any]:
    return unpack(host.release_message()[2])


def named(name: str, **changes: Any) -> TaskConfig:
    return task_with(f"{name}.yaml", **{"arena.name": name, **changes})


# ---------------------------------------------------------------------------- REQUEST framing
def test_a_request_without_a_command_is_dropped() -> None:
    """Three frames name no command: nothing to answer."""
    host = GameHost({"default": load_task()}, "w")
    assert host.request([PROTOCOL_FRAME, REQUEST, b"c1"], 0.0) == []


@pytest.mark.parametrize(("extra", "seat", "seq"), [
    ([], b"", b""),
    ([b"s1"], b"s1", b""),
    ([b"s1", seq_bytes(3)], b"s1", seq_bytes(3)),
    ([b"s1", seq_bytes(3), b"\xc0", b"more"], b"s1", seq_bytes(3)),
])
def test_a_request_of_a_known_command_with_the_wrong_frame_count_is_bad_frames(
        extra: list[bytes], seat: bytes, seq: bytes) -> None:
    """PROTOCOL.md §1-§2: a request is [client][command][seat][seq][body]; any other count is
    BAD_FRAMES, echoing the seat and seq frames that came (empty where they did not)."""
    host = GameHost({"default": load_task()}, "w")
    [reply] = host.request([PROTOCOL_FRAME, REQUEST, b"c1", STEP, *extra], 0.0)
    assert reply[:6] == [PROTOCOL_FRAME, REPLY, b"c1", STEP, seat, seq]
    body = decode_reply(reply[6])
    assert body.status is GameStatus.BAD_REQUEST and body.code is ErrorCode.BAD_FRAMES
    assert body.message == {"message": BAD_REQUEST_FRAMES}


@pytest.mark.parametrize("extra", [[], [b"s1", seq_bytes(2), b"\xc0"]])
def test_an_unknown_command_is_bad_frames_naming_its_first_four_bytes(extra: list[bytes]) -> None:
    """PROTOCOL.md §2: an unknown command is BAD_FRAMES, with the broker's wording."""
    host = GameHost({"default": load_task()}, "w")
    [reply] = host.request([PROTOCOL_FRAME, REQUEST, b"c1", b"HELLO", *extra], 0.0)
    assert reply[3] == b"HELLO"
    body = decode_reply(reply[6])
    assert body.code is ErrorCode.BAD_FRAMES
    assert body.message == {"message": "Unknown command b'HELL' (PROTOCOL.md §2)."}


def test_a_request_that_fails_inside_the_world_still_gets_a_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    """'Whatever goes wrong, it gets a reply': an unexpected error is answered BAD_REQUEST,
    no code, with a text pointing at the world's log, and the world goes on."""
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body())

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(host.games["g"].session, "step", boom)
    [reply] = request(host, STEP, b"s1", 2, b"\xc0")
    assert reply[:6] == [PROTOCOL_FRAME, REPLY, b"c1", STEP, b"s1", seq_bytes(2)]
    body = decode_reply(reply[6])
    assert body.status is GameStatus.BAD_REQUEST and body.code is None
    assert body.message == {"message": "The world could not handle this request (internal error); see its log."}
    monkeypatch.undo()
    assert only(request(host, STEP, b"s1", 3, b"\xc0")).status is GameStatus.OK


def test_two_released_replies_of_one_client_go_as_one_batch() -> None:
    """PROTOCOL.md §1: a request that releases two resets of one client (the second voter's)
    answers them as one batch, not two messages."""
    host = GameHost({"default": task_with(**{"arena.seats": {"Attacker": 2}})}, "w")
    request(host, JOIN, b"a1", 1, join_body())
    request(host, JOIN, b"a2", 1, join_body())
    assert request(host, RESET, b"a1", 2, NO_RESET) == []
    [message] = request(host, RESET, b"a2", 2, NO_RESET)
    assert message[:6] == [PROTOCOL_FRAME, REPLY, b"c1", BATCH, b"w", RESET]
    assert message[6::3] == [b"a1", b"a2"] and message[7::3] == [seq_bytes(2)] * 2
    assert [decode_reply(body).status for body in message[8::3]] == [GameStatus.RESET_DONE] * 2


# ---------------------------------------------------------------------------- JOIN refusals
def test_a_malformed_join_body_is_malformed_with_its_reason_and_frees_the_seat() -> None:
    """PROTOCOL.md §3.3: MALFORMED names the field; the broker gets the seat back (RELEASE)."""
    host = GameHost({"default": load_task()}, "w")
    body = only(request(host, JOIN, b"s1", 1, pack([1])))
    assert body.code is ErrorCode.MALFORMED
    assert body.message == {"message": MALFORMED_MESSAGE,
                            "reason": "join: expected a map {task, role, game, name}, got list [1]"}
    assert host.seats == {} and released(host) == {"seats": ["s1"], "closed": []}


def test_a_stopping_world_refuses_joins_but_serves_its_seats() -> None:
    """A world shutting down takes no new seat (NO_WORLD: the broker places it elsewhere)."""
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body())
    host.release_message()
    host.stopping = True
    body = only(request(host, JOIN, b"s2", 1, join_body(game="h")))
    assert body.code is ErrorCode.NO_WORLD and body.message == {"message": "World w is shutting down."}
    assert sorted(host.games) == ["g"] and released(host) == {"seats": ["s2"], "closed": []}
    assert only(request(host, STEP, b"s1", 2, b"\xc0")).status is GameStatus.OK


def test_an_unknown_task_is_refused_naming_the_served_ones() -> None:
    host = GameHost({"default": load_task(), "wide": named("wide")}, "w")
    body = only(request(host, JOIN, b"s1", 1, join_body(task="nope")))
    assert body.code is ErrorCode.UNKNOWN_TASK
    assert body.message == {"message": "World w does not serve task 'nope' (it serves default, wide)."}
    assert host.games == {} and released(host) == {"seats": ["s1"], "closed": []}


def test_a_full_world_refuses_a_new_game_but_not_a_seat_in_a_hosted_one() -> None:
    """Capacity counts games: at capacity a join to a new game is NO_WORLD, one to a hosted
    game is still taken."""
    host = GameHost({"default": load_task()}, "w", capacity=1)
    request(host, JOIN, b"s1", 1, join_body())
    body = only(request(host, JOIN, b"s2", 1, join_body(game="h")))
    assert body.code is ErrorCode.NO_WORLD and body.message == {"message": "World w is full (1 games)."}
    assert only(request(host, JOIN, b"s3", 1, join_body("Defender"))).status is GameStatus.CREATED
    assert sorted(host.games) == ["g"] and sorted(host.seats) == [b"s1", b"s3"]


def test_a_world_hosts_a_thousand_games_by_default() -> None:
    """The default capacity is 1000 games (as ``arena world --capacity``)."""
    host = GameHost({"default": load_task()}, "w")
    for number in range(1000):
        request(host, JOIN, b"s%d" % number, 1, join_body(game=f"g{number}"))
    assert len(host.games) == 1000
    body = only(request(host, JOIN, b"last", 1, join_body(game="one-more")))
    assert body.code is ErrorCode.NO_WORLD and body.message == {"message": "World w is full (1000 games)."}


def test_a_game_of_another_task_is_refused() -> None:
    host = GameHost({"default": load_task(), "other": named("other")}, "w")
    request(host, JOIN, b"s1", 1, join_body())
    body = only(request(host, JOIN, b"s2", 1, join_body("Defender", task="other")))
    assert body.code is ErrorCode.GAME_TASK_MISMATCH
    assert body.message == {"message": "Game 'g' plays task default, not other."}
    assert sorted(host.seats) == [b"s1"] and released(host) == {"seats": ["s2"], "closed": []}


def test_a_seat_the_game_refuses_is_freed_and_its_empty_new_game_closed() -> None:
    """A join the session refuses (ROLE_NOT_ALLOWED) hosts no seat: RELEASE frees it, and the
    game created for it, left without seats, closes."""
    host = GameHost({"default": load_task()}, "w")
    body = only(request(host, JOIN, b"s1", 1, join_body("Benign")))
    assert body.status is GameStatus.BAD_REQUEST and body.code is ErrorCode.ROLE_NOT_ALLOWED
    assert host.seats == {} and host.games == {} and host.hosted() == []
    assert released(host) == {"seats": ["s1"], "closed": ["g"]}


def test_a_seat_a_running_game_refuses_leaves_the_game_alone() -> None:
    """GAME_FULL: the refused seat is freed; the game and its seat stay."""
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body())
    host.release_message()
    assert only(request(host, JOIN, b"s2", 1, join_body())).code is ErrorCode.GAME_FULL
    assert sorted(host.seats) == [b"s1"] and sorted(host.games) == ["g"]
    assert released(host) == {"seats": ["s2"], "closed": []}


def test_a_join_asking_for_the_catalog_gets_it() -> None:
    """PROTOCOL.md §3.3: ``catalog: true`` puts the game's catalog in the join reply."""
    host = GameHost({"default": load_task()}, "w")
    assert isinstance(only(request(host, JOIN, b"s1", 1, join_body(catalog=True))).message["catalog"], dict)
    assert "catalog" not in only(request(host, JOIN, b"s2", 1, join_body(game="h"))).message


# ---------------------------------------------------------------------------- seeds and defaults
def same_rng(host: GameHost, game: str, seed: int) -> bool:
    reference = GameSession(host.games[game].task, seed=seed, name=game)
    return host.games[game].session.rng.getstate() == reference.rng.getstate()


def test_each_hosted_game_is_seeded_by_game_seed() -> None:
    """DESIGN §3 "Randomness": a game's RNG starts from game_seed(server seed, game, task), so
    a game is the same on any world: the default game from the seed itself, others from a hash."""
    host = GameHost({"default": load_task()}, "w", seed=7)
    request(host, JOIN, b"s1", 1, join_body(game="default-1"))
    request(host, JOIN, b"s2", 1, join_body(game="duel"))
    request(host, JOIN, b"s3", 1, join_body(game="other"))
    assert same_rng(host, "default-1", 7)
    assert same_rng(host, "duel", game_seed(7, "duel"))
    assert same_rng(host, "other", game_seed(7, "other"))
    assert not same_rng(host, "duel", game_seed(7, "other"))


def test_the_default_server_seed_is_42_and_tracing_is_off() -> None:
    """GameHost defaults: server seed 42 (as ``arena world --seed``), no trace events."""
    host = GameHost({"default": load_task()}, "w")
    request(host, JOIN, b"s1", 1, join_body(game="default-1"))
    request(host, STEP, b"s1", 2, b"\xc0")
    assert same_rng(host, "default-1", 42)
    assert host.games["default-1"].session.events is None
    assert host.dirty == set() and host.take_events() == []


# ---------------------------------------------------------------------------- timers
def test_a_game_waits_in_the_timer_heap_once_per_deadline() -> None:
    """Joins that do not bring a game's deadline forward add no heap entry (the heap does not
    grow with requests); at the deadline both leases run out at once."""
    host = GameHost({"default": task_with(**{"arena.seat_lease": 100})}, "w")
    request(host, JOIN, b"s1", 1, join_body(), now=0.0)
    request(host, JOIN, b"s2", 1, join_body("Defender"), client=b"c2", now=0.0)
    assert [entry[0] for entry in host.timers] == [100.0]
    assert host.run_timers(100.0) == [] and host.games == {}
    assert released(host) == {"seats": ["s1", "s2"], "closed": ["g"]}


def test_every_game_due_runs_whatever_else_the_heap_holds() -> None:
    """run_timers wakes every game whose deadline passed, by deadline: three games whose
    leases end together all expire in one call."""
    host = GameHost({"default": task_with(**{"arena.seat_lease": 1})}, "w")
    for number in range(3):
        request(host, JOIN, b"s%d" % number, 1, join_body(game=f"g{number}"), now=0.0)
    assert host.run_timers(0.5) == [] and len(host.games) == 3
    assert host.run_timers(1.0) == []
    assert host.games == {} and host.seats == {}
    assert released(host) == {"seats": ["s0", "s1", "s2"], "closed": ["g0", "g1", "g2"]}
