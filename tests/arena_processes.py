"""Helpers for tests that run `arena` commands as processes and check what they leave:
a command whose stderr lines are kept as they arrive, whether a pid still runs, whether a
port can be bound again. Every wait is bounded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARENA = [sys.executable, "-m", "bin"]
SOLO = str(ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml")
WAIT = 60.0  # seconds: the bound of waits for things that take a second or two when all is well
LOOPBACK_ANY = ("--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                "--trace", "tcp://127.0.0.1:*", "--trace-input", "tcp://127.0.0.1:*")


class Arena:
    """``arena ARGUMENTS`` in a subprocess (after ``prefix``, e.g. ``unshare -n``); its
    stderr lines are kept with their arrival time, stdout is read to the end."""

    def __init__(self, *arguments: str, prefix: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self.stdout = ""
        self._changed = threading.Condition()
        self.started = time.monotonic()
        self.process = subprocess.Popen([*prefix, *ARENA, *arguments], cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env)
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    @property
    def text(self) -> list[str]:
        with self._changed:
            return [line for _, line in self.lines]

    def wait_for(self, text: str, timeout: float = WAIT, *, count: int = 1) -> tuple[float, str]:
        """The ``count``-th stderr line containing ``text``: (time.monotonic() it arrived, line)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matching = [seen for seen in self.lines if text in seen[1]]
                if len(matching) >= count:
                    return matching[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._readers[0].is_alive()):
                    raise AssertionError(f"no stderr line with {text!r} in {timeout:g} s: {self.text}")
                self._changed.wait(min(left, 0.5))

    def finish(self, timeout: float = WAIT) -> int:
        """Wait for the exit (bounded; then SIGKILL) and for its output."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"arena did not exit within {timeout:g} s: {self.text}") from None
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT, interval: float = 0.05) -> float:
    """Wait (bounded) until ``condition()`` is true; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)  # another process's state: nothing to wait on
    return time.monotonic() - started


def tcp_port(address: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` or ``HOST:PORT`` as (host, port)."""
    host, _, port = address.partition("://")[2].rpartition(":") if "://" in address else address.rpartition(":")
    return host.strip("[]"), int(port)


def port_free(address: str) -> bool:
    """Whether a listener could bind ``address`` now (nobody listens there any more)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(tcp_port(address))
        except OSError:
            return False
    return True


def processes_mentioning(text: str) -> list[int]:
    """Pids of running processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and running(int(entry.name)):
            found.append(int(entry.name))
    return found
