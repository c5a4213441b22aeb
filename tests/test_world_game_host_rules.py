"""GameHost rules (world/game_host.py) with no sockets: game seeds, the exact error texts a
client reads, batch framing, releases and closed games, timers and resends.

PROTOCOL.md §1 (batches, RELEASE), §2 (error codes), §3 (REQUEST bodies), DESIGN §7 (resends),
reference netsecgame.md §6.11-§6.12 (addresses, seeds).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
import yaml

from protocol import (
    MAX_BODY_BYTES,
    PROTOCOL_FRAME,
    Command,
    ErrorCode,
    GameStatus,
    ProtocolError,
    ReplyBody,
    action_from_packed,
    action_to_compact,
    decode_reply,
    pack,
    seq_bytes,
    unpack,
)
from world import load_task, parse_task
from world.game_host import GameHost, game_seed
from world.session import MALFORMED_MESSAGE

from .conftest import TASKS, scan
from .worker_harness import CLIENT, quick_task

REQUEST, REPLY = Command.REQUEST.frame, Command.REPLY.frame
JOIN, STEP, RESET, QUIT, BATCH = (Command.JOIN.frame, Command.STEP.frame, Command.RESET.frame, Command.QUIT.frame,
                                  Command.BATCH.frame)
SCAN = pack(action_to_compact(scan(CLIENT, "192.168.1.0/24")))
NO_RESET = pack([False, False, None])


def task(name: str = "wide", **arena: Any) -> Any:
    """The default task with other ``arena`` (and ``env``) settings."""
    document = copy.deepcopy(yaml.safe_load((TASKS / "default.yaml").read_text()))
    document["env"].update(arena.pop("env", {}))
    document["arena"].update(name=name, **arena)
    return parse_task(document, f"{name}.yaml")


def request(host: GameHost, command: bytes, seat: bytes, seq: int, body: Any, client: bytes = b"c1",
            now: float = 0.0) -> list[list[bytes]]:
    return host.request([PROTOCOL_FRAME, REQUEST, client, command, seat, seq_bytes(seq), body], now)


def join_body(role: str = "Attacker", game: str = "g", task_name: str = "default") -> bytes:
    return pack({"task": task_name, "role": role, "game": game, "name": "a"})


def only(messages: list[list[bytes]]) -> ReplyBody:
    [message] = messages
    assert len(message) == 7
    return decode_reply(message[6])


def reason(messages: list[list[bytes]]) -> str:
    reply = only(messages)
    assert reply.code is ErrorCode.MALFORMED and reply.message["message"] == MALFORMED_MESSAGE
    return reply.message["reason"]


def joined(**arena: Any) -> GameHost:
    host = GameHost({"default": load_task()} if not arena else {"default": task("default", **arena)}, "w")
    assert only(request(host, JOIN, b"s1", 1, join_body())).status is GameStatus.CREATED
    return host


# ---------------------------------------------------------------------------- seeds
def test_a_tasks_default_game_starts_from_the_server_seed_and_others_from_a_hash() -> None:
    """Reference §6.12: NetSecGame's one game runs ``random.seed(seed)``; the default game
    (``<task>-1``) does the same, every other game a stable hash of (seed, name)."""
    hashed = int.from_bytes(hashlib.sha256(b"42:duel").digest()[:8], "big")
    assert game_seed(42, "default-1", "default") == 42
    assert game_seed(42, "duel", "default") == hashed
    assert game_seed(42, "duel") == hashed
    assert game_seed(42, "default-2", "default") != 42
    assert game_seed(42, "None-1") != 42, "no task: never the default game"


# ---------------------------------------------------------------------------- error texts
def test_a_request_for_a_seat_the_world_does_not_host_says_the_game_is_gone() -> None:
    """PROTOCOL.md §2 GAME_LOST, with its text; only a QUIT frees the unknown seat (RELEASE)."""
    host = GameHost({"default": load_task()}, "w")
    reply = only(request(host, STEP, b"ghost", 2, SCAN))
    assert reply.code is ErrorCode.GAME_LOST
    assert reply.message == {"message": "World w hosts no game with this seat: the game is gone."}
    assert unpack(host.release_message()[2]) == {"seats": [], "closed": []}
    assert only(request(host, QUIT, b"ghost", 3, b"\xc0")).code is ErrorCode.GAME_LOST
    assert unpack(host.release_message()[2]) == {"seats": ["ghost"], "closed": []}


def test_a_stale_request_is_refused_with_its_text() -> None:
    """DESIGN §7: a seq below the seat's last answered one is STALE_REQUEST, with its text."""
    host = joined()
    request(host, STEP, b"s1", 5, SCAN)
    reply = only(request(host, STEP, b"s1", 4, SCAN))
    assert reply.code is ErrorCode.STALE_REQUEST
    assert reply.message == {"message": "Stale request: the seat has answered a later sequence number."}


def test_a_second_join_of_a_seat_names_its_game() -> None:
    """PROTOCOL.md §2 ALREADY_JOINED, with its text."""
    host = joined()
    reply = only(request(host, JOIN, b"s1", 9, join_body(game="other")))
    assert reply.status is GameStatus.BAD_REQUEST and reply.code is ErrorCode.ALREADY_JOINED
    assert reply.message["message"] == "This seat already plays in game g."


def test_a_step_body_over_the_limit_is_malformed_and_one_at_the_limit_is_decoded() -> None:
    """PROTOCOL.md §3: a body is at most MAX_BODY_BYTES; one of exactly that size is read
    (and here refused by the action decoder, with its own reason)."""
    host = joined()
    assert reason(request(host, STEP, b"s1", 2, b"\xc0" * (MAX_BODY_BYTES + 1))) == (
        f"body: expected at most {MAX_BODY_BYTES} bytes, got {MAX_BODY_BYTES + 1} bytes")
    body = pack("x" * (MAX_BODY_BYTES - 5))
    assert len(body) == MAX_BODY_BYTES
    with pytest.raises(ProtocolError) as error:
        action_from_packed(body)
    assert reason(request(host, STEP, b"s1", 3, body)) == str(error.value)


@pytest.mark.parametrize(("body", "text"), [
    (5, "reset: expected [request_trajectory, randomize_topology, seed], got int 5"),
    ([True, False], "reset: expected [request_trajectory, randomize_topology, seed], got list [True, False]"),
    ([1, False, None], "reset.request_trajectory: expected true or false, got int 1"),
    ([False, "yes", None], "reset.randomize_topology: expected true or false, got str 'yes'"),
    ([False, False, True], "reset.seed: expected an integer or null, got bool True"),
    ([False, False, "7"], "reset.seed: expected an integer or null, got str '7'"),
])
def test_a_malformed_reset_body_names_its_field(body: Any, text: str) -> None:
    """PROTOCOL.md §3: RESET's body is [request_trajectory, randomize_topology, seed], strictly
    typed; anything else is MALFORMED naming the field, and nothing resets."""
    host = joined()
    assert reason(request(host, RESET, b"s1", 2, pack(body))) == text
    assert host.games["g"].session.episode == 0


def test_a_reset_with_a_seed_and_a_topology_change_remaps_the_same_way_on_any_world() -> None:
    """Reference §6.11-§6.12: a seeded reset with randomize_topology changes the addresses
    (a task with use_dynamic_addresses), the same way whatever the game's own seed."""
    dynamic = task("dynamic", env={"use_dynamic_addresses": True})
    starts = []
    for seed in (1, 2):
        host = GameHost({"dynamic": dynamic}, "w", seed=seed)
        request(host, JOIN, b"s1", 1, join_body(task_name="dynamic"))
        reply = only(request(host, RESET, b"s1", 2, pack([False, True, 7])))
        assert reply.status is GameStatus.RESET_DONE
        starts.append(reply.observation.state.controlled_hosts)
    assert starts[0] == starts[1]
    assert CLIENT not in {ip.ip for ip in starts[0]}, "the client's address changed"


def test_an_integer_seed_is_accepted() -> None:
    host = joined()
    assert only(request(host, RESET, b"s1", 2, pack([False, False, 3]))).status is GameStatus.RESET_DONE


# ---------------------------------------------------------------------------- batches
def batch(host: GameHost, inner: bytes, *triples: tuple[bytes, int, bytes], client: bytes = b"c1",
          now: float = 0.0) -> list[list[bytes]]:
    frames = [PROTOCOL_FRAME, REQUEST, client, BATCH, b"w", inner]
    for seat, seq, body in triples:
        frames += [seat, seq_bytes(seq), body]
    return host.request(frames, now)


BAD_BATCH = "Expected [BATCH][world][STEP|RESET] then (seat, seq, body) triples."


@pytest.mark.parametrize("frames", [0, 1, 2, 4])
def test_a_batch_without_whole_triples_is_bad_frames(frames: int) -> None:
    """PROTOCOL.md §1: a batch carries N >= 1 (seat, seq, body) triples."""
    host = joined()
    message = [PROTOCOL_FRAME, REQUEST, b"c1", BATCH, b"w", STEP, *[b"s1", seq_bytes(2), SCAN, b"s1"][:frames]]
    [reply] = host.request(message, 0.0)
    assert reply[:6] == [PROTOCOL_FRAME, REPLY, b"c1", BATCH, b"", b""]
    body = decode_reply(reply[6])
    assert body.code is ErrorCode.BAD_FRAMES and body.message == {"message": BAD_BATCH}


def test_a_batch_of_one_triple_is_answered_as_a_plain_reply() -> None:
    """A batch of one step runs it; its one reply goes out as a single message."""
    host = joined()
    [reply] = batch(host, STEP, (b"s1", 2, SCAN))
    assert reply[1:6] == [REPLY, b"c1", STEP, b"s1", seq_bytes(2)]
    assert decode_reply(reply[6]).status is GameStatus.OK


# ---------------------------------------------------------------------------- replies grouped per client
def three_seats(hold_timeout: float = 5) -> GameHost:
    """Two attackers of client c1 and a defender of client c2, in one game."""
    host = GameHost({"default": task("default", seats={"Attacker": 2, "Defender": 1}, hold_timeout=hold_timeout)},
                    "w")
    request(host, JOIN, b"a1", 1, join_body())
    request(host, JOIN, b"a2", 1, join_body())
    request(host, JOIN, b"d", 1, join_body("Defender"), client=b"c2")
    assert len(host.games["g"].session.seats) == 3
    return host


def test_replies_a_request_releases_go_as_one_batch_per_client() -> None:
    """PROTOCOL.md §1: the two held resets a QUIT releases (the quitter was the last voter)
    reach their client as one batch; the QUIT's own reply goes alone."""
    host = three_seats()
    assert request(host, RESET, b"a1", 2, NO_RESET, now=1.0) == []
    assert request(host, RESET, b"a2", 2, NO_RESET, now=1.0) == []
    quit_reply, resets = request(host, QUIT, b"d", 2, b"\xc0", client=b"c2", now=2.0)
    assert quit_reply[1:6] == [REPLY, b"c2", QUIT, b"d", seq_bytes(2)]
    assert resets[:6] == [PROTOCOL_FRAME, REPLY, b"c1", BATCH, b"w", RESET]
    assert resets[6::3] == [b"a1", b"a2"]
    assert [decode_reply(body).status for body in resets[8::3]] == [GameStatus.RESET_DONE] * 2


def test_replies_a_timer_releases_go_as_one_batch_per_client() -> None:
    """Held resets that time out together reach their client as one batch of HOLD_TIMEOUTs."""
    host = three_seats(hold_timeout=5)
    request(host, RESET, b"a1", 2, NO_RESET, now=1.0)
    request(host, RESET, b"a2", 2, NO_RESET, now=1.0)
    assert host.run_timers(5.9) == []
    [message] = host.run_timers(6.0)
    assert message[:6] == [PROTOCOL_FRAME, REPLY, b"c1", BATCH, b"w", RESET]
    assert [decode_reply(body).code for body in message[8::3]] == [ErrorCode.HOLD_TIMEOUT] * 2


def test_join_replies_a_timer_releases_go_one_message_each() -> None:
    """Two held joins of one client that expire together: two plain JOIN replies."""
    host = GameHost({"quick": quick_task(hold_timeout=3)}, "w")
    request(host, JOIN, b"r1", 1, join_body(game="g1", task_name="quick"))
    request(host, JOIN, b"r2", 1, join_body(game="g2", task_name="quick"))
    messages = host.run_timers(3.0)
    assert [message[3:5] for message in messages] == [[JOIN, b"r1"], [JOIN, b"r2"]]
    assert {decode_reply(message[6]).code for message in messages} == {ErrorCode.HOLD_TIMEOUT}


# ---------------------------------------------------------------------------- releases, closing, timers
def test_one_seat_quitting_keeps_the_game_and_the_last_closes_it() -> None:
    """PROTOCOL.md §1 RELEASE: a quit seat is released; the game closes with its last seat."""
    host = joined()
    request(host, JOIN, b"s2", 1, join_body("Defender"), client=b"c2")
    request(host, QUIT, b"s2", 2, b"\xc0", client=b"c2")
    assert sorted(host.games) == ["g"] and unpack(host.release_message()[2]) == {"seats": ["s2"], "closed": []}
    assert [game["game"] for game in host.hosted()] == ["g"]
    request(host, QUIT, b"s1", 2, b"\xc0")
    assert host.games == {} and host.hosted() == []
    assert unpack(host.release_message()[2]) == {"seats": ["s1"], "closed": ["g"]}


def test_a_closed_games_old_timer_neither_touches_a_new_game_of_that_name_nor_stops_others() -> None:
    """A game closed before its deadline stays closed: its timer entry is skipped, later due
    entries still run in the same call, and a new game of the same name is untouched."""
    host = GameHost({"default": task("default", seat_lease=100)}, "w")
    request(host, JOIN, b"s1", 1, join_body(game="g"), now=0.0)          # lease until 100
    request(host, JOIN, b"other", 1, join_body(game="h"), now=10.0)      # lease until 110
    request(host, QUIT, b"s1", 2, b"\xc0", now=20.0)
    host.release_message()
    request(host, JOIN, b"s2", 1, join_body(game="g"), now=50.0)         # a new g, lease until 150
    assert host.run_timers(120.0) == []
    assert sorted(host.games) == ["g"], "h's seat expired; the new g stays"
    assert unpack(host.release_message()[2]) == {"seats": ["other"], "closed": ["h"]}


def test_a_seat_lease_runs_out_exactly_at_its_deadline_and_the_game_goes_on() -> None:
    """DESIGN §7 leases: run_timers at the very deadline expires the seat; the game keeps its
    other seat and its next deadline."""
    host = GameHost({"default": task("default", seat_lease=100)}, "w")
    request(host, JOIN, b"s1", 1, join_body(), now=0.0)
    request(host, JOIN, b"s2", 1, join_body("Defender"), client=b"c2", now=30.0)
    assert host.run_timers(100.0) == []
    assert sorted(host.seats) == [b"s2"]
    assert unpack(host.release_message()[2]) == {"seats": ["s1"], "closed": []}
    assert host.timers[0][0] == 130.0
    host.run_timers(130.0)
    assert host.games == {}


def test_a_resent_held_join_renews_the_seats_lease() -> None:
    """PROTOCOL.md §7: a resend of a held JOIN says the client is there: its lease runs on."""
    host = GameHost({"quick": task("quick", start={"Attacker": 1, "Defender": 1}, hold_timeout=1000, seat_lease=10)},
                    "w")
    assert request(host, JOIN, b"r", 1, join_body(task_name="quick"), now=0.0) == []
    assert request(host, JOIN, b"r", 1, join_body(task_name="quick"), client=b"c-new", now=8.0) == []
    assert host.run_timers(12.0) == []
    assert sorted(host.seats) == [b"r"], "renewed at 8 s: the lease runs to 18 s"
    [expired] = host.run_timers(18.0)
    assert expired[2] == b"c-new" and decode_reply(expired[6]).code is ErrorCode.SEAT_RELEASED


def test_a_held_joins_resend_after_a_busy_answer_still_redirects_its_reply() -> None:
    """DESIGN §7: a request while the join is held is answered BUSY; the held join's resend
    from a new connection afterwards is still a resend (not a second join), and the join's
    reply goes to that connection."""
    host = GameHost({"quick": quick_task(hold_timeout=60)}, "w")
    assert request(host, JOIN, b"r", 1, join_body(task_name="quick")) == []
    assert only(request(host, STEP, b"r", 2, SCAN)).code is ErrorCode.BUSY
    assert request(host, JOIN, b"r", 1, join_body(task_name="quick"), client=b"c-new") == []
    released = request(host, JOIN, b"b", 1, join_body("Defender", task_name="quick"), client=b"c2")
    assert sorted((message[2], message[4]) for message in released) == [(b"c-new", b"r"), (b"c2", b"b")]


def test_dropping_the_games_answers_held_requests_with_the_reason() -> None:
    """PROTOCOL.md §2 GAME_LOST: a dropped game answers its held requests with the reason, and
    its trace keeps the seats' quit events with that reason."""
    host = GameHost({"quick": quick_task(hold_timeout=60)}, "w", trace=True)
    request(host, JOIN, b"r", 1, join_body(task_name="quick"))
    [answer] = host.drop_games("the broker is gone")
    assert answer[2:6] == [b"c1", JOIN, b"r", seq_bytes(1)]
    body = decode_reply(answer[6])
    assert body.code is ErrorCode.GAME_LOST and body.message == {"message": "Game g is gone: the broker is gone."}
    [(_, events)] = host.take_events()
    assert [event.get("reason") for event in events if event["kind"] == "quit"] == ["the broker is gone"]
