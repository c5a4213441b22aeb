"""PASS and scripted agents through real processes: a broker and a world (`bin.stack.Stack`),
clients over ZeroMQ, the trace. Every wait is bounded."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import BaseAgent, ParallelBaseAgent
from agents.monitor import TraceMonitor
from agents.policies import kill_chain_attacker
from bin.stack import Stack
from protocol import PASS, AgentRole, ErrorCode

from .scripted_samples import breakdown_adds_up

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "world" / "tasks"
TINY, DEFENDED = "two_networks_tiny", "defended_tiny"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(worlds=1, tasks=[str(TASKS / "two_networks_tiny_attacker.yaml"), str(TASKS / "defended_tiny.yaml")],
               heartbeat=0.2) as running:
        running.wait_registered()
        yield running


def test_pass_through_a_broker_counts_to_the_timeout(stack: Stack) -> None:
    with BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, task=TINY, timeout=30) as agent:
        start = agent.register()
        assert start is not None and start.info["max_steps"] == 30
        for _ in range(29):
            observation = agent.make_step(PASS)
            assert observation is not None and (observation.reward, observation.end) == (-1, False)
            assert observation.state == start.state and observation.info == {}
        last = agent.make_step(PASS)
        assert last is not None and last.end and last.reward == -11
        assert last.info == {"end_reason": "AgentStatus.TimeoutReached"}
        after = agent.make_step(PASS)
        assert after is not None and agent.last_error is not None
        assert agent.last_error.code == ErrorCode.EPISODE_ENDED.value
        again = agent.request_game_reset(request_trajectory=True)
        assert again is not None and again.info["last_trajectory"]["trajectory"]["actions"] == []


def test_parallel_envs_pass_together(stack: Stack) -> None:
    with ParallelBaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, 3, task=TINY, timeout=30) as envs:
        starts = envs.register()
        assert all(start is not None for start in starts)
        for _ in range(30):
            results = envs.make_step([PASS, PASS, PASS])
        assert all(r is not None and r.end and r.info["end_reason"] == "AgentStatus.TimeoutReached"
                   for r in results)
        assert envs.all_done


def _scripted_steps(monitor: TraceMonitor, game: str, wanted: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for _, message in monitor.receive(10):
        steps += [e for e in message.get("events", ()) if e.get("kind") == "step" and e.get("scripted")
                  and e["game"] == game]
        if len({e["seat"] for e in steps}) >= wanted:
            break
    return steps


def test_defended_tiny_runs_from_its_yaml_through_processes(stack: Stack) -> None:
    """Acceptance: a client attacker (kill chain) plays defended_tiny; the world's scripted
    defender and benign user act (reply info, trace), every reply's breakdown adds up."""
    rng = random.Random(6)
    seen: set[str] = set()
    finals: list[str] = []
    with TraceMonitor(stack.endpoints["trace"]) as monitor:
        assert monitor.wait_ready() is not None
        with BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, task=DEFENDED, game="duel",
                       timeout=30) as agent:
            observation = agent.register()
            assert observation is not None and observation.info["task"] == DEFENDED
            for episode in range(3):
                if episode:
                    observation = agent.request_game_reset()
                    assert observation is not None
                for _ in range(40):
                    action = kill_chain_attacker(observation, rng)
                    observation = agent.make_step(action)
                    assert observation is not None, agent.last_error
                    assert breakdown_adds_up(observation), observation.info
                    seen.update(entry[0] for entry in observation.info["scripted"])
                    if observation.end:
                        break
                assert observation.end
                finals.append(observation.info["end_reason"])
                assert set(observation.info["reward_breakdown"]) == {"netsecgame", "new-controlled-host",
                                                                     "data-exfiltrated"}
        traced = _scripted_steps(monitor, "duel", 2)
    assert seen == {"blue_defender", "green_user"}
    assert {e["seat"] for e in traced} == {"scripted:blue_defender", "scripted:green_user"}
    assert all(reason in ("AgentStatus.Success", "AgentStatus.TimeoutReached") for reason in finals)


def test_arena_play_plays_defended_tiny(stack: Stack) -> None:
    done = subprocess.run([sys.executable, "-m", "bin", "play", "--broker", stack.endpoints["frontend"],
                           "--task", DEFENDED, "--agent", "kill-chain", "--episodes", "2", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 2
