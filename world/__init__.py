"""The game world: scenarios, task configuration, world semantics, global defender,
and game sessions (the coordinator's job, free of I/O).

>>> from world import GameSession, load_task
>>> session = GameSession(load_task(), seed=42, name="demo")
>>> session.task.name
'default'
"""

from __future__ import annotations

from .agents_config import AGENT_TYPES, TEAMS, AgentSpec, MapEntry, scenario_catalog
from .game_world import LOG_FILE, GameWorld, goal_reached
from .global_defender import DETECTION_RULES, is_detected
from .remap import remap_addresses, rewrite_addresses
from .rewards import COMPONENT_TYPES, RewardComponent, RewardFunction
from .scenario import SCENARIO_FILES, Scenario, ScenarioError, load_scenario
from .scripted import ScriptedAgent, scripted_seat_id
from .seats import HistoryRecord
from .session import MALFORMED_MESSAGE, GameSession, Reply, sanitize_agent_name
from .task import (
    DEFAULT_TASK,
    TASKS_DIR,
    RewardConfig,
    RoleConfig,
    TaskConfig,
    TaskConfigError,
    View,
    load_task,
    parse_task,
    shipped_tasks,
)
from .task_keys import NETSECGAME_IGNORED_KEYS
from .trajectory import Trajectory, append_line, trajectory_file_name

__all__ = [
    "AGENT_TYPES",
    "COMPONENT_TYPES",
    "DEFAULT_TASK",
    "DETECTION_RULES",
    "LOG_FILE",
    "MALFORMED_MESSAGE",
    "NETSECGAME_IGNORED_KEYS",
    "SCENARIO_FILES",
    "TASKS_DIR",
    "TEAMS",
    "AgentSpec",
    "GameSession",
    "GameWorld",
    "HistoryRecord",
    "MapEntry",
    "Reply",
    "RewardComponent",
    "RewardConfig",
    "RewardFunction",
    "RoleConfig",
    "Scenario",
    "ScenarioError",
    "ScriptedAgent",
    "TaskConfig",
    "TaskConfigError",
    "Trajectory",
    "View",
    "append_line",
    "goal_reached",
    "is_detected",
    "load_scenario",
    "load_task",
    "parse_task",
    "remap_addresses",
    "rewrite_addresses",
    "sanitize_agent_name",
    "scenario_catalog",
    "scripted_seat_id",
    "shipped_tasks",
    "trajectory_file_name",
]
