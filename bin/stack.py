"""Starting and stopping the stack: a broker and world workers as child processes.

``arena up`` and ``arena demo`` use it; tests use it too, so they start the stack the
way a user does. Children are started with ``python -m bin ...``; the broker binds
``*`` ports if asked and writes its bound endpoints to a file we wait for (bounded),
so nobody guesses a free port.

Children never outlive the stack's process (:mod:`bin.lifeline`: Linux's parent-death
signal, asked for by each child), run in their own process group (a Ctrl-C in the
terminal reaches the supervisor, which stops them in order) and pass their stderr
through a thread of ours that keeps each one's last line: a child that fails to start
is reported by its own one-line reason. The temporary ``arena-*`` folder of those
files exists only while the stack starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from protocol import CurveKeys

from .lifeline import child_environment

__all__ = ["Child", "ChildExitedError", "Stack", "StackError", "read_endpoints", "write_endpoints"]

log = logging.getLogger(__name__)


class ChildExitedError(RuntimeError):
    """The process we waited for exited before it was ready."""


class StackError(RuntimeError):
    """A stack that did not start; ``str()`` is one line (the failing child's own reason),
    ``details`` what its children wrote to stderr meanwhile."""

    def __init__(self, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.details = details


def write_endpoints(path: str | os.PathLike[str], endpoints: dict[str, Any]) -> None:
    """Write atomically (temp file + rename): a reader sees all of it or nothing."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(endpoints, indent=2) + "\n")
    temporary.replace(target)


def read_endpoints(path: str | os.PathLike[str], timeout: float, process: subprocess.Popen[Any] | None = None,
                   cancel: threading.Event | None = None) -> dict[str, Any]:
    """Wait (bounded) for an endpoints file; fail early if ``process`` exits (:class:`ChildExitedError`)
    or ``cancel`` is set (:class:`InterruptedError`)."""
    deadline = time.monotonic() + timeout
    target = Path(path)
    delay = 0.01
    while time.monotonic() < deadline:
        if target.exists():
            return json.loads(target.read_text())
        if process is not None and process.poll() is not None:
            raise ChildExitedError(f"the process exited with status {process.returncode} before it was ready")
        # a child process writing a file: nothing to wait on but the file (and a stop request)
        if cancel is not None:
            if cancel.wait(delay):
                raise InterruptedError("stopped while starting")
        else:
            time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise TimeoutError(f"no endpoints in {path} after {timeout:.0f} s")


class _Relay:
    """Copies a child's stderr to ours line by line (a daemon thread) and keeps its last
    line. Lines are held while the stack starts, so that a start that fails says one
    line, not everything its children said; :meth:`release` passes them on."""

    def __init__(self, stream: IO[bytes], name: str, *, hold: bool) -> None:
        self.last_line = ""
        self._lock = threading.Lock()
        self._held: list[str] | None = [] if hold else None
        self._muted = False
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name=f"stderr-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._stream:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                if line.strip():
                    self.last_line = line.strip()
                with self._lock:
                    if self._muted:
                        continue
                    if self._held is not None:
                        self._held.append(line)
                        continue
                _write_stderr(line)

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held or [], None
            if not self._muted:
                _write_stderr("".join(held))

    def mute(self) -> str:
        """Pass nothing on from now; returns what was held."""
        with self._lock:
            held, self._held, self._muted = self._held or [], None, True
        return "".join(held)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _write_stderr(text: str) -> None:
    if not text:
        return
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (ValueError, OSError):  # our stderr is closed: the child's words go nowhere
        pass


@attrs.define(eq=False)
class Child:
    """One child process of a stack, and how to start it again."""

    role: str                       # "broker", "world" or "gateway"
    number: int                     # worlds count from 1; 0 for the others
    arguments: list[str]            # the `arena` arguments that start it (without its ready file)
    process: subprocess.Popen[Any]
    relay: _Relay
    started: float                  # time.monotonic() at start
    restarts: int = 0

    @property
    def label(self) -> str:
        return f"world {self.number}" if self.role == "world" else self.role

    def last_words(self, timeout: float = 2.0) -> str:
        """The last line it wrote to stderr (after it exited: waits for the pipe to close)."""
        self.relay.join(timeout)
        line = self.relay.last_line
        return line[len("Error: "):] if line.startswith("Error: ") else line


class Stack:
    """A broker, ``worlds`` world workers and optionally the gateway, as child processes.

    ``curve``: an ``arena keys`` directory; then every socket uses CURVE, the worlds with
    the ``world`` client key, the gateway with ``gateway`` and status queries with ``monitor``.
    ``heartbeat`` and ``liveness`` go to the broker and the worlds. A child's stderr goes
    to ours.

    >>> with Stack(worlds=1) as stack:                     # doctest: +SKIP
    ...     print(stack.endpoints["frontend"])
    """

    def __init__(self, *, tasks: Sequence[str] = (), worlds: int = 1, seed: int = 42,
                 frontend: str = "tcp://127.0.0.1:*", backend: str = "tcp://127.0.0.1:*",
                 trace: str = "tcp://127.0.0.1:*", trace_input: str = "tcp://127.0.0.1:*",
                 heartbeat: float | None = None, liveness: int | None = None, capacity: int | None = None,
                 log_level: str | None = None, gateway: str | None = None,
                 curve: str | os.PathLike[str] | None = None, ready_timeout: float = 30.0,
                 world_arguments: Sequence[str] = ()) -> None:
        self.tasks = list(tasks)
        self.worlds = worlds
        self.seed = seed
        self.addresses = {"frontend": frontend, "backend": backend, "trace": trace, "trace_input": trace_input}
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.capacity = capacity
        self.log_level = log_level
        self.gateway = gateway
        self.curve = None if curve is None else CurveKeys(curve)
        self.ready_timeout = ready_timeout
        self.world_arguments = list(world_arguments)  # extra `arena world` flags (arena bench: --echo)
        self.children: list[Child] = []
        self.endpoints: dict[str, Any] = {}

    @property
    def processes(self) -> list[subprocess.Popen[Any]]:
        """The children's processes: the broker first, then the worlds, then the gateway."""
        return [child.process for child in self.children]

    def pids(self) -> list[int]:
        return [child.process.pid for child in self.children]

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

    def _liveness_arguments(self) -> list[str]:
        return ([f"--heartbeat={self.heartbeat}"] if self.heartbeat else []) + \
               ([f"--liveness={self.liveness}"] if self.liveness else [])

    def _spawn(self, role: str, number: int, arguments: list[str], *, ready: Sequence[str] = (),
               scratch: str | None = None, hold: bool = False) -> Child:
        """Start one child in its own process group, dying with us (:mod:`bin.lifeline`)."""
        process = subprocess.Popen(self._command(*arguments, *ready), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=child_environment(scratch), process_group=0)
        assert process.stderr is not None
        label = f"world {number}" if role == "world" else role
        return Child(role, number, arguments, process, _Relay(process.stderr, label, hold=hold), time.monotonic())

    def _ready(self, child: Child, path: Path, cancel: threading.Event | None) -> dict[str, Any]:
        try:
            return read_endpoints(path, self.ready_timeout, child.process, cancel)
        except ChildExitedError:
            reason = child.last_words() or f"it exited with status {child.process.returncode}"
            raise StackError(f"the {child.label} did not start: {reason}",
                             "".join(c.relay.mute() for c in self.children)) from None

    def start(self, cancel: threading.Event | None = None) -> dict[str, Any]:
        """Start the broker, the worlds and the gateway, each waited for (bounded); returns
        the endpoints with the children's ``pids``. ``cancel`` set: stop and raise
        :class:`InterruptedError`. A child that exits first: :class:`StackError`."""
        scratch = tempfile.mkdtemp(prefix="arena-")
        try:
            broker_file = Path(scratch) / "broker.json"
            broker = self._spawn("broker", 0, self._broker_arguments(self.addresses),
                                 ready=[f"--endpoints-file={broker_file}"], scratch=scratch, hold=True)
            self.children.append(broker)
            self.endpoints = self._ready(broker, broker_file, cancel)
            waiting = []
            for number in range(1, self.worlds + 1):
                ready_file = Path(scratch) / f"world-{number}.json"
                world = self._spawn("world", number, self._world_arguments(), ready=[f"--ready-file={ready_file}"],
                                    scratch=scratch, hold=True)
                self.children.append(world)
                waiting.append((world, ready_file))
            self.endpoints["worlds"] = [self._ready(world, path, cancel) for world, path in waiting]
            if self.gateway:
                gateway_file = Path(scratch) / "gateway.json"
                gateway = self._spawn("gateway", 0, self._gateway_arguments(self.gateway),
                                      ready=[f"--endpoints-file={gateway_file}"], scratch=scratch, hold=True)
                self.children.append(gateway)
                self.endpoints.update(self._ready(gateway, gateway_file, cancel))
                gateway.arguments = self._gateway_arguments(self.endpoints["gateway"])  # a restart keeps the port
            self.endpoints["pids"] = self.pids()
            for child in self.children:
                child.relay.release()
            return self.endpoints
        except BaseException:
            self.stop()
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _broker_arguments(self, addresses: dict[str, str]) -> list[str]:
        return ["broker", *(f"--{k.replace('_', '-')}={v}" for k, v in addresses.items()),
                *self._liveness_arguments(), *self._curve_arguments(None)]

    def _world_arguments(self) -> list[str]:
        arguments = ["world", f"--backend={self.endpoints['backend']}",
                     f"--trace-input={self.endpoints['trace_input']}", f"--seed={self.seed}",
                     *(f"--task={task}" for task in self.tasks), *self._curve_arguments("world"),
                     *self._liveness_arguments()]
        if self.capacity:
            arguments.append(f"--capacity={self.capacity}")
        return arguments + self.world_arguments

    def _gateway_arguments(self, listen: str) -> list[str]:
        return ["gateway", f"--broker={self.endpoints['frontend']}", f"--listen={listen}",
                *self._curve_arguments("gateway")]

    def restart(self, child: Child) -> Child:
        """Start an exited world or gateway again with the same arguments: a world registers
        again with the same tasks and seed (as a new world: its games are gone), the
        gateway listens where it did. Updates ``endpoints`` (``pids``, the world's name)."""
        if child.role == "broker":
            raise ValueError("restart_broker() restarts the broker")
        if child.process.poll() is None:
            raise ValueError(f"the {child.label} is still running")
        fresh = self._spawn(child.role, child.number, child.arguments)
        fresh.restarts = child.restarts + 1
        self.children[self.children.index(child)] = fresh
        self.endpoints["pids"] = self.pids()
        if child.role == "world" and "--name" not in " ".join(child.arguments):
            worlds = self.endpoints["worlds"]
            # the name a world gives itself (world.worker.WorldWorker)
            worlds[child.number - 1] = {**worlds[child.number - 1],
                                        "world": f"w-{socket.gethostname()}-{fresh.process.pid}"}
        return fresh

    def restart_broker(self) -> None:
        """A fault drill: SIGKILL the broker and start a new one on the same endpoints (use
        ``ipc://`` or fixed ports: a ``*`` port would change). Worlds re-register with their
        games; clients resend. Waits until the new broker has bound its sockets."""
        old = self.children[0]
        old.process.kill()
        old.process.wait()
        addresses = {name: self.endpoints[name] for name in self.addresses}
        scratch = tempfile.mkdtemp(prefix="arena-")
        try:
            broker_file = Path(scratch) / "broker.json"
            self.children[0] = self._spawn("broker", 0, self._broker_arguments(addresses),
                                           ready=[f"--endpoints-file={broker_file}"], scratch=scratch)
            self._ready(self.children[0], broker_file, None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.endpoints["pids"] = self.pids()

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
        """Stop the children: first the gateway and the worlds (SIGTERM, all at once), then
        the broker, so the others can say goodbye to it; each with a bounded wait, then
        SIGKILL. Returns the exit codes, the gateway's first and the broker's last."""
        deadline = time.monotonic() + timeout
        codes: dict[int, int | None] = {}
        brokers = [child for child in self.children if child.role == "broker"]
        for group in ([child for child in self.children if child.role != "broker"], brokers):
            for child in group:
                if child.process.poll() is None:
                    child.process.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    codes[id(child)] = child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s (pid %d) did not stop in time: killed", child.label, child.process.pid)
                    child.process.kill()
                    codes[id(child)] = child.process.wait()
        for child in self.children:
            child.relay.join(1.0)
            child.relay.release()
        stopped = [codes[id(child)] for child in reversed(self.children)]
        self.children.clear()
        return stopped

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
