"""The RL environments against a running stack (a broker and two world processes,
``bin.stack.Stack``): the same checks as in process — Gymnasium's env checker, PettingZoo's
parallel API test, masked no-ops, seeded resets, a held reply in a named game, remapped
addresses — and the vector env's batched send/recv with autoreset across worlds.
Every wait is bounded by the envs' ``timeout``; the stack is stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from agents.gym_env import ArenaEnv
from agents.pettingzoo_env import ArenaParallelEnv
from agents.status import query_status
from agents.vector_env import ArenaVectorEnv
from bin.stack import Stack
from protocol import PASS, AgentStatus, ArenaError

from .env_samples import DEFAULT, DEFENDED, TINY, WINNING_LABELS, dynamic_tiny, random_valid, short_defender
from .test_env_gym import checked, play
from .test_env_pettingzoo import api_tested

WAIT = 30.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("tasks")
    tasks = [TINY, DEFAULT, DEFENDED, short_defender(directory), dynamic_tiny(directory)]
    with Stack(tasks=[str(task) for task in tasks], worlds=2, heartbeat=0.2) as stack:
        yield str(stack.endpoints["frontend"])


def test_check_env_passes_through_a_broker(broker: str) -> None:
    env = ArenaEnv("two_networks_tiny", broker=broker, timeout=WAIT)
    try:
        checked(env)
        _, info = env.reset(seed=0)
        masked = int(np.flatnonzero(~info["action_mask"])[0])
        _, reward, _, _, info = env.step(masked)
        assert info["masked"] is True and reward == -1.0 and info["steps"] == 1
        for label in WINNING_LABELS:
            _, reward, terminated, truncated, info = env.step(env.table.index_of_label(label))
        assert terminated and not truncated and info["end_reason"] == str(AgentStatus.Success)
    finally:
        env.close()


def test_seeded_resets_reproduce_through_a_broker(broker: str) -> None:
    local = ArenaEnv(DEFENDED)
    remote = ArenaEnv("defended_tiny", broker=broker, timeout=WAIT)
    try:
        first = play(remote, 3)
        play(remote, 4)
        assert play(remote, 3) == first
        assert play(local, 3) == first   # in process and through a broker: the same game
        _, info = remote.reset(seed=0)
        _, reward, _, _, info = remote.step(random_valid(np.random.default_rng(0), info["action_mask"]))
        assert sum(info["reward_breakdown"].values()) == reward and "scripted" in info
    finally:
        local.close()
        remote.close()


def test_remapped_addresses_keep_the_layout_through_a_broker(broker: str) -> None:
    env = ArenaEnv("tiny_dynamic", broker=broker, timeout=WAIT, randomize_topology=True)
    try:
        seen = set()
        for seed in (5, 6):
            observation, _ = env.reset(seed=seed)
            seen.add((env.catalog.host_ips, observation.tobytes(), env.observation_layout.to_json()))
            for label in WINNING_LABELS:
                _, _, terminated, _, info = env.step(env.table.index_of_label(label))
            assert terminated and info["end_reason"] == str(AgentStatus.Success)
        addresses, observations, layouts = zip(*seen, strict=True)
        assert len(set(addresses)) == 2 and len(set(observations)) == 1 and len(set(layouts)) == 1
    finally:
        env.close()


def test_parallel_api_test_passes_through_a_broker(broker: str) -> None:
    env = ArenaParallelEnv("default", broker=broker, timeout=WAIT)
    try:
        api_tested(env)
    finally:
        env.close()


def test_a_held_reply_in_a_named_game_through_a_broker(broker: str) -> None:
    """As in process: the defender waits from its 3rd step until the attacker's 8th."""
    env = ArenaParallelEnv("short_defender", broker=broker, timeout=WAIT, game="held-reply")
    try:
        _, infos = env.reset(seed=0)
        waiting, steps = [], 0
        while env.agents:
            actions = {agent: int(np.flatnonzero(infos[agent]["action_mask"])[0]) for agent in env.agents}
            _, rewards, terminations, _, infos = env.step(actions)
            steps += 1
            waiting.append(bool(infos["defender_0"].get("waiting")))
        assert steps == 8 and waiting == [False, False, True, True, True, True, True, False]
        assert terminations["defender_0"] and rewards["defender_0"] == 99.0
    finally:
        env.close()


def test_vector_env_steps_and_autoresets_across_worlds(broker: str) -> None:
    envs = ArenaVectorEnv("two_networks_tiny", 6, broker=broker, timeout=WAIT)
    try:
        worlds = set(envs._games.agent.worlds)  # where the broker put them
        assert len(worlds) == 2
        first, infos = envs.reset(seed=0)
        labels = list(WINNING_LABELS)
        for step in range(1, 8):
            win = envs.table.index_of_label(labels.pop(0)) if labels else PASS
            observations, rewards, terminations, _, infos = envs.step([win] + [PASS] * 5)
            if step == 5:
                assert terminations.tolist() == [True] + [False] * 5 and rewards[0] == 99.0
            if step == 6:
                assert infos["reset"][0] and np.array_equal(observations[0], first[0])
        envs.send([PASS, PASS], env_ids=[4, 1])
        _, rewards, _, _, infos = envs.recv()
        assert infos["env_id"].tolist() == [1, 4] and rewards.tolist() == [-1.0, -1.0]
        envs.send([PASS] * 6)
        _, _, _, _, infos = envs.recv(min_envs=2)
        answered = set(infos["env_id"].tolist())
        _, _, _, _, infos = envs.recv()
        assert answered.isdisjoint(infos["env_id"].tolist())
        assert answered | set(infos["env_id"].tolist()) == set(range(6))
    finally:
        envs.close()


def test_an_unknown_task_is_a_clear_error(broker: str) -> None:
    with pytest.raises(ArenaError, match="could not join task no_such_task"):
        ArenaEnv("no_such_task", broker=broker, timeout=WAIT)


def test_a_failed_join_leaves_no_seat_behind(broker: str) -> None:
    """The default task has one attacker seat per game: the second attacker of a named game
    is refused, and the env gives back the seat the first one took."""
    with pytest.raises(ArenaError, match="attacker_1 could not join"):
        ArenaParallelEnv("default", roles={"Attacker": 2}, broker=broker, timeout=WAIT, game="too-many")
    # The world tells the broker about the freed seat (RELEASE) just after its QUIT reply:
    # ask a bounded number of times. A seat left behind would keep the game for its lease.
    for _ in range(100):
        games = {game["game"] for game in query_status(broker, timeout=WAIT)["games"]}
        if "too-many" not in games:
            break
    assert "too-many" not in games
