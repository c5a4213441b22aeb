"""Reading NetSecGame's recorded transcripts and comparing replies with them.

The transcripts (``tests/fixtures/transcripts/*.jsonl``) are NetSecGame 0.2.0's exact
wire captures, carried by the repository so no test reads outside it. List order inside
a state is set iteration order there, so states are compared as sets, and ``to_agent``
and ``configuration_hash`` (per-run values) are ignored (reference netsecgame.md §9).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: NetSecGame 0.2.0's wire captures, copied into the repository.
TRANSCRIPTS = Path(__file__).resolve().parent / "fixtures" / "transcripts"


def load_transcript(name: str) -> list[tuple[str, str]]:
    """(direction, raw text) pairs: "send" from the agent, "recv" from the server."""
    lines = (TRANSCRIPTS / name).read_text().splitlines()
    return [(record["dir"], record["raw"]) for record in map(json.loads, lines) if record]


def _as_set(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def normalize_state(state: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, list):
            result[key] = _as_set(value)
        elif isinstance(value, dict):
            result[key] = {host: _as_set(items) for host, items in value.items()}
        else:
            result[key] = value
    return result


def normalize_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Drop per-run values; turn every state's lists into sets."""
    reply = json.loads(json.dumps(reply))
    reply.pop("to_agent", None)
    observation = reply.get("observation")
    if isinstance(observation, dict) and isinstance(observation.get("state"), dict):
        observation["state"] = normalize_state(observation["state"])
    message = reply.get("message")
    if isinstance(message, dict):
        message.pop("configuration_hash", None)
        trajectory = message.get("last_trajectory")
        if isinstance(trajectory, dict):
            trajectory["trajectory"]["states"] = [normalize_state(s) for s in trajectory["trajectory"]["states"]]
    return reply
