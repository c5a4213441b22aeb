"""Measuring for ``arena bench``: processes' CPU times, latency percentiles, a trace drain.

CPU comes from the processes' own accounting (``/proc/<pid>/stat``: utime + stime, in
clock ticks), read before and after each measured interval, so it counts everything a
server process does (its Python loop, msgpack, libzmq's I/O thread) and nothing else.
The resolution is one tick (10 ms on Linux): measured intervals of a second or more
keep it to a few per cent. Where there is no ``/proc``, CPU figures are None.

>>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile([], 99)
(3.0, None)
>>> process_cpu(os.getpid()) is None or process_cpu(os.getpid()) >= 0
True
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections.abc import Sequence

import attrs
import zmq

__all__ = ["CpuSample", "TraceDrain", "Usage", "percentile", "process_cpu", "raise_open_file_limit"]

try:
    CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (AttributeError, ValueError, OSError):  # not a POSIX system
    CLOCK_TICKS = 100


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far; None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def raise_open_file_limit(wanted: int = 8192) -> int:
    """Raise this process's soft limit of open files towards ``wanted`` (at most the hard
    limit); children started afterwards inherit it. 256 agents and a broker serving them
    need more than the usual soft limit of 1024. Returns the limit now in force."""
    try:
        import resource
    except ImportError:  # not POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


@attrs.frozen
class CpuSample:
    """Wall time, this process's CPU and each server process's CPU at one moment."""

    wall: float
    client: float
    servers: tuple[float | None, ...]

    @classmethod
    def take(cls, pids: Sequence[int]) -> CpuSample:
        return cls(time.perf_counter(), time.process_time(), tuple(process_cpu(pid) for pid in pids))


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


@attrs.frozen
class Usage:
    """What a measured interval cost: wall seconds, and CPU seconds of this process (the
    client), of the broker (the first pid) and of the worlds (the others, summed)."""

    wall: float
    client: float
    broker: float | None
    world: float | None

    @classmethod
    def between(cls, before: CpuSample, after: CpuSample) -> Usage:
        spent = [_spent(b, a) for b, a in zip(before.servers, after.servers, strict=True)]
        worlds = spent[1:]
        world = None if not worlds or any(value is None for value in worlds) else sum(worlds)  # type: ignore[misc]
        return cls(after.wall - before.wall, after.client - before.client, spent[0] if spent else None, world)

    def per(self, count: int) -> dict[str, float | None]:
        """CPU microseconds per operation, by process."""
        def micro(seconds: float | None) -> float | None:
            return None if seconds is None or count <= 0 else seconds / count * 1e6

        server = None if self.world is None or self.broker is None else self.world + self.broker
        return {"world_cpu_us": micro(self.world), "broker_cpu_us": micro(self.broker),
                "server_cpu_us": micro(server), "client_cpu_us": micro(self.client)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


class TraceDrain:
    """A subscriber to everything on a trace endpoint, so the trace is really sent (a PUB
    with no subscriber drops its messages before they cost a send). It reads in libzmq's
    C proxy, off the GIL, into a PUB nobody subscribes to: almost free for this process.

    >>> with TraceDrain("tcp://127.0.0.1:1"):
    ...     pass
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._context = zmq.Context()
        self._control_address = f"inproc://bench-drain-{id(self):x}"
        self._thread: threading.Thread | None = None
        self._control: zmq.Socket | None = None

    def __enter__(self) -> TraceDrain:
        context = self._context
        subscriber = context.socket(zmq.SUB)
        subscriber.setsockopt(zmq.LINGER, 0)
        subscriber.setsockopt(zmq.RCVHWM, 100_000)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscriber.connect(self.endpoint)
        sink = context.socket(zmq.PUB)
        sink.setsockopt(zmq.LINGER, 0)
        sink.bind(f"inproc://bench-sink-{id(self):x}")
        self._control = context.socket(zmq.PAIR)
        self._control.bind(self._control_address)

        def run() -> None:
            control = context.socket(zmq.PAIR)
            control.connect(self._control_address)
            try:
                zmq.proxy_steerable(subscriber, sink, None, control)
            except zmq.ZMQError:
                pass
            finally:
                for socket in (control, subscriber, sink):
                    socket.close(linger=0)

        self._thread = threading.Thread(target=run, name="bench-trace-drain", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._control is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._control.send(b"TERMINATE")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._control is not None:
            self._control.close(linger=0)
            self._control = None
        self._context.term()
