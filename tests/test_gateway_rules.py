"""The gateway's failure rules against a broker the test controls (README "NetSecGame agents
through the gateway", DESIGN §3 failure behaviour, PROTOCOL.md §2 frames and §7 resends).

The paths a healthy broker never takes: a request the broker does not answer (resent, same
seq, every ``retry_interval``; answered BAD_REQUEST after ``reply_timeout``), a broker that
never answered (BAD_REQUEST "The game server does not answer" after ``broker_grace``), a
broker that goes away and comes back, a client that stops reading (dropped after
``send_timeout``), a lingering close, the shutdown. The broker is a raw ZeroMQ ROUTER played
by the test (tests/gateway_peers.py), the gateway runs in a thread with short timeouts, the client
is a raw TCP socket speaking NetSecGame's framing (bare JSON out, replies end in ``EOF``).
Every wait is bounded; everything is closed by the fixtures.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from click.testing import CliRunner

from bin.cli import main
from broker.gateway import UNREACHABLE_MESSAGE, Gateway
from broker.gateway_connection import Connection
from protocol import PROTOCOL_FRAME, Command, GameStatus, encode_reply, int_from_seq, seq_bytes
from protocol.security import CurveClient

from .fake_broker import context
from .gateway_peers import JOIN, NOWHERE, WAIT, Client, PlayedBroker, Running, serve, wait_for

SCAN = json.dumps({"action_type": "ActionType.ScanNetwork",
                   "parameters": {"target_network": {"ip": "192.168.1.0", "mask": 24},
                                  "source_host": {"ip": "192.168.2.2"}}})
_JOIN, _STEP, _QUIT = Command.JOIN.frame, Command.STEP.frame, Command.QUIT.frame
NIL = b"\xc0"
__all__ = ["context"]  # the fixture, imported for pytest


@pytest.fixture
def broker(context: zmq.Context) -> Iterator[PlayedBroker]:
    fake = PlayedBroker(context)
    yield fake
    fake.close()


@pytest.fixture
def gateway() -> Iterator[Callable[..., Running]]:
    """Start gateways in threads on free ports; at the end each must still be serving
    (a loop that died is a failure), then is stopped and joined."""
    running: list[Running] = []

    def start(broker: str, **options: Any) -> Running:
        server = Gateway(broker, ("127.0.0.1", 0), **options)
        address = server.bind()
        running.append(Running(server, address, *serve(server)))
        return running[-1]

    yield start
    for each in running:
        for client in each.clients:  # their QUITs go out before the stop: nothing left for _leave to wait for
            client.close()
        deadline = time.monotonic() + 1.0
        while each.server.connections and each.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        each.server.stop()
        each.thread.join(WAIT)
        assert not each.thread.is_alive(), "the gateway did not stop"
        each.server.close()
        assert not each.errors, f"Gateway.run raised {each.errors!r}"


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


def said(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """The log has exactly this line (a documented one: README)."""
    return any(record.getMessage() == text for record in caplog.records)


# ---------------------------------------------------------------------------- resends
def test_an_unanswered_request_is_resent_every_retry_interval_with_its_seq(broker, gateway) -> None:
    """PROTOCOL §7: no reply yet, the same request goes again (same command, seat, seq); a
    JOIN says it is a resend (``"retry": true``), a STEP is repeated byte for byte; not
    before ``retry_interval``, and never after the reply came."""
    gw = gateway(broker.endpoint, retry_interval=0.2, reply_timeout=5.0)
    client = gw.client()
    client.send(JOIN)
    first = broker.receive()
    assert (first.command, first.seat) == (_JOIN, b"") and "retry" not in first.request
    resends = [broker.receive(1.0), broker.receive(1.0)]
    previous = first
    for resend in resends:
        assert (resend.command, resend.seat, resend.seq) == (_JOIN, b"", first.seq)
        assert resend.request == {**first.request, "retry": True}
        assert 0.18 <= resend.at - previous.at < 0.45, "resent before retry_interval, or long after it"
        previous = resend
    broker.seat(resends[-1], b"seat-1")
    assert client.receive()["status"] == "GameStatus.CREATED"

    client.send(SCAN)
    step = broker.receive()
    assert (step.command, step.seat, step.seq) == (_STEP, b"seat-1", seq_bytes(int_from_seq(first.seq) + 1))
    again = broker.receive(1.0)
    assert (again.command, again.seat, again.seq, again.body) == (step.command, step.seat, step.seq, step.body)
    assert 0.18 <= again.at - step.at < 0.45
    broker.answer(step, GameStatus.OK, {"message": "scanned"})
    broker.answer(again, GameStatus.OK, {"message": "scanned twice"})  # the world's cached reply, late
    reply = client.receive()
    assert reply["status"] == "GameStatus.OK" and reply["message"] == {"message": "scanned"}
    assert broker.silent_for(0.5), "resent after the reply came"
    assert client.quiet_for(0.05), "a second reply to one request"
    assert gw.alive()


# ---------------------------------------------------------------------------- reply timeout
def test_a_broker_that_answered_once_is_waited_for_reply_timeout(broker, gateway) -> None:
    """A broker that answered since the gateway started may be restarting: a request it does
    not answer gets BAD_REQUEST after ``reply_timeout`` (not ``broker_grace``); its late
    reply reaches nobody; the connection and the other, idle one go on."""
    gw = gateway(broker.endpoint, reply_timeout=0.6, broker_grace=0.15, retry_interval=5.0)
    client, _ = gw.joined(broker, b"seat-1")
    idle, _ = gw.joined(broker, b"seat-2")
    client.send(SCAN + SCAN)  # pipelined: the second goes once the first is answered
    step = broker.receive()
    started = step.at
    reply = client.receive()
    elapsed = time.monotonic() - started
    assert reply == {"to_agent": reply["to_agent"], "status": "GameStatus.BAD_REQUEST", "observation": None,
                     "message": {"message": "The game server did not answer within 0.6 s.",
                                 "reason": "broker reply timeout"}}
    assert 0.55 <= elapsed < 1.2, f"answered after {elapsed:.2f} s, not the 0.6 s reply timeout"
    step2 = broker.receive(0.5)
    assert (step2.seat, step2.seq) == (b"seat-1", seq_bytes(int_from_seq(step.seq) + 1))
    broker.answer(step, GameStatus.OK, {"message": "too late"})
    assert client.quiet_for(0.3), "a late reply was passed on"
    assert idle.quiet_for(0.01), "an idle connection got a reply it never asked for"
    broker.answer(step2, GameStatus.OK, {"message": "scanned"})
    assert client.receive()["message"] == {"message": "scanned"}
    assert gw.server.in_flight == 0
    assert broker.silent_for(0.2), "the late step reply caused a request (only a late JOIN is quit)"
    assert gw.alive()


def test_a_join_answered_after_its_timeout_has_its_seat_quit(broker, gateway) -> None:
    """The agent was told BAD_REQUEST: a seat the broker then gives it belongs to nobody, so
    the gateway QUITs it (next seq, nil body); a late refusal leaves nothing to quit."""
    gw = gateway(broker.endpoint, reply_timeout=0.3, retry_interval=5.0)
    client = gw.client()
    client.send(JOIN)
    join = broker.receive()
    reply = client.receive()
    waited = time.monotonic() - join.at
    assert reply["message"]["message"] == "The game server did not answer within 0.3 s."
    assert 0.28 <= waited < 0.6, f"answered after {waited:.2f} s, not the 0.3 s reply timeout"
    time.sleep(0.15)  # late, but within the reply_timeout the gateway remembers it for
    broker.seat(join, b"late-seat")
    quit_ = broker.receive(1.0)
    assert (quit_.command, quit_.seat, quit_.seq, quit_.body) == (
        _QUIT, b"late-seat", seq_bytes(int_from_seq(join.seq) + 1), NIL)
    broker.answer(quit_, GameStatus.OK, {"message": "quit"})
    assert client.quiet_for(0.1)

    client.send(JOIN)
    join2 = broker.receive()
    assert int_from_seq(join2.seq) == int_from_seq(join.seq) + 1, "each JOIN has a number of its own"
    assert client.receive()["status"] == "GameStatus.BAD_REQUEST"
    broker.answer(join2, GameStatus.BAD_REQUEST, {"message": "no room"}, seat=b"refused")
    assert broker.silent_for(0.3), "a refused late join was quit"
    assert client.quiet_for(0.01)
    assert gw.alive()


def test_a_late_reply_is_remembered_for_reply_timeout_only(broker, gateway, caplog) -> None:
    """What the gateway gave up on is remembered for ``reply_timeout`` (bounded memory): a
    JOIN answered later than that is a reply matching no request, dropped and logged."""
    caplog.set_level(logging.WARNING, logger="broker.gateway")
    gw = gateway(broker.endpoint, reply_timeout=0.2, retry_interval=5.0)
    client = gw.client()
    client.send(JOIN)
    join = broker.receive()
    assert client.receive()["message"]["reason"] == "broker reply timeout"
    time.sleep(0.5)  # nothing to wait on: the orphan expires silently
    broker.seat(join, b"forgotten")
    wait_for(lambda: logged(caplog, "reply matching no request dropped"), "the late reply dropped", 2.0)
    assert broker.silent_for(0.2), "a forgotten join was quit"
    assert gw.alive()


def test_a_full_broker_queue_costs_requests_not_the_gateway(monkeypatch, gateway) -> None:
    """The DEALER queues while nothing listens, up to its high-water mark: a request that
    does not fit is answered BAD_REQUEST at once, a resend that does not fit is skipped
    (the request keeps waiting), and a QUIT that does not fit leaves the seat to its lease."""
    monkeypatch.setattr("broker.gateway._HWM", 1)
    gw = gateway(NOWHERE, retry_interval=0.1, broker_grace=0.6, reply_timeout=5.0)
    first, second = gw.client(), gw.client()
    first.send(JOIN)
    wait_for(lambda: gw.server.in_flight == 1, "the first JoinGame queued")
    refused = second.request(JOIN)
    assert refused["status"] == "GameStatus.BAD_REQUEST"
    assert refused["message"]["message"].startswith("The gateway cannot reach the game server right now (")
    assert first.quiet_for(0.4), "a resend that did not fit cost the request"
    assert first.receive()["message"]["reason"] == "broker unreachable"
    assert gw.alive()


def test_a_quit_that_does_not_fit_leaves_the_seat_to_its_lease(context, monkeypatch, gateway, caplog) -> None:
    """The broker went away and the DEALER's queue is full: a closed connection's QUIT cannot
    be sent; the gateway says so and goes on (the seat's lease frees it, DESIGN §3)."""
    caplog.set_level(logging.WARNING, logger="broker.gateway")
    monkeypatch.setattr("broker.gateway._HWM", 1)
    broker = PlayedBroker(context)
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    leaving, _ = gw.joined(broker, b"leaving")
    other, _ = gw.joined(broker, b"other")
    broker.close()
    wait_for(lambda: logged(caplog, "stopped answering"), "the link lost")
    other.send(SCAN)  # queued: the queue is full now
    wait_for(lambda: gw.server.in_flight == 1, "the step queued")
    leaving.close()
    wait_for(lambda: logged(caplog, "cannot quit seat b'leaving'"), "the QUIT refused")
    assert gw.server.connections == 1
    assert gw.client().request(JOIN)["message"]["message"].startswith("The gateway cannot reach the game server")
    assert gw.alive()


def test_messages_that_are_no_reply_are_dropped_and_an_unreadable_reply_is_said(broker, gateway) -> None:
    """PROTOCOL §2: a reply is exactly [ARENA1][command][seat][seq][body]. Another protocol
    frame or another frame count is no reply (dropped, the request still waits); a body the
    gateway cannot decode is answered BAD_REQUEST, and the connection goes on."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    client, _ = gw.joined(broker, b"seat-1")
    client.send(SCAN)
    step = broker.receive()
    body = encode_reply(GameStatus.OK, None, {"message": "not a reply"})
    broker.send(step, body, frame=b"ARENA0")
    broker.send(step, body, extra=(b"extra",))
    broker.socket.send_multipart([step.identity, PROTOCOL_FRAME, step.command, step.seat])
    assert client.quiet_for(0.2), "a message that is no reply was taken for one"
    broker.answer(step, GameStatus.OK, {"message": "the reply"})
    assert client.receive()["message"] == {"message": "the reply"}
    client.send(SCAN)
    step = broker.receive()
    broker.send(step, b"\x93\x01\x02\x03")  # three items, not [status, observation, message, code]
    assert client.receive() == {"to_agent": list(client.sock.getsockname()), "status": "GameStatus.BAD_REQUEST",
                                "observation": None,
                                "message": {"message": "The game server sent a reply the gateway cannot read."}}
    client.send(SCAN)
    step = broker.receive()
    assert step.seat == b"seat-1", "an unreadable reply does not cost the seat"
    broker.answer(step, GameStatus.OK, {"message": "scanned"})
    assert client.receive()["message"] == {"message": "scanned"}
    assert gw.alive()


@pytest.mark.parametrize(("code", "seat_gone"), [("UNKNOWN_SEAT", True), ("SEAT_RELEASED", True),
                                                 ("GAME_LOST", True), ("NOT_JOINED", True),
                                                 ("EPISODE_ENDED", False), ("BUSY", False), (None, False)])
def test_replies_that_end_the_seat_forget_it(broker, gateway, code: str | None, seat_gone: bool) -> None:
    """After UNKNOWN_SEAT, SEAT_RELEASED, GAME_LOST or NOT_JOINED the seat no longer exists:
    the next action is refused by the gateway itself ("send JoinGame first") and a JoinGame
    takes a new seat. Other refusals keep the seat."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    client, _ = gw.joined(broker, b"seat-1")
    client.send(SCAN)
    broker.answer(broker.receive(), GameStatus.BAD_REQUEST, {"message": "refused"}, code=code)
    assert client.receive()["message"] == {"message": "refused"}
    client.send(SCAN)
    if seat_gone:
        reply = client.receive()
        assert reply["message"]["reason"] == "ActionType.ScanNetwork before JoinGame"
        client.send(JOIN)
        join = broker.receive()
        assert (join.command, join.seat) == (_JOIN, b"")
        broker.seat(join, b"seat-2")
        assert client.receive()["status"] == "GameStatus.CREATED"
    else:
        step = broker.receive()
        assert (step.command, step.seat) == (_STEP, b"seat-1")
        broker.answer(step, GameStatus.OK, {"message": "scanned"})
        assert client.receive()["message"] == {"message": "scanned"}
    assert gw.alive()


def test_quit_game_forgets_the_seat_only_when_the_broker_says_ok(broker, gateway) -> None:
    """QuitGame goes to the broker as QUIT; answered OK the seat is gone (no second QUIT when
    the connection closes), answered otherwise it stays."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    client, _ = gw.joined(broker, b"seat-1")
    quit_request = json.dumps({"action_type": "ActionType.QuitGame", "parameters": {}})
    client.send(quit_request)
    refused = broker.receive()
    assert (refused.command, refused.seat) == (_QUIT, b"seat-1")
    broker.answer(refused, GameStatus.BAD_REQUEST, {"message": "not now"})
    assert client.receive()["message"] == {"message": "not now"}
    client.send(quit_request)
    quit_ = broker.receive()
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"seat-1", seq_bytes(int_from_seq(refused.seq) + 1))
    broker.answer(quit_, GameStatus.OK, {"message": "quit"})
    assert client.receive()["status"] == "GameStatus.OK"
    client.close()
    wait_for(lambda: gw.server.connections == 0, "the connection closed")
    assert broker.silent_for(0.2), "a seat that quit was quit again"
    assert gw.alive()


def test_a_closed_connection_quits_its_seat_unless_its_quit_is_under_way(broker, gateway) -> None:
    """DESIGN §3: a gateway connection that closes quits its seat (next seq), also with a
    request in flight (whose late reply then reaches nobody) and after a refused QuitGame;
    a QuitGame still in flight is not sent twice."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    quit_request = json.dumps({"action_type": "ActionType.QuitGame", "parameters": {}})

    stepping, _ = gw.joined(broker, b"stepping")
    stepping.send(SCAN)
    step = broker.receive()
    stepping.close()
    quit_ = broker.receive()
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"stepping", seq_bytes(int_from_seq(step.seq) + 1))
    broker.answer(step, GameStatus.OK, {"message": "nobody reads this"})

    refused, _ = gw.joined(broker, b"refused")
    refused.send(quit_request)
    first = broker.receive()
    broker.answer(first, GameStatus.BAD_REQUEST, {"message": "not now"})
    assert refused.receive()["message"] == {"message": "not now"}
    refused.close()
    quit_ = broker.receive()
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"refused", seq_bytes(int_from_seq(first.seq) + 1))

    quitting, _ = gw.joined(broker, b"quitting")
    quitting.send(quit_request)
    assert broker.receive().seat == b"quitting"
    quitting.close()
    wait_for(lambda: gw.server.connections == 0, "the connections closed")
    assert broker.silent_for(0.2), "a QUIT under way was sent again"
    assert gw.server.in_flight == 0
    assert gw.alive()


def test_the_seat_of_a_join_reply(broker, gateway) -> None:
    """A JOIN reply names the seat in its seat frame or, with an empty one, in its message's
    ``seat``; a JOIN reply that is not CREATED, or names no seat, joins nothing."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    client = gw.client()
    client.send(JOIN)
    broker.answer(broker.receive(), GameStatus.BAD_REQUEST, {"message": "full", "seat": "refused"},
                  seat=b"refused")
    assert client.receive()["message"] == {"message": "full"}, "a join's seat/world/game/task are not passed on"
    client.send(JOIN)
    broker.answer(broker.receive(), GameStatus.CREATED, {"message": "no seat"})
    assert client.receive()["status"] == "GameStatus.CREATED"
    assert client.request(SCAN)["message"]["reason"] == "ActionType.ScanNetwork before JoinGame"
    client.send(JOIN)
    broker.answer(broker.receive(), GameStatus.CREATED, {"message": "Welcome"}, seat=b"from-frame")
    assert client.receive()["status"] == "GameStatus.CREATED"
    client.send(SCAN)
    step = broker.receive()
    assert (step.command, step.seat) == (_STEP, b"from-frame")
    broker.answer(step, GameStatus.BAD_REQUEST, {"message": "gone"}, code="SEAT_RELEASED")
    assert client.receive()["message"] == {"message": "gone"}
    client.send(JOIN)
    join = broker.receive()
    broker.answer(join, GameStatus.CREATED, {"message": "Welcome", "seat": "from-message"}, seat=b"")
    assert client.receive()["status"] == "GameStatus.CREATED"
    client.send(SCAN)
    step = broker.receive()
    assert (step.command, step.seat, step.seq) == (_STEP, b"from-message", seq_bytes(int_from_seq(join.seq) + 1))
    broker.answer(step, GameStatus.OK, {"message": "scanned"})
    assert client.receive()["message"] == {"message": "scanned"}
    assert gw.alive()


@pytest.mark.parametrize("max_connections", [1, 2])
def test_orphans_are_capped_at_sixteen_per_connection_slot(broker, gateway, max_connections: int) -> None:
    """What nobody waits for any more is remembered for at most 16 x ``max_connections``
    requests, oldest forgotten first: one more orphan evicts the first."""
    gw = gateway(broker.endpoint, max_connections=max_connections, reply_timeout=5.0, retry_interval=5.0)
    joins = []
    for _ in range(16 * max_connections + 1):  # each JoinGame left unanswered by its closed connection
        client = Client(gw.address)
        client.send(JOIN)
        joins.append(broker.receive())
        client.close()
        wait_for(lambda: gw.server.connections == 0 and gw.server.in_flight == 0, "the connection dropped")
    broker.seat(joins[0], b"evicted")
    broker.seat(joins[1], b"remembered")
    quit_ = broker.receive(1.0)
    assert (quit_.command, quit_.seat) == (_QUIT, b"remembered")
    assert broker.silent_for(0.2), "the evicted orphan was still remembered"
    assert gw.alive()


# ---------------------------------------------------------------------------- the broker's link
def test_a_broker_that_never_answered_gets_bad_request_after_broker_grace(context, gateway, caplog) -> None:
    """README: while nothing ever answered at ``--broker``, the log says "nothing answers at
    ADDRESS (why); still trying" within a second or two and each request is answered
    BAD_REQUEST "The game server does not answer ..." (reason ``broker unreachable``) after
    ``broker_grace``, not ``reply_timeout``; once the broker is there, it serves ("answers now")."""
    caplog.set_level(logging.INFO, logger="broker.gateway")
    plain = socket.create_server(("127.0.0.1", 0))  # TCP connects, no ZeroMQ handshake ever comes
    endpoint = f"tcp://127.0.0.1:{plain.getsockname()[1]}"
    gw = gateway(endpoint, broker_grace=0.3, reply_timeout=10.0)
    started = time.monotonic()
    client = gw.client()
    reply = client.request(JOIN)
    elapsed = time.monotonic() - started
    assert reply == {"to_agent": reply["to_agent"], "status": "GameStatus.BAD_REQUEST", "observation": None,
                     "message": {"message": UNREACHABLE_MESSAGE, "reason": "broker unreachable"}}
    assert 0.3 <= elapsed < 0.9, f"answered after {elapsed:.2f} s, not the 0.3 s broker grace"
    assert gw.server.in_flight == 0
    assert not logged(caplog, "nothing answers"), "said before NOTICE_AFTER"
    wait_for(lambda: said(caplog, f"nothing answers at {endpoint} (a connection opened but no ZeroMQ handshake "
                                  "completed (the wrong port?)); still trying: until it does, NetSecGame agents' "
                                  "requests are answered BAD_REQUEST after 0.3 s"), "the never-answered notice", 2.0)
    assert time.monotonic() - started >= 0.95
    assert sum("nothing answers" in r.getMessage() for r in caplog.records) == 1, "said once"

    plain.close()
    late = PlayedBroker(context, endpoint)
    try:
        wait_for(lambda: said(caplog, f"the broker at {endpoint} answers now"), "the broker answers now", 3.0)
        assert sum("nothing answers" in r.getMessage() for r in caplog.records) == 1, "said once, not every sweep"
        stale = late.receive()  # the refused JoinGame, queued in the DEALER while nothing answered
        assert (stale.command, stale.seq) == (_JOIN, seq_bytes(1))
        late.seat(stale, b"stale")  # its agent was told BAD_REQUEST: the seat is nobody's
        quit_ = late.receive()
        assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"stale", seq_bytes(2))
        client.send(JOIN)
        join = late.receive()
        assert join.seq == seq_bytes(2)
        late.seat(join, b"seat-1")
        assert client.receive()["status"] == "GameStatus.CREATED"
        client.close()
        assert late.receive().command == _QUIT
    finally:
        late.close()
    assert gw.alive()


def curve_broker(context: zmq.Context) -> tuple[PlayedBroker, bytes]:
    """A PlayedBroker whose ROUTER is a CURVE server (no authenticator: any client key); its public key."""
    public, secret = zmq.curve_keypair()
    fake = PlayedBroker.__new__(PlayedBroker)
    fake.socket = context.socket(zmq.ROUTER)
    fake.socket.setsockopt(zmq.LINGER, 0)
    fake.socket.curve_secretkey = secret
    fake.socket.curve_server = True
    fake.socket.bind("tcp://127.0.0.1:*")
    fake.endpoint = fake.socket.getsockopt_string(zmq.LAST_ENDPOINT)
    return fake, public


def test_a_refused_handshake_is_logged_at_once(context, gateway, caplog) -> None:
    """README: a broker that refuses the gateway's handshake (here: CURVE at the broker only)
    is said at once ("nothing answers at ADDRESS (why)"), not after NOTICE_AFTER or a timer."""
    caplog.set_level(logging.INFO, logger="broker.gateway")
    secured, _ = curve_broker(context)
    try:
        started = time.monotonic()
        gw = gateway(secured.endpoint)  # no CURVE keys; timers 0.75 s apart
        wait_for(lambda: logged(caplog, f"nothing answers at {secured.endpoint} (CURVE is on at one end only (give "
                                        "both the broker and the gateway CURVE keys, or neither)); still trying"),
                 "the refusal said", 2.0)
        assert time.monotonic() - started < 0.5, "a refused handshake waited for NOTICE_AFTER or a timer"
        assert gw.alive()
    finally:
        secured.close()


def test_the_gateway_reaches_a_curve_broker_with_its_keys(context, gateway) -> None:
    """``curve``: the gateway's own keys for a broker with CURVE on (its clients carry none)."""
    secured, server_public = curve_broker(context)
    try:
        public, secret = zmq.curve_keypair()
        gw = gateway(secured.endpoint, curve=CurveClient(server_public, public, secret), reply_timeout=5.0)
        client, _ = gw.joined(secured, b"seat-1")
        client.close()
        assert secured.receive().command == _QUIT
        assert gw.alive()
    finally:
        secured.close()


def test_the_never_answered_notice_comes_within_two_seconds_whatever_the_timeouts(gateway, caplog) -> None:
    """README: "within a second or two", also with long timeouts (the timers tick at least
    once a second)."""
    caplog.set_level(logging.WARNING, logger="broker.gateway")
    started = time.monotonic()
    gateway(NOWHERE, reply_timeout=10.0, retry_interval=10.0, broker_grace=10.0)
    wait_for(lambda: logged(caplog, "nothing answers at"), "the never-answered notice", 3.0)
    assert 0.95 <= time.monotonic() - started < 1.6


def test_a_broker_that_goes_away_is_waited_for_and_gets_the_resend(context, broker, gateway, caplog) -> None:
    """README: a broker that answered once and goes away is logged ("stopped answering") and
    waited for: the request is resent, same seq, to the restarted broker, and answered."""
    caplog.set_level(logging.INFO, logger="broker.gateway")
    gw = gateway(broker.endpoint, retry_interval=0.2, reply_timeout=5.0, broker_grace=0.1)
    client, join = gw.joined(broker, b"seat-1")
    endpoint = broker.endpoint
    broker.close()
    wait_for(lambda: said(caplog, f"the broker at {endpoint} stopped answering (the connection was lost); still "
                                  "trying: requests wait for it up to 5 s (a restarting broker gets their resends)"),
             "the lost notice", 3.0)
    client.send(SCAN)
    assert client.quiet_for(0.4), "answered while the broker is away: it may be restarting"
    restarted = PlayedBroker(context, endpoint)
    try:
        step = restarted.receive(2.0)
        assert (step.command, step.seat) == (_STEP, b"seat-1")
        assert step.identity == join.identity, "after a reconnect the broker must still see the seat's owner"
        restarted.answer(step, GameStatus.OK, {"message": "scanned"})
        assert client.receive()["message"] == {"message": "scanned"}
        wait_for(lambda: said(caplog, f"the broker at {endpoint} answers now"), "the broker answers now", 2.0)
        told = [r.getMessage() for r in caplog.records if "answer" in r.getMessage()]
        assert [m for m in told if "stopped answering" in m or "answers now" in m] == [told[0], told[1]], told
        assert "stopped answering" in told[0] and "answers now" in told[1], "said in that order, each once"
        assert not logged(caplog, "nothing answers"), "a broker that answered once is not 'never answered'"
        client.close()
        quit_ = restarted.receive()
        while quit_.command == _STEP and quit_.seq == step.seq:  # the queued send and its resends, in turn
            quit_ = restarted.receive()
        assert (quit_.command, quit_.seat) == (_QUIT, b"seat-1")
    finally:
        restarted.close()
    assert gw.alive()


# ---------------------------------------------------------------------------- clients
def test_a_client_that_stops_reading_is_dropped_after_send_timeout(broker, gateway) -> None:
    """A client with replies waiting and no write progress for ``send_timeout`` is dropped
    and its seat quit; an idle client (nothing to send it) is never dropped for that."""
    gw = gateway(broker.endpoint, send_timeout=0.4, reply_timeout=10.0, retry_interval=10.0, broker_grace=10.0)
    stuck, _ = gw.joined(broker, b"stuck", rcvbuf=4096)
    idle, _ = gw.joined(broker, b"idle")
    stuck.send(SCAN * 12)
    answered = []
    for _ in range(12):  # 12 x 900 kB of replies: more than the sockets hold
        step = broker.receive()
        answered.append(broker.answer(step, GameStatus.OK, {"message": "x" * 900_000}))
    quit_ = broker.receive(3.0)
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"stuck", seq_bytes(int_from_seq(step.seq) + 1))
    # The last write progress came after the first reply, at the latest with the last one.
    assert quit_.at - answered[0] >= 0.38, f"dropped {quit_.at - answered[0]:.2f} s after the first reply"
    assert quit_.at - answered[-1] < 0.7, f"dropped {quit_.at - answered[-1]:.2f} s after the last reply"
    assert broker.silent_for(0.3), "the idle client was dropped too"
    assert stuck.closed_by_gateway()
    idle.send(SCAN)
    step = broker.receive()
    assert step.seat == b"idle"
    broker.answer(step, GameStatus.OK, {"message": "scanned"})
    assert idle.receive()["message"] == {"message": "scanned"}
    assert gw.server.connections == 1
    assert gw.alive()


def test_a_lingering_close_ends_on_time_and_holds_nobody_up(broker, gateway, monkeypatch) -> None:
    """An oversized request is answered, then FIN; the connection is drained for a while
    (``_LINGER_CLOSE``), then closed and its seat quit. Meanwhile the other connections'
    timers still run."""
    monkeypatch.setattr("broker.gateway_connection._LINGER_CLOSE", 0.8)  # 2 s in production
    gw = gateway(broker.endpoint, max_request_bytes=256, reply_timeout=0.3, retry_interval=5.0)
    closing, join = gw.joined(broker, b"closing")
    other, _ = gw.joined(broker, b"other")
    closing.send(SCAN.replace("192.168.2.2", "192.168.2.2" + " " * 300))
    reply = closing.receive()
    assert reply["status"] == "GameStatus.BAD_REQUEST" and "at most 256 bytes" in reply["message"]["reason"]
    assert closing.sock.recv(10) == b"", "no FIN after the last reply"
    fin = time.monotonic()
    other.send(SCAN)
    step = broker.receive()
    assert step.seat == b"other"
    timed_out = other.receive()
    assert time.monotonic() - step.at < 0.6, "a lingering connection held up the other's reply timeout"
    assert timed_out["message"]["reason"] == "broker reply timeout"
    quit_ = broker.receive(3.0)
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"closing", seq_bytes(int_from_seq(join.seq) + 1))
    assert 0.75 <= quit_.at - fin < 1.3, f"closed {quit_.at - fin:.2f} s after the FIN, not 0.8 s"
    wait_for(lambda: gw.server.connections == 1, "the lingering connection forgotten")
    other.send(SCAN)
    assert broker.receive().seat == b"other"
    assert gw.alive()


# ---------------------------------------------------------------------------- shutdown
def test_shutdown_tells_waiting_agents_and_quits_every_seat(broker, gateway) -> None:
    """On stop: an agent waiting for a reply is told "The gateway is shutting down.", every
    seat is quit, and the gateway returns as soon as the broker answered those QUITs."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    idle, idle_join = gw.joined(broker, b"idle")
    waiting, _ = gw.joined(broker, b"waiting")
    gone, _ = gw.joined(broker, b"gone")
    gone.close()
    assert broker.receive().seat == b"gone"  # its QUIT, never answered: not waited for on the way out
    waiting.send(SCAN)
    step = broker.receive()
    gw.server.stop()
    told = waiting.receive()
    assert told == {"to_agent": told["to_agent"], "status": "GameStatus.BAD_REQUEST", "observation": None,
                    "message": {"message": "The gateway is shutting down."}}
    quits = {}
    for _ in range(2):
        quit_ = broker.receive()
        assert quit_.command == _QUIT and quit_.body == NIL
        quits[quit_.seat] = quit_.seq
    assert quits == {b"idle": seq_bytes(int_from_seq(idle_join.seq) + 1),
                     b"waiting": seq_bytes(int_from_seq(step.seq) + 1)}
    answered = time.monotonic()
    for seat, seq in quits.items():
        broker.socket.send_multipart([step.identity, PROTOCOL_FRAME, _QUIT, seat, seq,
                                      encode_reply(GameStatus.OK, None, {"message": "quit"})])
    assert gw.stopped_cleanly() and time.monotonic() - answered < 0.5, "waited although every QUIT was answered"
    assert idle.sock.recv(100) == b"", "an idle agent is told nothing, its connection closes"
    assert waiting.closed_by_gateway()
    assert gw.server.connections == gw.server.in_flight == 0


def test_shutdown_waits_at_most_a_second_for_unanswered_quits(broker, gateway) -> None:
    """One of two QUITs answered: the gateway waits for the other, 1 s at most."""
    gw = gateway(broker.endpoint, reply_timeout=5.0)
    gw.joined(broker, b"seat-1")
    gw.joined(broker, b"seat-2")
    gw.server.stop()
    stopped = time.monotonic()
    first = broker.receive()
    assert first.command == _QUIT and broker.receive().command == _QUIT
    broker.answer(first, GameStatus.OK, {"message": "quit"})
    assert gw.stopped_cleanly()
    waited = time.monotonic() - stopped
    assert 0.9 <= waited < 1.6, f"returned after {waited:.2f} s, not 1 s"


def test_stop_wakes_the_loop_at_once_and_close_is_idempotent(broker, gateway) -> None:
    """``stop()`` (from a signal handler or another thread) ends :meth:`run` at once, not at
    the next timer (here 1 s away); ``close()`` closes every client and may be repeated;
    a context passed in stays the caller's."""
    context = zmq.Context()
    try:
        server = Gateway(broker.endpoint, ("127.0.0.1", 0), context=context)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        address = wait_for(lambda: server.address, "bound")
        assert server.bind() == address, "binding twice keeps the address"
        client = Client(address)
        client.send(JOIN)
        broker.seat(broker.receive(), b"seat-1")
        assert client.receive()["status"] == "GameStatus.CREATED"
        time.sleep(0.05)  # let the loop settle into a 1 s poll
        stopping = time.monotonic()
        server.stop()
        quit_ = broker.receive()
        broker.answer(quit_, GameStatus.OK, {"message": "quit"})
        thread.join(WAIT)
        assert not thread.is_alive() and time.monotonic() - stopping < 0.5, "stop() waited for a timer"
        assert client.closed_by_gateway()
        server.close()
        server.close()
        server.stop()  # after close: harmless
        assert not context.closed, "the caller's context was terminated"
    finally:
        context.term()


def test_close_without_run_closes_the_listener_and_clients() -> None:
    """``close()`` instead of ``run()``: the port is free again."""
    server = Gateway(NOWHERE, ("127.0.0.1", 0))
    host, port = server.bind()
    server.close()
    with socket.socket() as again:
        again.bind((host, port))


def _ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 at all (a plain socket, no gateway)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_bind_ipv6() -> None:
    """``listen`` with an IPv6 host binds an IPv6 socket (port 0: a free one) wherever the
    machine has an IPv6 loopback; where it has none, bind says so (OSError), like a socket."""
    server = Gateway(NOWHERE, ("::1", 0))
    try:
        if not _ipv6_loopback():
            with pytest.raises(OSError):
                server.bind()
            return
        host, port = server.bind()
        assert host == "::1" and port > 0
        with socket.create_connection((host, port), timeout=WAIT):
            pass
    finally:
        server.close()


def test_the_connection_cap_refuses_with_a_reason(broker, gateway) -> None:
    """Beyond ``max_connections`` a new client gets BAD_REQUEST "Too many connections (N);
    try again later." and is closed; the served one goes on."""
    gw = gateway(broker.endpoint, max_connections=2, reply_timeout=5.0)
    served = [gw.joined(broker, b"seat-1")[0], gw.joined(broker, b"seat-2")[0]]
    refused = gw.client()
    reply = refused.receive()
    assert reply == {"to_agent": list(refused.sock.getsockname()), "status": "GameStatus.BAD_REQUEST",
                     "observation": None, "message": {"message": "Too many connections (2); try again later."}}
    assert refused.closed_by_gateway() and gw.server.connections == 2
    served[0].send(SCAN)
    assert broker.receive().seat == b"seat-1"
    assert gw.alive()


def test_a_failing_connection_costs_that_connection_only(broker, gateway, monkeypatch) -> None:
    """A bug in one connection's handling must cost that connection (closed, its seat
    quit), never the gateway."""
    gw = gateway(broker.endpoint, reply_timeout=5.0, retry_interval=5.0)
    victim, join = gw.joined(broker, b"victim")
    other, _ = gw.joined(broker, b"other")
    victim_port = victim.sock.getsockname()[1]
    read = Connection.read

    def failing(self: Connection, now: float) -> None:
        if self.to_agent[1] == victim_port:
            raise RuntimeError("injected")
        read(self, now)

    monkeypatch.setattr(Connection, "read", failing)
    victim.send(SCAN)
    quit_ = broker.receive()
    assert (quit_.command, quit_.seat, quit_.seq) == (_QUIT, b"victim", seq_bytes(int_from_seq(join.seq) + 1))
    assert victim.closed_by_gateway()
    other.send(SCAN)
    step = broker.receive()
    assert step.seat == b"other"
    broker.answer(step, GameStatus.OK, {"message": "scanned"})
    assert other.receive()["message"] == {"message": "scanned"}
    assert gw.alive()


def test_a_refused_client_that_already_reset_costs_nothing(broker) -> None:
    """Beyond ``max_connections``, the refusal is best effort: a client that already reset
    its connection is simply closed."""
    server = Gateway(broker.endpoint, ("127.0.0.1", 0), max_connections=1)
    address = server.bind()
    served = Client(address)  # both wait in the listener's backlog until the loop runs
    gone = socket.create_connection(address, timeout=WAIT)
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.close()  # RST
    thread, errors = serve(server)
    try:
        served.send(JOIN)
        broker.seat(broker.receive(), b"seat-1")
        assert served.receive()["status"] == "GameStatus.CREATED"
        assert thread.is_alive() and not errors
    finally:
        served.close()
        assert broker.receive().command == _QUIT
        server.stop()
        thread.join(WAIT)
        server.close()
    assert not thread.is_alive() and not errors, errors


def test_a_shared_context_reaches_an_inproc_broker() -> None:
    """``context``: the caller's ZeroMQ context is used (an ``inproc://`` broker in it is
    reachable) and stays the caller's; a context the gateway made is terminated by close()."""
    context = zmq.Context()
    try:
        broker = PlayedBroker(context, "inproc://gateway-rules")
        server = Gateway("inproc://gateway-rules", ("127.0.0.1", 0), context=context)
        assert server.address is None, "not bound yet"
        thread, errors = serve(server)
        try:
            client = Client(wait_for(lambda: server.address, "bound"))
            client.send(JOIN)
            broker.seat(broker.receive(), b"seat-1")
            assert client.receive()["status"] == "GameStatus.CREATED"
            client.close()
            assert broker.receive().command == _QUIT
        finally:
            server.stop()
            thread.join(WAIT)
            server.close()
            broker.close()
        assert not errors and not context.closed
    finally:
        context.term()
    own = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0))
    own.close()
    assert own.context.closed


def test_a_burst_of_connections_waits_in_the_backlog() -> None:
    """The listener's backlog holds 512 connections: a burst of 300 NetSecGame agents all
    connect even before the loop accepts any (a default backlog of 128 drops SYNs)."""
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    cap = int(somaxconn.read_text()) if somaxconn.exists() else 128
    server = Gateway(NOWHERE, ("127.0.0.1", 0))
    address = server.bind()
    burst = [socket.socket() for _ in range(min(300, cap))]  # a kernel that caps the backlog caps the burst
    try:
        poller = select.poll()
        for sock in burst:
            sock.setblocking(False)
            sock.connect_ex(address)
            poller.register(sock, select.POLLOUT)
        pending = {sock.fileno(): sock for sock in burst}
        deadline = time.monotonic() + 0.5  # a dropped SYN is retried after 1 s
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(50):
                if pending[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    poller.unregister(fd)
                    del pending[fd]
        assert not pending, f"{len(pending)} of {len(burst)} connections not established"
    finally:
        for sock in burst:
            sock.close()
        server.close()


def test_the_constructor_and_arena_gateway_share_max_connections() -> None:
    """Library users get the same connection cap as ``arena gateway --help`` says."""
    result = CliRunner().invoke(main, ["gateway", "--help"], terminal_width=240)
    assert result.exit_code == 0, result.output
    shown = re.search(r"--max-connections\s+INTEGER RANGE\s+\[default: (\d+)", result.output)
    assert shown is not None, result.output
    assert inspect.signature(Gateway).parameters["max_connections"].default == int(shown.group(1))


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("option", ["incomplete_timeout", "reply_timeout", "send_timeout", "retry_interval",
                                    "broker_grace"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_timeouts_must_be_positive(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=r"^timeouts must be positive$"):
        Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), **{option: value})


@pytest.mark.parametrize("option", ["max_request_bytes", "max_connections", "max_queue", "max_output_bytes"])
def test_limits_must_be_at_least_one(option: str) -> None:
    with pytest.raises(ValueError, match=r"^limits must be at least 1$"):
        Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), **{option: 0})
    server = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0), **{option: 1})
    server.close()


def test_replies_larger_than_the_sockets_hold_reach_a_client_that_reads_them(broker, gateway) -> None:
    """Replies that do not fit the sockets wait in the gateway and go out as the client
    reads (the loop flushes on POLLOUT, each flush counting as write progress for the
    send timeout); the client gets every byte, in order, and stays connected."""
    # Sweeps every 0.1 s (half the retry interval; every request is answered before the
    # client reads, so nothing is resent): several while the replies go out.
    gw = gateway(broker.endpoint, send_timeout=5.0, reply_timeout=10.0, retry_interval=0.2, broker_grace=10.0)
    reader, _ = gw.joined(broker, b"reader", rcvbuf=4096)
    reader.send(SCAN * 6)
    for _ in range(6):  # error replies need no observation; their text makes them large
        broker.answer(broker.receive(), GameStatus.BAD_REQUEST, {"message": "x" * 900_000})
    got = b""
    while got.count(b"EOF") < 6:
        chunk = reader.sock.recv(65536)
        assert chunk, f"closed by the gateway after {len(got)} bytes"
        got += chunk
    replies = [json.loads(part) for part in got.split(b"EOF")[:6]]
    assert [reply["message"]["message"] for reply in replies] == ["x" * 900_000] * 6
    assert gw.alive() and gw.server.connections == 1


def test_an_idle_gateway_sleeps(broker, gateway) -> None:
    """With a client connected and nothing to do, the loop waits in its poll: it does not
    spin on sockets that are always writable (the broker link, the wake-up pipe)."""
    gw = gateway(broker.endpoint, reply_timeout=10.0, retry_interval=10.0, broker_grace=10.0)
    gw.joined(broker, b"idle")
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(0.6)
    used = time.process_time() - cpu
    assert used < 0.3 * (time.monotonic() - wall), f"the idle gateway used {used:.2f} s of CPU in 0.6 s"
    assert gw.alive()


def test_a_gateway_built_without_options_has_the_documented_limits() -> None:
    """README "NetSecGame agents through the gateway" states each of these; a library user
    gets what `arena gateway` users are told."""
    documented = {"incomplete_timeout": 0.1, "reply_timeout": 120.0, "max_connections": 1024, "max_queue": 64,
                  "max_output_bytes": 16 << 20, "send_timeout": 60.0, "retry_interval": 2.0, "broker_grace": 3.0}
    server = Gateway(NOWHERE)  # every option left to its default
    try:
        assert {name: getattr(server, name) for name in documented} == documented
    finally:
        server.close()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for text in ("after\n100 ms", "after 3 s", "resent every 2 s", "beyond 64 requests waiting",
                 "more than 16 MiB of replies", "no read progress for 60 s"):
        assert text in readme, text


@pytest.mark.parametrize(("options", "every"), [
    ({"retry_interval": 0.3}, 0.15), ({"reply_timeout": 0.4}, 0.1), ({"send_timeout": 0.8}, 0.2),
    ({"broker_grace": 1.2}, 0.3), ({}, 1.0)])
def test_timers_are_checked_often_enough_for_the_shortest_timeout(options: dict[str, float], every: float) -> None:
    """The sweep runs at least twice per retry interval and four times per timeout (at most
    a second apart), so a resend or a timeout is late by a fraction of its own period."""
    server = Gateway(NOWHERE, **{"reply_timeout": 60.0, "send_timeout": 60.0, "retry_interval": 30.0,
                                           "broker_grace": 30.0, **options})
    try:
        assert server._sweep_every == pytest.approx(every)
    finally:
        server.close()
