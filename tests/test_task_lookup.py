"""Issue 13 item 14: one task lookup everywhere (a file, an http(s) URL, or a shipped
task's name), and ArenaVectorEnv takes the task first, as ArenaEnv does."""

from __future__ import annotations

import http.server
import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import pytest

from agents import ArenaEnv, ArenaParallelEnv, ArenaVectorEnv, BaseAgent
from agents.env_backends import task_name
from agents.play import play_episodes
from agents.policies import POLICIES
from agents.status import query_status
from bin.stack import read_endpoints
from protocol import AgentRole
from world import TaskConfigError, load_task, shipped_tasks

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "world" / "tasks"
ARENA = [sys.executable, "-m", "bin"]
SHIPPED = ["default", "defended_tiny", "scenario1_small_attacker", "two_networks_tiny"]
ANY_PORT = "tcp://127.0.0.1:*"


def test_load_task_finds_every_shipped_task_by_name_and_by_file_stem() -> None:
    assert sorted(shipped_tasks()) == SHIPPED
    for name in SHIPPED:
        task = load_task(name)
        assert task.name == name and task.source == str(shipped_tasks()[name])
    assert load_task("two_networks_tiny_attacker").name == "two_networks_tiny"
    assert load_task(None).name == "default"


def test_paths_and_urls_still_load_and_an_existing_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_task(TASKS / "defended_tiny.yaml").name == "defended_tiny"
    assert load_task(str(TASKS / "scenario1_small_attacker.yaml")).name == "scenario1_small_attacker"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_text((TASKS / "scenario1_small_attacker.yaml").read_text())
    assert load_task("default").scenario.name == "scenario1_small", "the file in the working directory"
    assert load_task("default").source == "default"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(TASKS), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/two_networks_tiny_attacker.yaml"
        assert load_task(url).name == "two_networks_tiny"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_an_unknown_name_is_one_line_listing_the_shipped_tasks() -> None:
    with pytest.raises(TaskConfigError) as caught:
        load_task("two_network_tiny")
    assert str(caught.value) == ("two_network_tiny: not a task file, an http(s):// URL or a shipped task "
                                 f"(shipped: {', '.join(SHIPPED)})")


def test_the_envs_use_the_same_lookup() -> None:
    env = ArenaEnv("scenario1_small_attacker")
    try:
        assert env.catalog.hosts and env.role is AgentRole.Attacker
    finally:
        env.close()
    parallel = ArenaParallelEnv("default")
    try:
        assert parallel.possible_agents == ["attacker_0", "defender_0"]
    finally:
        parallel.close()
    made = gym.make("NetSecArena/DefendedTiny-v0")
    try:
        assert made.unwrapped.catalog.hosts[-1] == "outside_node"
    finally:
        made.close()
    for make in (ArenaEnv, ArenaParallelEnv, ArenaVectorEnv):
        with pytest.raises(TaskConfigError, match=r"^nope: .*shipped: default, defended_tiny"):
            make("nope")


def test_vector_env_takes_the_task_first() -> None:
    """The issue's call, which raised TypeError (num_envs came first)."""
    envs = ArenaVectorEnv("two_networks_tiny", num_envs=4)
    try:
        observations, infos = envs.reset(seed=0)
        assert observations.shape[0] == 4 and infos["action_mask"].shape[0] == 4
    finally:
        envs.close()
    envs = ArenaVectorEnv("two_networks_tiny", 2)
    try:
        assert envs.num_envs == 2
    finally:
        envs.close()
    with pytest.raises(TypeError, match=r"takes the task first: ArenaVectorEnv\('two_networks_tiny', num_envs=4\)"):
        ArenaVectorEnv(4, "two_networks_tiny")   # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ArenaVectorEnv\(task, num_envs=4\)"):
        ArenaVectorEnv(4)   # type: ignore[arg-type]


def test_broker_envs_name_a_task_file_by_the_name_it_is_served_under() -> None:
    assert task_name(str(TASKS / "two_networks_tiny_attacker.yaml")) == "two_networks_tiny"
    assert task_name("two_networks_tiny") == "two_networks_tiny", "a name goes to the broker as is"
    assert task_name(None) is None


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_arena_up_serves_shipped_tasks_by_name(tmp_path: Path) -> None:
    """`arena up --task NAME` from a directory with no task files: the parent's check and
    every `arena world --task NAME` child find the shipped tasks; an agent plays on one."""
    endpoints_file = tmp_path / "up.json"
    up = subprocess.Popen([*ARENA, "up", "--worlds", "1", "--task", "two_networks_tiny", "--task",
                           "scenario1_small_attacker", "--endpoints-file", str(endpoints_file),
                           "--frontend", ANY_PORT, "--backend", ANY_PORT, "--trace", ANY_PORT,
                           "--trace-input", ANY_PORT],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        endpoints = read_endpoints(endpoints_file, 60, up)
        deadline = time.monotonic() + 30
        status: dict[str, object] = {}
        while time.monotonic() < deadline and up.poll() is None:
            status = query_status(endpoints["frontend"], timeout=2)
            if status.get("worlds"):
                break
            time.sleep(0.05)   # another process registering: nothing to wait on but a query
        assert status.get("tasks") == ["scenario1_small_attacker", "two_networks_tiny"], status
        agent = BaseAgent(endpoints["frontend"], AgentRole.Attacker, task="two_networks_tiny", timeout=30)
        try:
            [outcome] = list(play_episodes(agent, POLICIES["kill-chain"], 1, random.Random(1)))
            assert 1 <= outcome.steps <= 30
        finally:
            agent.terminate_connection()
    finally:
        stop(up)
    assert up.returncode == 0, up.stderr.read() if up.stderr else ""


def test_arena_world_and_arena_up_refuse_an_unknown_name_in_one_line(tmp_path: Path) -> None:
    for command in (["world", "--backend", "tcp://127.0.0.1:9"], ["up", "--frontend", ANY_PORT]):
        result = subprocess.run([*ARENA, *command, "--task", "nope"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"Error: nope: not a task file, an http(s):// URL or a shipped task (shipped: {', '.join(SHIPPED)})"]


def test_arena_demo_plays_a_shipped_task_by_name(tmp_path: Path) -> None:
    result = subprocess.run([*ARENA, "demo", "--task", "default", "--episodes", "2", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["episodes"] == 2
