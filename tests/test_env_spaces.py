"""Masks and flat observations of the RL environments, in process: masks are exactly
NetSecGame's valid actions in the table, cached per state; every observation slot means
what its layout says; the layout is the same in every episode and after remapping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.action_masks import ActionMasks
from agents.flat_observation import BLOCKS, FlatObservation, ObservationLayout
from agents.gym_env import ArenaEnv
from agents.pettingzoo_env import ArenaParallelEnv
from agents.utils import generate_valid_actions
from protocol import AgentRole, AgentStatus

from .env_samples import DEFAULT, TINY, WINNING_LABELS, dynamic_tiny, naive_vector, random_valid


def test_masks_are_exactly_the_valid_actions_the_table_has() -> None:
    env = ArenaParallelEnv(DEFAULT)   # scenario1_small: an attacker and a defender (BlockIP in its table)
    rng = np.random.default_rng(5)
    checked = {"attacker_0": 0, "defender_0": 0}
    try:
        for seed in range(3):
            _, infos = env.reset(seed=seed)
            while env.agents:
                for agent in env.agents:
                    seat = env.seat(agent)
                    valid = generate_valid_actions(seat.state, include_blocks=seat.role is AgentRole.Defender)
                    expected = seat.table.indices(valid, seat.catalog)
                    assert np.flatnonzero(infos[agent]["action_mask"]).tolist() == expected
                    assert infos[agent]["action_mask"].tolist() == env.action_mask(agent).tolist()
                    checked[agent] += 1
                actions = {agent: random_valid(rng, infos[agent]["action_mask"]) for agent in env.agents}
                _, _, _, _, infos = env.step(actions)
    finally:
        env.close()
    assert min(checked.values()) > 50
    assert env.seat("defender_0").table.counts().get("BlockIP", 0) > 0


def test_masks_are_cached_per_state_read_only_and_handed_out_as_copies() -> None:
    env = ArenaEnv(TINY)
    try:
        _, info = env.reset(seed=0)
        masks = ActionMasks(env.table, AgentRole.Attacker)
        first = masks.mask(info["state"], env.catalog)
        assert masks.mask(info["state"], env.catalog) is first
        assert not first.flags.writeable
        handed = env.action_masks()
        handed[:] = True  # the user's copy: the env's masks do not change
        assert env.action_masks().sum() == first.sum() < len(first)
        assert masks.valid_indices(info["state"], env.catalog).tolist() == np.flatnonzero(first).tolist()
    finally:
        env.close()


def test_every_slot_means_what_the_layout_says() -> None:
    env = ArenaEnv(TINY)
    rng = np.random.default_rng(11)
    layout = env.observation_layout
    try:
        for seed in range(4):
            observation, info = env.reset(seed=seed)
            labels = list(WINNING_LABELS) if seed == 0 else []
            done = False
            while not done:
                fraction = info["steps"] / 30
                assert observation.dtype == np.float32 and observation.shape == (len(layout),)
                assert np.array_equal(observation, naive_vector(layout, info["state"], env.catalog, fraction))
                action = env.table.index_of_label(labels.pop(0)) if labels else random_valid(rng, info["action_mask"])
                observation, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            if seed == 0:   # the winning attack: the secret is known at the C&C
                assert info["end_reason"] == str(AgentStatus.Success)
                assert observation[layout.index("exfiltrated", "User1/DataFromServer1", "at_public_host")] == 1.0
                assert observation[layout.index("hosts", "smb_server", "controlled")] == 1.0
    finally:
        env.close()


def test_layout_is_machine_readable_and_covers_every_block() -> None:
    env = ArenaEnv(TINY)
    try:
        layout = env.observation_layout
        described = json.loads(layout.to_json())
        assert described["size"] == len(layout) == env.observation_space.shape[0]
        assert [row["index"] for row in described["slots"]] == list(range(len(layout)))
        assert list(described["blocks"]) == list(BLOCKS)
        hosts = env.catalog.hosts
        assert [s.entity for s in layout.slots if s.block == "hosts" and s.field == "known"] == list(hosts)
        assert layout.blocks["progress"] == (len(layout) - 1, len(layout))
        with pytest.raises(KeyError):
            layout.index("hosts", "no_such_host", "known")
    finally:
        env.close()


def test_layout_and_labels_are_the_same_across_episodes_and_after_remapping(tmp_path: Path) -> None:
    env = ArenaEnv(dynamic_tiny(tmp_path), randomize_topology=True)
    try:
        layouts, labels, starts, addresses = [], [], [], []
        for seed in (1, 2, 3):
            observation, info = env.reset(seed=seed)
            layouts.append(env.observation_layout.to_json())
            labels.append(env.action_labels)
            starts.append((observation, info["action_mask"]))
            addresses.append(env.catalog.host_ips)
            for label in WINNING_LABELS:   # the same indices win at whatever addresses
                observation, _, terminated, _, info = env.step(env.table.index_of_label(label))
                assert not info["masked"]
            assert terminated and info["end_reason"] == str(AgentStatus.Success)
        assert len(set(addresses)) == 3, "the reset with randomize_topology did not remap the addresses"
        assert len(set(layouts)) == 1 and len(set(labels)) == 1
        for observation, mask in starts[1:]:
            assert np.array_equal(observation, starts[0][0]) and np.array_equal(mask, starts[0][1])
        assert ObservationLayout.of(env.catalog) is env.observation_layout
    finally:
        env.close()


def test_encoder_caches_the_state_part_and_fills_in_the_step_fraction() -> None:
    env = ArenaEnv(TINY)
    try:
        _, info = env.reset(seed=0)
        encoder = FlatObservation(env.observation_layout)
        cached = encoder.state_vector(info["state"], env.catalog)
        assert encoder.state_vector(info["state"], env.catalog) is cached and not cached.flags.writeable
        vector = encoder.encode(info["state"], env.catalog, steps=15, max_steps=30)
        assert vector[-1] == 0.5 and cached[-1] == 0.0
        assert np.array_equal(vector[:-1], cached[:-1])
        assert encoder.encode(info["state"], env.catalog, steps=3, max_steps=None)[-1] == 0.0
    finally:
        env.close()


def test_dict_observations_hold_the_same_blocks() -> None:
    flat, structured = ArenaEnv(TINY), ArenaEnv(TINY, flatten_obs=False)
    try:
        vector, _ = flat.reset(seed=0)
        blocks, info = structured.reset(seed=0)
        assert structured.observation_space.contains(blocks)
        for block, (start, stop) in flat.observation_layout.blocks.items():
            if stop > start:
                assert np.array_equal(blocks[block], vector[start:stop])
        assert info["state"] == flat.state
    finally:
        flat.close()
        structured.close()
