"""`arena status` against a real stack: a table per task (games by state, seats by role,
worlds), the worlds, `--games` for one row per game, `--json` for scripts; and
`arena --version`. The commands run as subprocesses; the players are BaseAgents."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import BaseAgent
from agents.status import query_status
from bin.stack import Stack
from protocol import AgentRole

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "world" / "tasks"
SOLO = str(TASKS / "scenario1_small_attacker.yaml")
DUEL = str(TASKS / "default.yaml")  # one attacker and one defender per game
WAIT = 30.0


def arena(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bin", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)  # another process's state: nothing to wait on but a query


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(tasks=[SOLO, DUEL], worlds=2, heartbeat=0.2) as running:
        running.wait_registered()
        yield running


@pytest.fixture
def players(stack: Stack) -> Iterator[dict[str, Any]]:
    """A solo attacker playing (its game is full), and a defender waiting in game "duel"
    for an attacker (its join is held: the game waits)."""
    frontend = stack.endpoints["frontend"]
    solo = BaseAgent(frontend, AgentRole.Attacker, task="scenario1_small_attacker", timeout=WAIT)
    defender = BaseAgent(frontend, AgentRole.Defender, task="default", game="duel", timeout=WAIT)
    joined: list[Any] = []
    holder = threading.Thread(target=lambda: joined.append(defender.register()), daemon=True)
    try:
        assert solo.register() is not None, solo.last_error
        holder.start()

        def duel_waits() -> bool:
            return any(game["game"] == "duel" for game in query_status(frontend).get("games", []))

        wait_until(duel_waits, "the defender's seat in game duel")
        yield {"frontend": frontend, "defender": defender, "joined": joined, "holder": holder}
    finally:
        if holder.is_alive():  # release the held join: an attacker fills the game
            releaser = BaseAgent(frontend, AgentRole.Attacker, task="default", game="duel", timeout=WAIT)
            releaser.register()
            holder.join(WAIT)
            releaser.terminate_connection()
        defender.terminate_connection()
        solo.terminate_connection()


def test_status_shows_a_table_per_task_with_games_by_state_and_seats_by_role(players: dict[str, Any]) -> None:
    done = arena("status", "--broker", players["frontend"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"broker {players['frontend']}: 2 worlds, 2 tasks, 2 games, 2 seats"
    header = lines[2].split()
    assert header == ["task", "worlds", "games", "playing", "waiting", "no", "world", "seats", "Attacker",
                      "Defender"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:5]}
    #                                  worlds games playing waiting no-world seats Attacker Defender
    assert rows["scenario1_small_attacker"] == ["2", "1", "1", "0", "0", "1", "1", "0"]
    assert rows["default"] == ["2", "1", "0", "1", "0", "1", "0", "1"]
    worlds = [line for line in lines if line.startswith("w-")]
    assert len(worlds) == 2 and all("default, scenario1_small_attacker" in line for line in worlds)
    assert "duel" not in done.stdout, "games are listed with --games only"


def test_status_games_lists_each_game_with_its_state(players: dict[str, Any]) -> None:
    done = arena("status", "--broker", players["frontend"], "--games")
    assert done.returncode == 0, done.stderr
    games = {line.split()[0]: line for line in done.stdout.splitlines()[-2:]}
    assert "waiting for 1 Attacker" in games["duel"] and "Attacker 0/1, Defender 1/1" in games["duel"]
    [solo] = [line for name, line in games.items() if name != "duel"]
    assert " playing " in solo and solo.endswith("Attacker 1/1")


def test_status_json_has_the_answer_and_the_per_task_figures(players: dict[str, Any]) -> None:
    done = arena("status", "--broker", players["frontend"], "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert len(answer["worlds"]) == 2 and answer["seats"] == 2
    assert {game["game"]: game["size"] for game in answer["games"]}["duel"] == {"Attacker": 1, "Defender": 1}
    duel = answer["by_task"]["default"]
    assert duel["games_by_state"] == {"waiting": 1} and duel["seats_by_role"] == {"Defender": 1}
    assert sorted(duel["worlds"]) == sorted(world["world"] for world in answer["worlds"])
    assert answer["by_task"]["scenario1_small_attacker"]["games_by_state"] == {"playing": 1}


def test_version_is_the_installed_package_version() -> None:
    done = arena("--version")
    assert done.returncode == 0 and done.stdout == f"arena {importlib.metadata.version('netsec-arena')}\n"
