"""The broker: routes agents' requests to world workers and back, places seats in
games, watches worlds' heartbeats, and proxies the trace (PROTOCOL.md); and the
gateway that serves NetSecGame's own TCP + JSON protocol.

>>> from broker import Broker
>>> broker = Broker(frontend="tcp://127.0.0.1:*", backend="tcp://127.0.0.1:*", trace=None, trace_input=None)
>>> list(broker.bind())
['frontend', 'backend']
>>> broker.close()
"""

from __future__ import annotations

from .broker import DEFAULT_ENDPOINTS, Broker
from .gateway import Gateway
from .placement import GameRecord, Placement, PlacementError, SeatRecord, TaskInfo, WorldRecord
from .trace import TraceProxy

__all__ = [
    "DEFAULT_ENDPOINTS",
    "Broker",
    "GameRecord",
    "Gateway",
    "Placement",
    "PlacementError",
    "SeatRecord",
    "TaskInfo",
    "TraceProxy",
    "WorldRecord",
]
