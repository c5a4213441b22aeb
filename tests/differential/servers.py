"""The differential harness's servers and wire: upstream's NetSecGame server and a raw client.

``UpstreamServer`` runs NetSecGame 0.2.0's server (``python -m
netsecgame.game.worlds.NetSecGame``) on a free port in its own working directory, because it
writes ``logs/`` there; ``WireClient`` speaks NetSecGame's framing (bare JSON out, read until
``EOF``) to it and to our gateway; ``stop_process`` stops a child process with SIGTERM, a
bounded wait, then SIGKILL. Our own stack is ``bin.stack.Stack``, started by ``differential.run_one``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = [
    "UPSTREAM_MODULE",
    "UpstreamServer",
    "WireClient",
    "free_port",
    "stop_process",
]

log = logging.getLogger("differential")

UPSTREAM_MODULE = "netsecgame.game.worlds.NetSecGame"
EOF = b"EOF"


# --------------------------------------------------------------------------- the wire
class WireClient:
    """One NetSecGame-protocol connection (BaseAgent's framing, reference §2.1): bare JSON
    out; read until ``EOF``, delete every ``EOF``, parse. Every read is bounded."""

    def __init__(self, name: str, sock: socket.socket, timeout: float, max_bytes: int = 64 << 20) -> None:
        self.name = name
        self.sock = sock
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._buffer = b""

    @classmethod
    def connect(cls, name: str, address: tuple[str, int], timeout: float) -> WireClient:
        return cls(name, socket.create_connection(address, timeout=timeout), timeout)

    def send(self, payload: str) -> None:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(payload.encode())

    def receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while EOF not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name}: no complete reply within {self.timeout:.0f} s")
            if len(self._buffer) > self.max_bytes:
                raise ConnectionError(f"{self.name}: reply larger than {self.max_bytes} bytes without EOF")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue  # the loop condition reports it
            if not chunk:
                raise ConnectionError(f"{self.name}: connection closed before EOF (Unfinished connection.)")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(EOF)
        return json.loads(message.replace(EOF, b""))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind to 0, read, close). Racy, hence the
    retries in ``UpstreamServer.start``; acceptable for an opt-in local tool."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], name: str, timeout: float = 10.0) -> int:
    """SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) did not stop in %.0f s: killed", name, process.pid, timeout)
        process.kill()
        return process.wait(timeout)


class UpstreamServer:
    """NetSecGame 0.2.0's server on a free port, in its own working directory."""

    def __init__(self, task_file: Path, directory: Path, *, python: str, seed: int, hash_seed: str,
                 ready_timeout: float, reply_timeout: float, attempts: int = 3) -> None:
        self.task_file = task_file
        self.directory = directory
        self.python = python
        self.seed = seed
        self.hash_seed = hash_seed
        self.ready_timeout = ready_timeout
        self.reply_timeout = reply_timeout
        self.attempts = attempts
        self.process: subprocess.Popen[Any] | None = None
        self._output: Any = None

    @property
    def output_file(self) -> Path:
        return self.directory / "upstream-output.log"

    def start_and_connect(self) -> WireClient:
        """Start the server and connect the one client the task allows (``required_players:
        1`` is also upstream's connection cap, so no separate readiness probe is made)."""
        for attempt in range(1, self.attempts + 1):
            port = free_port()
            command = [self.python, "-m", UPSTREAM_MODULE, f"--task_config={self.task_file}",
                       "--game_host=127.0.0.1", f"--game_port={port}", f"--seed={self.seed}",
                       "--debug_level=WARNING"]
            log.debug("starting upstream: %s", " ".join(command))
            self._output = self.output_file.open("ab")
            environment = {**os.environ, "PYTHONHASHSEED": self.hash_seed}
            self.process = subprocess.Popen(command, cwd=self.directory, stdout=self._output,
                                            stderr=subprocess.STDOUT, env=environment)
            client = self._connect(("127.0.0.1", port))
            if client is not None:
                return client
            log.warning("upstream did not come up on port %d (attempt %d of %d)", port, attempt, self.attempts)
            self.stop()
        raise RuntimeError(f"NetSecGame's server did not start; see {self.output_file}:\n{self.tail()}")

    def _connect(self, address: tuple[str, int]) -> WireClient | None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return None
            try:
                return WireClient.connect("upstream", address, self.reply_timeout)
            except OSError:
                time.sleep(0.1)  # the server is still importing: nothing to wait on but the port
        return None

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.output_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, "upstream")
            self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None
