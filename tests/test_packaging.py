"""The project's packages import from this project (DESIGN §1): ``agents`` is also the
import name of OpenAI's Agents SDK, so a wrong environment could shadow it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["protocol", "world", "agents", "broker", "bin"])
def test_package_imports_from_this_project(package: str) -> None:
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == ROOT / package


def test_public_names_are_exported() -> None:
    import agents
    import protocol
    import world

    for name in ("Action", "ActionType", "GameState", "IP", "Network", "Service", "Data",
                 "Observation", "AgentRole", "AgentStatus", "GameStatus", "ProtocolError"):
        assert name in protocol.__all__ and hasattr(protocol, name)
    for name in ("generate_valid_actions", "state_as_ordered_string", "observation_as_dict",
                 "observation_to_str", "observation_from_str", "TrajectoryRecorder"):
        assert name in agents.__all__ and hasattr(agents, name)
    for name in ("GameSession", "GameWorld", "load_task", "load_scenario"):
        assert name in world.__all__ and hasattr(world, name)


def test_scenario_and_task_files_ship_with_the_package() -> None:
    from world import DEFAULT_TASK, SCENARIO_FILES

    assert DEFAULT_TASK.exists()
    for file_name in set(SCENARIO_FILES.values()):
        assert (ROOT / "world" / "scenarios" / file_name).exists()
