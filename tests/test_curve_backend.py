"""CURVE on the broker's two inner doors: the backend (worlds) and the trace input (the
worlds' trace publishers). tests/test_security.py covers the frontend and the trace output.

README "Across machines: CURVE": with CURVE on, "every socket (frontend, backend, trace,
trace input) is then encrypted, and only clients whose public key is in the broker's
allow-list get in"; DESIGN §7: a command that cannot reach what it needs says so within
5 s, naming the address. A real broker and world (:class:`bin.stack.Stack`, with CURVE),
and real ``arena world`` processes and PUB sockets as the outsiders. Every wait is bounded.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import zmq

from agents.monitor import TraceMonitor
from agents.status import query_status
from bin.stack import Stack
from broker.security import write_keys
from protocol import CurveClient, CurveKeys, pack
from protocol.transport import LinkWatch

from .arena_processes import SOLO, Arena, wait_until

HEARTBEAT = 0.2
#: DESIGN §7: "say so within 5 s, naming the address" (a refused handshake takes milliseconds).
NOTICE = 5.0
#: Seconds for things that take a second or two when all is well (a world process starting).
WAIT = 30.0


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    directory = tmp_path_factory.mktemp("curve-backend") / "keys"
    write_keys(directory)
    return CurveKeys(directory)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> CurveKeys:
    """Well-formed keys the broker has never heard of (used with the broker's right public key)."""
    other = CurveKeys(tmp_path_factory.mktemp("curve-stranger"))
    write_keys(other.directory, ["world"])
    return other


@pytest.fixture(scope="module")
def stack(keys: CurveKeys) -> Iterator[Stack]:
    running = Stack(tasks=[SOLO], worlds=1, heartbeat=HEARTBEAT, curve=keys.directory)
    running.start()
    try:
        running.wait_registered()
        yield running
    finally:
        running.stop()


def _worlds(stack: Stack, keys: CurveKeys) -> list[str]:
    status = query_status(stack.endpoints["frontend"], curve=keys.client("monitor"), timeout=WAIT)
    return [world["world"] for world in status.get("worlds", [])]


def test_a_world_without_an_allowed_key_never_registers_and_says_why(stack: Stack, keys: CurveKeys,
                                                                      stranger: CurveKeys) -> None:
    """Two ``arena world`` processes, one without a key and one with a key not in the
    allow-list, are refused at the backend's handshake: each says why within 5 s naming
    the backend, the broker lists neither and no game or seat changes. The same command
    with the allowed ``world`` key registers (the control: the outsiders' flags are right)."""
    backend, frontend = stack.endpoints["backend"], stack.endpoints["frontend"]
    monitor = keys.client("monitor")
    before = query_status(frontend, curve=monitor, timeout=WAIT)
    assert _worlds(stack, keys) == [stack.endpoints["worlds"][0]["world"]], before
    common = ["world", f"--backend={backend}", f"--trace-input={stack.endpoints['trace_input']}",
              f"--heartbeat={HEARTBEAT}", f"--task={SOLO}"]
    server = f"--curve-server={keys.server_public}"
    worlds = {
        "no-key": Arena(*common, "--name=no-key"),
        "unlisted": Arena(*common, "--name=unlisted", server, f"--curve-secret={stranger.client_secret('world')}"),
        "allowed": Arena(*common, "--name=allowed", server, f"--curve-secret={keys.client_secret('world')}"),
    }
    reasons = {"no-key": "CURVE is on at one end only", "unlisted": "the broker refused this world's CURVE key"}
    try:
        wait_until(lambda: "allowed" in _worlds(stack, keys), "the world with the allowed key registers", WAIT)
        for name, reason in reasons.items():
            started = worlds[name].started
            arrived, line = worlds[name].wait_for(reason, WAIT)
            assert backend in line, f"{name}: the line names no address: {line}"
            assert arrived - started < NOTICE + 3.0, f"{name}: said after {arrived - started:.1f} s (start-up included)"
        # each was refused again after its 1 s back-off: still outside
        for name in reasons:
            worlds[name].wait_for(reasons[name], WAIT, count=2)
        after = query_status(frontend, curve=monitor, timeout=WAIT)
        assert sorted(w["world"] for w in after["worlds"]) == sorted([stack.endpoints["worlds"][0]["world"],
                                                                      "allowed"]), after["worlds"]
        assert (after["games"], after["seats"], after["tasks"]) == (before["games"], before["seats"], before["tasks"])
    finally:
        for world in worlds.values():
            world.process.send_signal(signal.SIGTERM)
        codes = {name: world.finish(WAIT) for name, world in worlds.items()}
    assert codes == {"no-key": 0, "unlisted": 0, "allowed": 0}, codes


def _publisher(context: zmq.Context, address: str, curve: CurveClient | None) -> tuple[zmq.Socket, LinkWatch]:
    socket = context.socket(zmq.PUB)
    if curve is not None:
        curve.apply(socket)
    socket.setsockopt(zmq.LINGER, 0)
    link = LinkWatch(socket)  # before connecting: the first handshake is an event too
    socket.connect(address)
    return socket, link


def test_a_publisher_without_an_allowed_key_reaches_no_monitor(stack: Stack, keys: CurveKeys,
                                                               stranger: CurveKeys) -> None:
    """Trace publishers without a key, or with an unlisted one, are refused at the trace
    input: a keyed monitor, subscribed and handshaken first, sees the real world's events
    and those of a publisher with the allowed key, none of theirs. Counting starts once
    every publisher's handshake is settled (refused, or up)."""
    context = zmq.Context()
    world = stack.endpoints["worlds"][0]["world"]
    curves = {"no-key": None, "unlisted": CurveClient.load(keys.server_public, stranger.client_secret("world")),
              "allowed": keys.client("world")}
    publishers: dict[str, tuple[zmq.Socket, LinkWatch]] = {}
    try:
        with TraceMonitor(stack.endpoints["trace"], curve=keys.client("monitor"), context=context) as monitor:
            assert monitor.wait_ready(timeout=WAIT) is not None, "the keyed monitor sees no world"
            publishers = {name: _publisher(context, stack.endpoints["trace_input"], curve)
                          for name, curve in curves.items()}
            links = {name: link for name, (_, link) in publishers.items()}
            wait_until(lambda: all(link.update() or link.refused for link in links.values()),
                       "every publisher's handshake succeeds or is refused", WAIT)
            state = {name: "up" if link.up else f"refused: {link.silence()}" for name, link in links.items()}
            seen: Counter[str] = Counter()
            deadline = time.monotonic() + WAIT
            seq = 0
            # at least 3 of the real world's heartbeats and 5 of the allowed publisher's messages
            while (seen[world] < 3 or seen["allowed"] < 5) and time.monotonic() < deadline:
                seq += 1
                for name, (socket, _) in publishers.items():
                    event = {"kind": "alive", "world": name, "games": 0, "seats": 0}
                    socket.send_multipart([f"trace.world.{name}".encode(),
                                           pack({"publisher": name, "seq": seq, "events": [event]})])
                for _, message in monitor.receive(0.02):
                    seen[str(message.get("publisher"))] += 1
            assert seen[world] >= 3 and seen["allowed"] >= 5, f"the monitor saw too little: {dict(seen)}"
            assert seen["no-key"] == seen["unlisted"] == 0, \
                f"a publisher without an allowed key reached the monitor: {dict(seen)} ({seq} sent by each; {state})"
            assert links["no-key"].refused and links["unlisted"].refused, f"a handshake succeeded: {state}"
    finally:
        for socket, link in publishers.values():
            link.close()
            socket.close(linger=0)
        context.destroy(linger=0)

