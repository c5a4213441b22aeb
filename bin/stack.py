"""Starting and stopping the stack: a broker and world workers as child processes.

``arena up`` and ``arena demo`` use it; tests use it too, so they start the stack the
way a user does. Children are started with ``python -m bin ...``; the broker binds
``*`` ports if asked and writes its bound endpoints to a file we wait for (bounded),
so nobody guesses a free port.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protocol import CurveKeys

__all__ = ["Stack", "read_endpoints", "write_endpoints"]

log = logging.getLogger(__name__)


def write_endpoints(path: str | os.PathLike[str], endpoints: dict[str, Any]) -> None:
    """Write atomically (temp file + rename): a reader sees all of it or nothing."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(endpoints, indent=2) + "\n")
    temporary.replace(target)


def read_endpoints(path: str | os.PathLike[str], timeout: float, process: subprocess.Popen[Any] | None = None
                   ) -> dict[str, Any]:
    """Wait (bounded) for an endpoints file; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    target = Path(path)
    delay = 0.01
    while time.monotonic() < deadline:
        if target.exists():
            return json.loads(target.read_text())
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited with status {process.returncode} before it was ready")
        time.sleep(delay)  # a child process writing a file: nothing to wait on but the file
        delay = min(delay * 2, 0.2)
    raise TimeoutError(f"no endpoints in {path} after {timeout:.0f} s")


class Stack:
    """A broker, ``worlds`` world workers and optionally the gateway, as child processes.

    ``curve``: an ``arena keys`` directory; then every socket uses CURVE, the worlds with
    the ``world`` client key, the gateway with ``gateway`` and status queries with ``monitor``.

    >>> with Stack(worlds=1) as stack:                     # doctest: +SKIP
    ...     print(stack.endpoints["frontend"])
    """

    def __init__(self, *, tasks: Sequence[str] = (), worlds: int = 1, seed: int = 42,
                 frontend: str = "tcp://127.0.0.1:*", backend: str = "tcp://127.0.0.1:*",
                 trace: str = "tcp://127.0.0.1:*", trace_input: str = "tcp://127.0.0.1:*",
                 heartbeat: float | None = None, capacity: int | None = None, log_level: str | None = None,
                 gateway: str | None = None, curve: str | os.PathLike[str] | None = None,
                 ready_timeout: float = 30.0, world_arguments: Sequence[str] = ()) -> None:
        self.tasks = list(tasks)
        self.worlds = worlds
        self.seed = seed
        self.addresses = {"frontend": frontend, "backend": backend, "trace": trace, "trace_input": trace_input}
        self.heartbeat = heartbeat
        self.capacity = capacity
        self.log_level = log_level
        self.gateway = gateway
        self.curve = None if curve is None else CurveKeys(curve)
        self.ready_timeout = ready_timeout
        self.world_arguments = list(world_arguments)  # extra `arena world` flags (arena bench: --echo)
        self.processes: list[subprocess.Popen[Any]] = []
        self.endpoints: dict[str, Any] = {}
        self._directory = tempfile.TemporaryDirectory(prefix="arena-")

    def _command(self, *arguments: str) -> list[str]:
        command = [sys.executable, "-m", "bin"]
        if self.log_level:
            command += ["--log-level", self.log_level]
        return command + list(arguments)

    @staticmethod
    def curve_clients(*, gateway: bool) -> tuple[str, ...]:
        """The client keys a stack with CURVE needs."""
        return ("world", "monitor", "gateway") if gateway else ("world", "monitor")

    def _curve_arguments(self, client: str | None) -> list[str]:
        """The CURVE flags of the broker (``client`` None) or of a client."""
        keys = self.curve
        if keys is None:
            return []
        if client is None:
            return [f"--curve-secret={keys.server_secret}", f"--curve-allow={keys.allowed}"]
        return [f"--curve-server={keys.server_public}", f"--curve-secret={keys.client_secret(client)}"]

    def start(self) -> dict[str, Any]:
        try:
            self.processes.append(self._start_broker(self.addresses))
            self.endpoints = read_endpoints(Path(self._directory.name) / "broker.json", self.ready_timeout,
                                            self.processes[0])
            world_pids = []
            for index in range(self.worlds):
                ready_file = Path(self._directory.name) / f"world-{index}.json"
                arguments = ["world", f"--backend={self.endpoints['backend']}",
                             f"--trace-input={self.endpoints['trace_input']}", f"--seed={self.seed}",
                             f"--ready-file={ready_file}", *(f"--task={task}" for task in self.tasks),
                             *self._curve_arguments("world")]
                if self.heartbeat:
                    arguments.append(f"--heartbeat={self.heartbeat}")
                if self.capacity:
                    arguments.append(f"--capacity={self.capacity}")
                arguments += self.world_arguments
                process = subprocess.Popen(self._command(*arguments), stdout=subprocess.DEVNULL)
                self.processes.append(process)
                world_pids.append((ready_file, process))
            self.endpoints["worlds"] = [read_endpoints(path, self.ready_timeout, process)
                                        for path, process in world_pids]
            if self.gateway:
                gateway_file = Path(self._directory.name) / "gateway.json"
                process = subprocess.Popen(self._command(
                    "gateway", f"--broker={self.endpoints['frontend']}", f"--listen={self.gateway}",
                    f"--endpoints-file={gateway_file}", *self._curve_arguments("gateway")), stdout=subprocess.DEVNULL)
                self.processes.append(process)
                self.endpoints.update(read_endpoints(gateway_file, self.ready_timeout, process))
            self.endpoints["pids"] = [process.pid for process in self.processes]
            return self.endpoints
        except BaseException:
            self.stop()
            raise

    def _start_broker(self, addresses: dict[str, str]) -> subprocess.Popen[Any]:
        endpoints_file = Path(self._directory.name) / "broker.json"
        endpoints_file.unlink(missing_ok=True)
        broker = self._command("broker", *(f"--{k.replace('_', '-')}={v}" for k, v in addresses.items()),
                               f"--endpoints-file={endpoints_file}",
                               *([f"--heartbeat={self.heartbeat}"] if self.heartbeat else []),
                               *self._curve_arguments(None))
        return subprocess.Popen(broker, stdout=subprocess.DEVNULL)

    def restart_broker(self) -> None:
        """A fault drill: SIGKILL the broker and start a new one on the same endpoints (use
        ``ipc://`` or fixed ports: a ``*`` port would change). Worlds re-register with their
        games; clients resend. Waits until the new broker has bound its sockets."""
        old = self.processes[0]
        old.kill()
        old.wait()
        addresses = {name: self.endpoints[name] for name in self.addresses}
        self.processes[0] = self._start_broker(addresses)
        read_endpoints(Path(self._directory.name) / "broker.json", self.ready_timeout, self.processes[0])

    def wait_registered(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the broker lists every world (a STATUS query, bounded)."""
        from agents.status import query_status

        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        curve = self.curve.client("monitor") if self.curve is not None else None
        while time.monotonic() < deadline:
            status = query_status(self.endpoints["frontend"], timeout=max(0.1, min(2.0, deadline - time.monotonic())),
                                  curve=curve)
            if len(status.get("worlds", [])) >= self.worlds:
                return status
            time.sleep(0.05)  # polling another process's state: no event to wait on
        raise TimeoutError(f"only {len(status.get('worlds', []))} of {self.worlds} worlds registered")

    def stop(self, timeout: float = 10.0) -> list[int | None]:
        """Stop the children in reverse order (gateway, worlds, then the broker), each
        with SIGTERM and a bounded wait, then SIGKILL; the broker goes last so the others
        can say goodbye to it."""
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                codes.append(process.wait(max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                log.warning("process %d did not stop in time: killed", process.pid)
                process.kill()
                codes.append(process.wait())
        self.processes.clear()
        self._directory.cleanup()
        return codes

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
