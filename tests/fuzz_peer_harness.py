"""The broker's peers under fuzz, for tests/test_fuzz_processes.py.

* :class:`WorldUnderFuzz` is a real ``arena world`` process connected to a ROUTER that
  this test binds, i.e. the test plays the broker.
* :func:`run_gateway_scripts` opens one TCP connection per script, sends it, and reads
  NetSecGame replies (JSON then ``EOF``) from all of them at once;
  :func:`check_gateway_replies` checks them against what each script is owed.

Every wait is bounded; every socket and process is closed by the caller's fixtures.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from broker.gateway_codec import join_body, parse_request, request_body
from protocol import PROTOCOL_FRAME, ActionType, Command, ReplyBody, decode_reply

from .fuzz_harness import OUTCOMES, ROOT, SOLO, WAIT, short
from .fuzz_peer_strategies import GatewayScript
from .fuzz_strategies import BATCH, HEARTBEAT, READY, RELEASE, REPLY, REQUEST


# ---------------------------------------------------------------------------- a world, the test as its broker
class WorldUnderFuzz:
    """A real ``arena world`` process whose broker is this test: a bound ROUTER."""

    def __init__(self, context: zmq.Context, log: Path, heartbeat: float = 5.0) -> None:
        self.router = context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.SNDHWM, 100_000)
        self.router.setsockopt(zmq.RCVHWM, 100_000)
        self.router.bind("tcp://127.0.0.1:*")
        self.endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.heartbeat = heartbeat
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bin", "world", f"--backend={self.endpoint}", f"--task={SOLO}", "--seed=42",
                 f"--heartbeat={heartbeat}", "--name=w-fuzz", "--trace-input="],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        self.identity: bytes | None = None
        self.readies = 0
        #: every answer, in arrival order: (client, command, seat, seq, body)
        self.answers: list[tuple[bytes, bytes, bytes, bytes, bytes]] = []
        self.releases: list[bytes] = []
        self.strange: list[list[bytes]] = []
        self._next_beat = 0.0

    def close(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.router.close(linger=0)
        return self.process.returncode

    def send(self, parts: list[bytes]) -> None:
        assert self.identity is not None
        self.router.send_multipart([self.identity, *parts])

    def pump(self, condition: Callable[[], bool], timeout: float = WAIT) -> bool:
        """Receive (and heartbeat the world) until ``condition`` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            now = time.monotonic()
            if now >= deadline:
                return False
            if self.identity is not None and now >= self._next_beat:
                self.router.send_multipart([self.identity, PROTOCOL_FRAME, HEARTBEAT])
                self._next_beat = now + self.heartbeat / 2
            if self.router.poll(min(deadline - now, self.heartbeat / 2) * 1000):
                for _ in range(10_000):
                    try:
                        self._receive(self.router.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
        return True

    def _receive(self, frames: list[bytes]) -> None:
        identity, parts = frames[0], frames[1:]
        if len(parts) < 2 or parts[0] != PROTOCOL_FRAME:
            self.strange.append(parts)
        elif parts[1] == READY:
            self.identity, self.readies = identity, self.readies + 1
        elif parts[1] == REPLY and len(parts) == 7:  # one answer (a BATCH one too: the error to a bad batch)
            self.answers.append((parts[2], parts[3], parts[4], parts[5], parts[6]))
        elif parts[1] == REPLY and len(parts) >= 9 and parts[3] == BATCH and (len(parts) - 6) % 3 == 0:
            for index in range(6, len(parts), 3):
                self.answers.append((parts[2], parts[5], parts[index], parts[index + 1], parts[index + 2]))
        elif parts[1] == RELEASE and len(parts) == 3:
            self.releases.append(parts[2])
        elif parts[1] != HEARTBEAT:
            self.strange.append(parts)

    def call(self, command: bytes, seat: bytes, seq: bytes, body: bytes) -> ReplyBody:
        """One well-formed request and its answer."""
        start = len(self.answers)
        self.send([PROTOCOL_FRAME, REQUEST, b"legit-client", command, seat, seq, body])
        found: list[bytes] = []

        def answered() -> bool:
            found[:] = [a[4] for a in self.answers[start:] if a[2] == seat and a[3] == seq]
            return bool(found)

        assert self.pump(answered), f"no answer to {Command.from_frame(command).name} {seat!r} {seq!r}"
        return decode_reply(found[0])


# ---------------------------------------------------------------------------- gateway connections
def _replies(data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Complete replies (JSON then EOF; EOF inside strings is escaped) and the rest."""
    *whole, rest = data.split(b"EOF")
    return [json.loads(part) for part in whole], rest


def run_gateway_scripts(address: tuple[str, int], scripts: list[GatewayScript],
                        timeout: float = WAIT) -> list[tuple[list[dict[str, Any]], bool]]:
    """Send each script on its own connection; per script, the replies read and whether
    the gateway closed the connection. Reading stops once every script has what it is
    owed (garbage: one reply, or a close); then the connections are closed abruptly."""
    selector = selectors.DefaultSelector()
    state: list[dict[str, Any]] = []
    try:
        for _ in scripts:
            sock = socket.create_connection(address, timeout=WAIT)
            sock.setblocking(False)
            state.append({"sock": sock, "buffer": b"", "replies": [], "closed": False})
            selector.register(sock, selectors.EVENT_READ, len(state) - 1)
        for entry, script in zip(state, scripts, strict=True):
            entry["sock"].setblocking(True)
            entry["sock"].sendall(script.data)
            entry["sock"].setblocking(False)
            if script.vanish:
                selector.unregister(entry["sock"])
                _abort(entry["sock"])
                entry["closed"] = True

        def owed(index: int) -> bool:
            entry, script = state[index], scripts[index]
            wanted = 1 if script.replies is None else script.replies + script.join
            return entry["closed"] or len(entry["replies"]) >= wanted

        deadline = time.monotonic() + timeout
        while not all(owed(i) for i in range(len(scripts))) and time.monotonic() < deadline:
            for key, _ in selector.select(0.05):
                _read(state[key.data], selector)
        for key, _ in selector.select(0.01):  # replies beyond what was owed, already here
            _read(state[key.data], selector)
        return [(entry["replies"], entry["closed"]) for entry in state]
    finally:
        selector.close()
        for entry in state:
            _abort(entry["sock"])


def _abort(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0): what a killed agent does to the gateway."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def join_document(name: str = "fuzz") -> bytes:
    """A NetSecGame JoinGame request as an attacker."""
    return json.dumps({"action_type": "ActionType.JoinGame",
                       "parameters": {"agent_info": {"name": name, "role": "Attacker"}}}).encode()


def gateway_would_send(document: bytes) -> str | None:
    """"join" or "play" for a JoinGame or other action the gateway would send to the
    broker; None for a request it must refuse itself."""
    try:
        action = parse_request(document)
        if action.action_type is ActionType.JoinGame:
            join_body(None, None, action)
            return "join"
        request_body(action)
        return "play"
    except (ValueError, TypeError, OverflowError):  # ProtocolError, or what msgpack cannot encode
        return None


def check_gateway_replies(script: GatewayScript, replies: list[dict[str, Any]], closed: bool) -> None:
    """NetSecGame replies, all BAD_REQUEST (after the join's CREATED): exactly one per
    request, or for garbage at least one or a closed connection."""
    what = f"{short(script.data, 200)} ({script.count} requests)"
    if script.vanish:
        return
    assert all("to_agent" in reply and "status" in reply for reply in replies), f"{what}: {short(replies)}"
    statuses = [reply["status"] for reply in replies]
    OUTCOMES.update(f"gateway {status}" for status in statuses)
    if script.join:
        assert statuses[:1] == ["GameStatus.CREATED"], f"{what}: the join got {short(replies[:1])}"
        statuses = statuses[1:]
    if script.replies is None:
        assert statuses or closed, f"{what}: neither a reply nor a closed connection"
    else:
        assert len(statuses) == script.replies, f"{what}: {len(statuses)} replies, {short(replies)}"
    assert set(statuses) <= {"GameStatus.BAD_REQUEST"}, f"{what}: {short(replies)}"


def read_reply(sock: socket.socket) -> bytes:
    """One whole NetSecGame reply (up to its EOF) from a blocking socket."""
    data = b""
    while not data.endswith(b"EOF"):
        chunk = sock.recv(1 << 16)
        assert chunk, f"connection closed after {data[:200]!r}"
        data += chunk
    return data


def _read(entry: dict[str, Any], selector: selectors.BaseSelector) -> None:
    try:
        chunk = entry["sock"].recv(1 << 16)
    except BlockingIOError:
        return
    except OSError:
        chunk = b""
    if not chunk:
        entry["closed"] = True
        selector.unregister(entry["sock"])
        return
    replies, entry["buffer"] = _replies(entry["buffer"] + chunk)
    entry["replies"] += replies
