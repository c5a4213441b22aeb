"""What importing each layer loads (issue 15; DESIGN §1): the game rules and the protocol
need no ZeroMQ, and the scripted policies a world runs need neither ZeroMQ nor the world.
Each check runs in a fresh interpreter, so nothing a test imported before can hide a load."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CLIENT_MODULES = ("agents.client", "agents.connection", "agents.parallel")


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(("statement", "absent"), [
    ("import protocol", ("zmq",)),
    ("import world", ("zmq", *CLIENT_MODULES)),
    ("import agents.policies", ("zmq", "world", *CLIENT_MODULES)),
    ("import agents", ("zmq", "world", *CLIENT_MODULES)),
])
def test_a_layer_loads_only_what_it_needs(statement: str, absent: tuple[str, ...]) -> None:
    loaded = loaded_after(statement)
    assert not [name for name in absent if name in loaded], f"{statement} loaded {sorted(set(absent) & loaded)}"


def test_the_agents_face_still_gives_every_public_name() -> None:
    """``from agents import X`` works for every name of ``agents.__all__`` and the RL names."""
    loaded = loaded_after("import agents\n"
                          "[getattr(agents, name) for name in agents.__all__]\n"
                          "from agents import ArenaEnv, ActionMasks, FlatObservation")
    assert {"agents.client", "agents.parallel", "agents.gym_env", "agents.action_masks"} <= loaded
