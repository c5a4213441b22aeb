"""A real broker and a real world worker in threads of the test process, for tests whose
subject is a third component (the gateway): the same objects `arena broker` and `arena
world` run, on loopback `*` ports, without the seconds a process stack costs to start,
and importable by mutation runs (a mutated gateway is exercised in this process).

Example::

    with ThreadedStack([SOLO_TASK_PATH]) as stack:
        Gateway(stack.endpoints["frontend"], ("127.0.0.1", 0), task="scenario1_small_attacker")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

import zmq

from broker import Broker
from world import load_task
from world.worker import WorldWorker

#: seconds: the bound of every wait (the world's READY, each thread's end)
WAIT = 10.0


class ThreadedStack:
    """A Broker (with its trace proxy) and one WorldWorker serving ``tasks``, each in a thread."""

    def __init__(self, tasks: Sequence[str], *, heartbeat: float = 0.2, name: str = "w-threaded") -> None:
        self.context = zmq.Context()
        self.broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                             heartbeat=heartbeat, context=self.context)
        self.endpoints = self.broker.bind()
        self.world = WorldWorker(self.endpoints["backend"], [load_task(task) for task in tasks], name=name,
                                 heartbeat=heartbeat, trace_input=self.endpoints["trace_input"],
                                 context=self.context)
        self._threads = [threading.Thread(target=self.broker.run, name="broker", daemon=True),
                         threading.Thread(target=self.world.run, name="world", daemon=True)]

    def start(self) -> ThreadedStack:
        """Start both threads; return once the broker has the world's READY."""
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + WAIT
        while not self.broker.placement.worlds:
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("the world did not register with the broker")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the world, then the broker; close every socket. Raises if a thread hangs."""
        self.world.stop()
        self._threads[1].join(WAIT)
        self.broker.stop()
        self._threads[0].join(WAIT)
        self.broker.close()
        self.context.destroy(linger=0)
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        assert not alive, f"did not stop: {alive}"

    def __enter__(self) -> ThreadedStack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
