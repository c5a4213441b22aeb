"""``arena up`` watching its children (DESIGN §7).

A world or the gateway that exits without being asked is started again after a back-off
(0.5 s doubling to 16 s; back to 0.5 s for one that had run 30 s), counted and logged,
while the broker and the other worlds keep serving. A broker that exits ends the
supervision with its reason: everything stops and ``arena up`` exits non-zero. The loop
waits on an event that SIGCHLD and the stop request set, so a child's exit is seen at once.

>>> backoff = Backoff()
>>> [backoff.delay(ran_for=1.0) for _ in range(7)]
[0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0]
>>> backoff.delay(ran_for=60.0)
0.5
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import click

from .signals import STOP_SIGNALS
from .stack import Child, Stack, StackError, write_endpoints

__all__ = ["Backoff", "Supervisor", "serve_stack"]

#: Seconds between two looks at the children when no signal woke us (a safety net).
_IDLE = 1.0


@attrs.define
class Backoff:
    """Delays between restarts of one child: ``first`` doubling to ``cap``; a child that
    ran ``settle`` seconds or more before it exited starts again after ``first``."""

    first: float = 0.5
    cap: float = 16.0
    settle: float = 30.0
    _next: float | None = None

    def delay(self, ran_for: float) -> float:
        if self._next is None or ran_for >= self.settle:
            self._next = self.first
        delay = self._next
        self._next = min(delay * 2, self.cap)
        return delay


class Supervisor:
    """Restarts the worlds and the gateway of a started :class:`~bin.stack.Stack` when they
    exit; ``say`` reports each event (one line), ``changed`` runs after each restart (to
    write the endpoints file again, with the new pids)."""

    def __init__(self, stack: Stack, *, say: Callable[[str], None], changed: Callable[[], None] = lambda: None,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self.stack = stack
        self.say = say
        self.changed = changed
        self._backoff = backoff
        self.backoffs: dict[str, Backoff] = {}
        self.restarts: dict[str, int] = {}

    def run(self, stopping: threading.Event, wake: threading.Event) -> str | None:
        """Watch until ``stopping`` is set (returns None) or the broker exits (returns why).
        ``wake`` is set by whoever has news: a SIGCHLD handler, the stop request."""
        due: dict[Child, float] = {}
        while not stopping.is_set():
            now = time.monotonic()
            for child in list(self.stack.children):
                if child in due or child.process.poll() is None:
                    continue
                code = child.process.returncode  # -9: killed by SIGKILL
                if child.role == "broker":
                    words = child.last_words()
                    return f"the broker (pid {child.process.pid}) exited ({code})" + (f": {words}" if words else "")
                count = self.restarts[child.label] = self.restarts.get(child.label, 0) + 1
                delay = self.backoffs.setdefault(child.label, self._backoff()).delay(now - child.started)
                self.say(f"arena up: {child.label} (pid {child.process.pid}) exited ({code}); "
                         f"restart {count} in {delay:g} s")
                due[child] = now + delay
            for child, when in list(due.items()):
                if when <= time.monotonic() and not stopping.is_set():
                    del due[child]
                    fresh = self.stack.restart(child)
                    self.changed()  # first: who reads the log line finds the new pid in the endpoints file
                    self.say(f"arena up: {fresh.label} restarted (pid {fresh.process.pid})")
            wait = min([when - time.monotonic() for when in due.values()] + [_IDLE])
            wake.wait(max(0.0, wait))
            wake.clear()
        return None


def serve_stack(stack: Stack, *, endpoints_file: str | None, announce: Callable[[dict[str, Any]], None]) -> None:
    """``arena up``'s life: start ``stack``, write its endpoints, ``announce`` them, then
    supervise until SIGINT, SIGTERM or SIGHUP (returns) or the broker exits (a
    :class:`click.ClickException` with its reason). Every child is stopped on every path
    that runs code; a SIGKILL of this process reaches them through :mod:`bin.lifeline`."""
    stopping, wake = threading.Event(), threading.Event()
    news = SignalNews(stopping, wake)

    def write() -> None:
        if endpoints_file:
            write_endpoints(endpoints_file, stack.endpoints)

    previous = {sig: signal.signal(sig, news.handler) for sig in (*STOP_SIGNALS, signal.SIGCHLD)}
    try:
        try:
            stack.start(cancel=stopping)
        except InterruptedError:
            return
        except (StackError, TimeoutError) as error:
            raise click.ClickException(str(error) if isinstance(error, StackError)
                                       else f"the stack did not start: {error}") from None
        write()
        announce(stack.endpoints)
        supervisor = Supervisor(stack, say=lambda line: click.echo(line, err=True), changed=write)
        reason = supervisor.run(stopping, wake)
        if reason is not None:
            raise click.ClickException(f"{reason}; everything stopped")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        news.close()


class SignalNews:
    """Signals turned into ``stopping`` / ``wake`` events without a lock in the handler.

    A Python signal handler runs on the main thread between two bytecodes, also while that
    thread is inside ``Event.wait`` or ``Event.clear`` holding the event's (non-reentrant)
    lock: a handler calling ``Event.set`` there waits for itself forever (``arena up``
    then ignored every later SIGTERM). The handler only writes a byte to a pipe; a thread
    reads it and sets the events.
    """

    def __init__(self, stopping: threading.Event, wake: threading.Event) -> None:
        self._stopping, self._wake = stopping, wake
        self._stop_asked = False
        self._closing = False
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)
        self._reader = threading.Thread(target=self._relay, name="signal-news", daemon=True)
        self._reader.start()

    def handler(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:
            self._stop_asked = True  # a plain store: seen even if the pipe is full
        self._poke()

    def close(self) -> None:
        self._closing = True
        self._poke()
        self._reader.join(1.0)
        os.close(self._read_end)
        os.close(self._write_end)

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full of news not yet taken: it wakes anyway
            os.write(self._write_end, b"!")

    def _relay(self) -> None:
        while True:
            try:
                os.read(self._read_end, 4096)
            except OSError:
                return
            if self._closing:
                return
            if self._stop_asked:
                self._stopping.set()
            self._wake.set()
