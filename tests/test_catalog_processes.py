"""Catalogs and ``all_actions`` through real broker and world processes: a JOIN that asks
(``catalog: true``, PROTOCOL.md §3.1) gets the game's catalog in its join and reset
replies, a task with ``arena.all_actions`` sends upstream's WhiteBox list (reference
netsecgame.md §7.1), table actions play over the wire, and a JOIN with a malformed
``catalog`` is refused with the field named."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
import zmq

from agents import BaseAgent, ParallelBaseAgent
from bin.stack import Stack
from protocol import PROTOCOL_FRAME, AgentRole, Command, ErrorCode, GameStatus, decode_reply, pack, seq_bytes
from protocol.action_table import ActionTable
from protocol.catalog import Catalog
from world import load_task
from world.catalog import catalog_of
from world.game_world import GameWorld

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "world" / "tasks" / "two_networks_tiny_attacker.yaml"
WAIT = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    document = yaml.safe_load(TINY.read_text())
    document["arena"] = {"name": "tiny_whitebox", "all_actions": True}
    whitebox = tmp_path_factory.mktemp("tasks") / "tiny_whitebox.yaml"
    whitebox.write_text(yaml.safe_dump(document))
    with Stack(tasks=[str(TINY), str(whitebox)], worlds=1, heartbeat=0.2) as running:
        yield running


def frontend(stack: Stack) -> str:
    return str(stack.endpoints["frontend"])


def expected_catalog() -> Catalog:
    return catalog_of(GameWorld(load_task(TINY).scenario, random.Random(0)))


def test_join_and_reset_replies_carry_the_catalog_when_asked(stack: Stack) -> None:
    with BaseAgent(frontend(stack), AgentRole.Attacker, task="two_networks_tiny", catalog=True,
                   timeout=WAIT) as agent:
        joined = agent.register()
        assert joined is not None, agent.last_error
        assert Catalog.from_wire(joined.info["catalog"]) == expected_catalog()
        reset = agent.request_game_reset(seed=3)
        assert reset is not None, agent.last_error
        assert Catalog.from_wire(reset.info["catalog"]) == expected_catalog()
    with BaseAgent(frontend(stack), AgentRole.Attacker, task="two_networks_tiny", timeout=WAIT) as plain:
        joined = plain.register()
        assert joined is not None and "catalog" not in joined.info and "all_actions" not in joined.info


def test_labelled_attack_through_the_broker(stack: Stack) -> None:
    with BaseAgent(frontend(stack), AgentRole.Attacker, task="two_networks_tiny", catalog=True,
                   timeout=WAIT) as agent:
        joined = agent.register()
        assert joined is not None, agent.last_error
        found = Catalog.from_wire(joined.info["catalog"])
        table = ActionTable.for_role(found, AgentRole.Attacker)
        observation: Any = None
        for label in ("ScanNetwork client_1 -> 192.168.1.0/24", "FindServices client_1 -> smb_server",
                      "ExploitService client_1 -> smb_server microsoft-ds", "FindData smb_server -> smb_server",
                      "ExfiltrateData smb_server -> outside_node User1/DataFromServer1"):
            observation = agent.make_step(table.action(table.index_of_label(label), found))
            assert observation is not None, agent.last_error
        assert observation.end and observation.info["end_reason"] == "AgentStatus.Success"


def test_task_with_all_actions_sends_the_whitebox_list(stack: Stack) -> None:
    with BaseAgent(frontend(stack), AgentRole.Attacker, task="tiny_whitebox", timeout=WAIT) as agent:
        joined = agent.register()
        assert joined is not None, agent.last_error
        listed = json.loads(joined.info["all_actions"])
        found = expected_catalog()
        assert listed == json.loads(ActionTable(found).as_all_actions_json(found))
        assert len(listed) == 330


def test_parallel_agent_asks_for_catalogs(stack: Stack) -> None:
    with ParallelBaseAgent(frontend(stack), AgentRole.Attacker, 2, task="two_networks_tiny", catalog=True,
                           timeout=WAIT) as envs:
        joined = envs.register()
        assert all(observation is not None for observation in joined), envs.last_errors
        assert [Catalog.from_wire(o.info["catalog"]) for o in joined] == [expected_catalog()] * 2


@pytest.mark.parametrize("value", [1, "yes", None, [True]])
def test_join_with_a_malformed_catalog_is_refused(stack: Stack, value: Any) -> None:
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(frontend(stack))
    try:
        body = pack({"task": "two_networks_tiny", "role": "Attacker", "game": None, "name": "x", "catalog": value})
        dealer.send_multipart([PROTOCOL_FRAME, Command.JOIN.frame, b"", seq_bytes(1), body])
        assert dealer.poll(int(WAIT * 1000)), "no reply to a malformed JOIN"
        frames = dealer.recv_multipart()
        reply = decode_reply(frames[-1])
        assert reply.status is GameStatus.BAD_REQUEST and reply.code == ErrorCode.MALFORMED.value
        assert "join.catalog" in str(reply.message)
    finally:
        dealer.close()
