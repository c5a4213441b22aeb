"""Helpers for the tests that drive `arena play` and clients as real processes against a
real stack (tests/test_held_joins.py, tests/test_arena_play.py): task files with a short
`arena:` section, a stack that is torn down whatever happens, a child's stderr read line
by line as it comes (with the time each line arrived), the trace's episode events, and
bounded waits on the broker's STATUS.

Every wait is bounded; every process started here is killed on the way out."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml
import zmq

from agents.status import query_status
from bin.stack import Stack
from protocol import unpack

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "world" / "tasks"
ARENA = [sys.executable, "-m", "bin"]
HEARTBEAT = 0.2


def task_file(directory: Path, name: str, base: str = "default.yaml", **arena: Any) -> str:
    """A shipped task renamed ``name``, with ``arena`` settings (hold_timeout, seat_lease, ...)."""
    document = yaml.safe_load((TASKS / base).read_text())
    document.setdefault("arena", {}).update(name=name, **arena)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@contextmanager
def running_stack(**options: Any) -> Iterator[Stack]:
    """A broker and worlds (short heartbeats), every world registered; stopped on exit."""
    stack = Stack(heartbeat=HEARTBEAT, **options)
    stack.start()
    try:
        stack.wait_registered()
        yield stack
    finally:
        stack.stop()


def arena_play(frontend: str, *arguments: str, log_level: str | None = None) -> subprocess.Popen[str]:
    """``arena play --broker FRONTEND ...`` with stdout and stderr piped."""
    command = [*ARENA, *(["--log-level", log_level] if log_level else []), "play", "--broker", frontend, *arguments]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextmanager
def killed_at_exit(*processes: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()


class Lines:
    """A child's pipe read line by line in a thread, each line with the monotonic time it
    arrived, so a test waits for a line (bounded) instead of sleeping."""

    def __init__(self, pipe: IO[str]) -> None:
        self.started = time.monotonic()
        self.seen: list[tuple[float, str]] = []
        self._queue: queue.Queue[tuple[float, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put((time.monotonic(), line.rstrip("\n")))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> tuple[float, str]:
        """The first line containing ``text``: (seconds after this reader started, line)."""
        for arrived, line in self.seen:
            if text in line:
                return arrived - self.started, line
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no line with {text!r} within {timeout} s; got {self.text()[-2000:]!r}") from None
            if item is None:
                self._queue.put(None)
                raise EOFError(f"the pipe closed without a line with {text!r}; got {self.text()[-2000:]!r}")
            self.seen.append(item)
            if text in item[1]:
                return item[0] - self.started, item[1]

    def rest(self, timeout: float = 30.0) -> str:
        """Everything, once the pipe has closed (bounded)."""
        self._thread.join(timeout)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.seen.append(item)
        return self.text()

    def text(self) -> str:
        return "\n".join(line for _, line in self.seen)


class TraceEpisodes:
    """The trace's ``episode`` events (a SUB socket on the stack's trace), counted."""

    def __init__(self, trace: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"trace.")
        self.socket.connect(trace)
        self.events: list[dict[str, Any]] = []

    def wait(self, count: int, timeout: float, where: Callable[[dict[str, Any]], bool] = lambda _: True) -> None:
        deadline = time.monotonic() + timeout
        while sum(1 for event in self.events if where(event)) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(left * 1000):
                raise TimeoutError(f"fewer than {count} episodes on the trace within {timeout} s")
            _, body = self.socket.recv_multipart()
            self.events += [event for event in unpack(body)["events"] if event.get("kind") == "episode"]

    def close(self) -> None:
        self.socket.close(linger=0)


def wait_until(condition: Callable[[], Any], what: str, timeout: float) -> float:
    """Poll another process's state (nothing to wait on but a query); seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def seats_in(frontend: str, game: str) -> dict[str, int]:
    """The seats of ``game`` by role ({} when the game is gone)."""
    games = query_status(frontend, timeout=2.0).get("games", [])
    return next((dict(entry["seats"]) for entry in games if entry["game"] == game), {})


def seat_count(frontend: str) -> int:
    return int(query_status(frontend, timeout=2.0).get("seats", -1))
