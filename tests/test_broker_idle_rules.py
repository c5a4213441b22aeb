"""An idle broker sleeps in its poll (DESIGN: the broker is one loop over its sockets): it
waits for input on the frontend and the backend, never spinning on sockets that are
always writable. A real Broker in a thread on loopback `*` ports; the process's CPU time
over an idle spell is the measure (another process's load does not count in it)."""

from __future__ import annotations

import time
from typing import Any

import zmq

from protocol import PROTOCOL_FRAME, Command, seq_bytes

from .fake_broker import context
from .test_broker_faults import running

__all__ = ["context", "running"]  # the fixtures, imported for pytest


def test_an_idle_broker_sleeps(running: Any, context: zmq.Context) -> None:
    broker = running(heartbeat=5.0, recovery=0.0)
    agent, world = context.socket(zmq.DEALER), context.socket(zmq.DEALER)
    agent.setsockopt(zmq.LINGER, 0)
    world.setsockopt(zmq.LINGER, 0)
    agent.connect(broker.endpoints["frontend"])
    world.connect(broker.endpoints["backend"])  # a peer on each side: both sockets writable
    try:
        agent.send_multipart([PROTOCOL_FRAME, Command.STEP.frame, b"nobody", seq_bytes(1), b"\x90"])
        assert agent.poll(10_000), "the broker did not answer"  # serving, with a client connected
        agent.recv_multipart()
        world.send_multipart([PROTOCOL_FRAME, Command.HEARTBEAT.frame])  # a stranger: told to register
        assert world.poll(10_000), "the broker did not answer the world"
        world.recv_multipart()
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(0.6)
        used = time.process_time() - cpu
        assert used < 0.3 * (time.monotonic() - wall), f"the idle broker used {used:.2f} s of CPU in 0.6 s"
    finally:
        agent.close(linger=0)
        world.close(linger=0)
