"""Timing contracts and documented defaults: each bound is derived from the configured
values and tight enough to catch a 5x error; each default is asserted where it is
defined (constructor, task reader, CLI option) AND where it is documented (README,
protocol/PROTOCOL.md, ``--help``), the number parsed out of the doc text.

* The gateway answers an unfinished request "Malformed Action" after ``incomplete_timeout``
  (default 0.1 s; README "NetSecGame agents through the gateway": "after 100 ms").
* The broker declares a world dead after ``liveness`` x its heartbeat of silence
  (DESIGN §7, PROTOCOL.md §7 "Liveness"; default 3 x 1 s, README "When things fail"):
  from its READY (broker/placement.py ``world_from_ready``) and from its last message
  (broker/broker.py ``_on_backend``). A real Broker runs in a thread, a raw DEALER plays
  the world (tests/test_broker_faults.py).
* Client ``timeout`` 120 s and ``retry_interval`` 2 s (README "The broker restarts"),
  the gateway's reply timeout 120 s, resends every 2 s and broker grace 3 s, the task's
  ``hold_timeout`` 60 s and ``seat_lease`` 600 s (README "Task files").
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq
from click.testing import CliRunner

from agents import BaseAgent, ParallelBaseAgent
from agents.status import query_status
from bin.cli import main
from broker import Broker
from broker.gateway import MALFORMED_MESSAGE, Gateway
from broker.placement import world_from_ready
from protocol import PROTOCOL_FRAME, Command, ErrorCode, GameStatus
from world import GameSession, parse_task
from world import task as task_module
from world.worker import WorldWorker

from .fake_broker import context
from .test_broker_faults import SOLO, Agent, World, running

__all__ = ["context", "running"]  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROTOCOL = (ROOT / "protocol" / "PROTOCOL.md").read_text()
WAIT = 10.0
HEARTBEAT = 0.2  # the fake worlds' heartbeat: liveness 3 x 0.2 s = 0.6 s; a 5x error is 3 s
HEARTBEAT_FRAME = Command.HEARTBEAT.frame


def doc_number(pattern: str, text: str) -> float:
    """The one number ``pattern``'s first group captures in ``text`` (whitespace in the
    pattern matches any run of whitespace, so a line break in the prose does not matter)."""
    found = re.findall(pattern.replace(" ", r"\s+"), text)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in the documentation"
    return float(found[0])


def help_defaults(*command: str) -> dict[str, str]:
    """``arena COMMAND --help``'s ``[default: X]`` per option, as the user reads it."""
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=240)
    assert result.exit_code == 0, result.output
    entries = re.split(r"\n(?=  -)", result.output.split("Options:", 1)[1])
    defaults = {}
    for entry in entries:
        name = re.match(r"\s*(?:-\w, )?(--[\w-]+)", entry)
        default = re.search(r"\[default: ([^;\]]+)", entry)
        if name and default:
            defaults[name.group(1)] = default.group(1)
    return defaults


def default_of(function: Any, parameter: str) -> Any:
    return inspect.signature(function).parameters[parameter].default


# ---------------------------------------------------------------------------- the gateway
@pytest.fixture
def lone_gateway() -> Iterator[tuple[str, int]]:
    """A gateway with every default, in a thread, before a broker address nobody serves:
    an unfinished request is the gateway's own business (it never reaches the broker)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    server = Gateway(f"tcp://127.0.0.1:{port}", ("127.0.0.1", 0))
    address = server.bind()
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    try:
        yield address
    finally:
        server.stop()
        thread.join(WAIT)
        server.close()
        assert not thread.is_alive(), "the gateway did not stop"


def test_the_gateway_incomplete_timeout_defaults_to_100_ms_everywhere() -> None:
    """Constructor, ``arena gateway --help`` and the README agree: 0.1 s."""
    assert default_of(Gateway, "incomplete_timeout") == 0.1
    server = Gateway("tcp://127.0.0.1:1", ("127.0.0.1", 0))
    try:
        assert server.incomplete_timeout == 0.1
    finally:
        server.close()
    assert float(help_defaults("gateway")["--incomplete-timeout"]) == 0.1
    assert doc_number(r'answered "Malformed Action" after (\d+) ms', README) / 1000 == 0.1


def test_an_unfinished_request_is_answered_malformed_after_100_ms(lone_gateway: tuple[str, int]) -> None:
    """Measured from the last byte sent: at least the 0.1 s timeout, well under 0.5 s (a
    1 s timeout fails). Three times on one connection: each is answered, the next goes on."""
    with socket.create_connection(lone_gateway, timeout=WAIT) as sock:
        for attempt in range(3):
            sock.sendall(b'{"action_type": "ActionType.ScanNetwork", "parameters": {"source_host": ')
            sent = time.monotonic()
            received = b""
            while b"EOF" not in received:
                chunk = sock.recv(8192)
                assert chunk, "the gateway closed the connection"
                received += chunk
            elapsed = time.monotonic() - sent
            reply = json.loads(received.replace(b"EOF", b""))
            assert reply["status"] == "GameStatus.BAD_REQUEST" and reply["message"]["message"] == MALFORMED_MESSAGE
            assert "incomplete" in reply["message"]["reason"] and "0.1 s" in reply["message"]["reason"]
            assert 0.099 <= elapsed < 0.5, f"attempt {attempt}: answered after {elapsed:.3f} s, not 0.1 s"


def test_gateway_reply_timeout_resends_and_broker_grace_defaults() -> None:
    """Reply timeout 120 s (constructor, ``--reply-timeout``); resends every 2 s and
    BAD_REQUEST after 3 s while the broker never answered (constructor, README)."""
    assert default_of(Gateway, "reply_timeout") == 120.0
    assert float(help_defaults("gateway")["--reply-timeout"]) == 120.0
    assert default_of(Gateway, "retry_interval") == 2.0
    assert doc_number(r"requests are resent every (\d+) s", README) == 2.0
    assert default_of(Gateway, "broker_grace") == 3.0
    assert doc_number(r"`BAD_REQUEST` \(`\"The game server does not answer ...\"`, reason `broker unreachable`\) "
                      r"after (\d+) s instead of", README) == 3.0


# ---------------------------------------------------------------------------- clients
@pytest.mark.parametrize("make", [lambda: BaseAgent("tcp://127.0.0.1:1", "Attacker"),
                                  lambda: ParallelBaseAgent("tcp://127.0.0.1:1", "Attacker", 2)],
                         ids=["BaseAgent", "ParallelBaseAgent"])
def test_client_timeout_is_120_s_and_retry_interval_2_s(make: Any) -> None:
    """README "The broker restarts" and PROTOCOL.md §7 "Leases" state them; the agents use them."""
    agent = make()
    try:
        assert (agent.timeout, agent.retry_interval) == (120.0, 2.0)
    finally:
        agent.terminate_connection()
    assert doc_number(r"`timeout` \(default (\d+) s", README) == 120.0
    assert doc_number(r"`retry_interval` \(default (\d+) s\)", README) == 2.0
    assert doc_number(r"resends its JOIN every retry interval \((\d+) s by default\)", PROTOCOL) == 2.0


def test_arena_play_timeout_is_120_s() -> None:
    """``arena play --timeout`` and the README's notice ("trying until the 120 s timeout")."""
    assert float(help_defaults("play")["--timeout"]) == 120.0
    assert doc_number(r"trying until the (\d+) s timeout", README) == 120.0


# ---------------------------------------------------------------------------- liveness
def test_liveness_defaults_are_3_heartbeats_of_1_s_everywhere() -> None:
    """Broker and world constructors, ``arena broker/world/up --help`` and the README's
    "(default 3 x 1 s)" (with a multiplication sign) agree; fewer than 3 is refused
    (PROTOCOL.md §7: "liveness (≥ 3)")."""
    for made in (Broker, WorldWorker):
        assert (default_of(made, "heartbeat"), default_of(made, "liveness")) == (1.0, 3), made.__name__
    for command in ("broker", "world", "up"):
        defaults = help_defaults(command)
        assert (float(defaults["--heartbeat"]), int(defaults["--liveness"])) == (1.0, 3), command
    found = re.findall(r"\(default (\d+) \u00d7 (\d+(?:\.\d+)?) s\)", README)
    assert [(int(n), float(s)) for n, s in found] == [(3, 1.0)]
    assert doc_number(r"after `liveness` \(≥ (\d+)\) silent intervals", PROTOCOL) == 3
    with pytest.raises(ValueError, match="at least 3"):
        Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", None, None, liveness=2)


@pytest.mark.parametrize(("ready", "heartbeat", "liveness", "expiry"), [
    ({"heartbeat": 0.2}, 1.0, 3, 100.6),   # the world's own heartbeat counts
    ({}, 1.0, 3, 103.0),                   # none named: the broker's
    ({"heartbeat": 0.5}, 1.0, 4, 102.0),
])
def test_a_registered_world_expires_after_liveness_of_its_heartbeats(ready: dict[str, Any], heartbeat: float,
                                                                      liveness: int, expiry: float) -> None:
    """``world_from_ready`` (the placement rule, explicit ``now``): expiry = now + beat x liveness."""
    body = {"world": "w", "capacity": 1, "tasks": SOLO, **ready}
    world, games = world_from_ready(b"w", body, 100.0, heartbeat, liveness)
    assert games == []
    assert world.expiry == pytest.approx(expiry), "a world must expire after liveness heartbeats"
    assert world.heartbeat == ready.get("heartbeat", heartbeat)


def _wait_registered(broker: Broker) -> None:
    """Until the broker has the READY (a JOIN before it would be answered NO_WORLD)."""
    deadline = time.monotonic() + WAIT
    while not broker.placement.worlds:  # another thread's state: nothing to wait on
        assert time.monotonic() < deadline, "the READY was not registered"
        time.sleep(0.005)


def _lost_after(agent: Agent, silent_since: float) -> float:
    """The agent's JOIN, forwarded to the silent world, is answered GAME_LOST: seconds since
    the world's last message."""
    frames, reply = agent.reply(WAIT)
    elapsed = time.monotonic() - silent_since
    assert frames[1] == Command.JOIN.frame and reply.code is ErrorCode.GAME_LOST, reply
    assert reply.status is GameStatus.BAD_REQUEST
    return elapsed


def _assert_declared_dead(broker: Broker, elapsed: float, what: str) -> None:
    limit = HEARTBEAT * 3
    assert elapsed >= limit - 0.05, f"{what}: declared dead after {elapsed:.2f} s, before {limit} s of silence"
    assert elapsed < limit + 0.9, f"{what}: declared dead after {elapsed:.2f} s, not ~{limit} s (3 x {HEARTBEAT} s)"
    status = query_status(broker.endpoints["frontend"])
    assert status.get("worlds") == [], "a dead world leaves STATUS"


def test_a_world_silent_after_its_ready_is_declared_dead_after_3_heartbeats(running: Any,
                                                                            context: zmq.Context) -> None:
    """DESIGN §7 / PROTOCOL.md §7: no message after READY (heartbeat 0.2 s, the broker's
    default liveness 3): dead after 0.6 s, its request in flight answered GAME_LOST."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    try:
        world.register("quiet", heartbeat=HEARTBEAT)
        ready_sent = time.monotonic()
        _wait_registered(broker)
        agent.join()
        world.next_request()  # forwarded; the world never answers, never beats
        _assert_declared_dead(broker, _lost_after(agent, ready_sent), "silent after READY")
        assert "quiet" in broker.dead_worlds
    finally:
        world.close()
        agent.close()


def test_a_world_that_stops_beating_is_declared_dead_after_3_heartbeats(running: Any,
                                                                        context: zmq.Context) -> None:
    """The world heartbeats for a while (each message renews its expiry), then falls
    silent: dead 3 heartbeats after its last message, not later."""
    broker = running(recovery=0)
    world = World(context, broker.endpoints["backend"])
    agent = Agent(context, broker.endpoints["frontend"], b"agent-1")
    try:
        world.register("stops", heartbeat=HEARTBEAT)
        _wait_registered(broker)
        agent.join()
        world.next_request()  # forwarded, never answered
        last = time.monotonic()
        for _ in range(8):  # 0.8 s of heartbeats at twice the rate: alive well past 0.6 s
            world.send(PROTOCOL_FRAME, HEARTBEAT_FRAME)
            last = time.monotonic()
            assert agent.silent(HEARTBEAT / 2), "declared dead while it was beating"
        _assert_declared_dead(broker, _lost_after(agent, last), "silent after heartbeats")
    finally:
        world.close()
        agent.close()


# ---------------------------------------------------------------------------- task defaults
def _task_without_timeouts() -> Any:
    """The default task with ``hold_timeout`` and ``seat_lease`` left out: the reader's defaults."""
    document = copy.deepcopy(yaml.safe_load((ROOT / "world" / "tasks" / "default.yaml").read_text()))
    for key in ("hold_timeout", "seat_lease"):
        document["arena"].pop(key)
    return parse_task(document, "defaults.yaml")


def test_hold_timeout_60_s_and_seat_lease_600_s_are_the_documented_defaults() -> None:
    """The task reader, TaskConfig, world/task.py's docstring and the README's "Task files"
    arena section and comparison table agree."""
    task = _task_without_timeouts()
    assert (task.hold_timeout, task.seat_lease) == (60.0, 600.0)
    fields = {field.name: field.default for field in task_module.TaskConfig.__attrs_attrs__}
    assert (fields["hold_timeout"], fields["seat_lease"]) == (60.0, 600.0)
    assert doc_number(r"hold_timeout: (\d+) +# seconds a held reply may wait\n", README) == 60
    assert doc_number(r"seat_lease: (\d+) +# seconds a silent seat is kept\n", README) == 600
    assert doc_number(r"`arena.hold_timeout` \(default (\d+) s\)", README) == 60
    assert doc_number(r"`arena.seat_lease` \(default (\d+) min\)", README) * 60 == 600
    assert doc_number(r"`arena.seat_lease` without a request \(default (\d+) s\)", README) == 600
    assert doc_number(r"a held reply may wait \(default (\d+)\)", task_module.__doc__ or "") == 60
    assert doc_number(r"a silent seat is kept \(default (\d+)\)", task_module.__doc__ or "") == 600


def test_a_held_join_times_out_at_60_s_and_a_silent_seat_is_freed_at_600_s() -> None:
    """With the defaults, in a game (explicit ``now``): a defender's join, held for an
    attacker, is answered HOLD_TIMEOUT at 60 s, not before; an attacker's seat with no
    request is quit at 600 s, not before."""
    task = _task_without_timeouts()
    waiting = GameSession(task, name="waiting")
    assert waiting.join("blue", "Blue", "Defender", 0.0) == []        # held: no attacker yet
    assert waiting.tick(59.9) == []
    [expired] = waiting.tick(60.0)
    assert expired.seat == "blue" and expired.code is ErrorCode.HOLD_TIMEOUT
    playing = GameSession(task, name="playing")
    [joined] = playing.join("red", "Red", "Attacker", 0.0)
    assert joined.status is GameStatus.CREATED
    playing.tick(599.9)
    assert "red" in playing.seats
    playing.tick(600.0)
    assert "red" not in playing.seats, "a silent seat is quit after the 600 s lease"

