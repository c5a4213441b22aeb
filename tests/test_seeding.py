"""Game seeding (issue 13, item 12; DESIGN §3 "Randomness"): a task's default game, the one
a NetSecGame client gets through the gateway, starts from the server's ``--seed`` itself,
as NetSecGame seeds its ``random`` at start (reference netsecgame.md §6.12); named games and
the broker's later unnamed games start from seeds derived from (seed, name).

Upstream's consequence, which these tests check with the global defender on (its rolls are
the draws that matter, reference §8): in a one-attacker game with no topology change, the
first episode after the join is the episode a reset seeded with the server seed replays.
``tox -e differential`` checks the same against NetSecGame 0.2.0 itself."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents import BaseAgent, generate_valid_actions
from bin.stack import Stack
from broker.placement import Placement, TaskInfo, WorldRecord
from protocol import PROTOCOL_FRAME, AgentRole, Command, pack, seq_bytes
from world import load_task
from world.game_host import GameHost, default_game_name, game_seed

ROOT = Path(__file__).resolve().parents[1]
SERVER_SEED = 42
CHOOSER_SEED = 5  # picks actions whose first episode ends by a detection (asserted)


def defended_task(directory: Path) -> Path:
    """scenario1_small, one attacker, the global defender on, 40 steps."""
    document = yaml.safe_load((ROOT / "world" / "tasks" / "scenario1_small_attacker.yaml").read_text())
    document["env"]["use_global_defender"] = True
    document["coordinator"]["agents"]["Attacker"]["max_steps"] = 40
    document["arena"] = {"name": "watched"}
    path = directory / "watched.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def play_episode(step: Any, observation: Any) -> list[tuple[str, Any, float, bool, Any]]:
    """Seeded random valid actions until the episode ends: (action, state, reward, end,
    end_reason) per step."""
    chooser = random.Random(CHOOSER_SEED)
    record = []
    for _ in range(100):
        action = chooser.choice(sorted(generate_valid_actions(observation.state), key=str))
        observation = step(action)
        assert observation is not None
        record.append((str(action), observation.state, observation.reward, observation.end,
                       observation.info.get("end_reason")))
        if observation.end:
            return record
    raise AssertionError("the episode did not end within 100 steps")


def test_the_default_game_rng_starts_as_random_seed_and_others_are_derived() -> None:
    assert default_game_name("watched") == "watched-1"
    assert game_seed(SERVER_SEED, "watched-1", "watched") == SERVER_SEED
    derived = {game_seed(SERVER_SEED, name, "watched") for name in ("watched-2", "watched-3", "duel", "demo")}
    assert len(derived) == 4 and SERVER_SEED not in derived
    assert game_seed(SERVER_SEED, "duel", "watched") == game_seed(SERVER_SEED, "duel")
    assert game_seed(7, "watched-1", "watched") == 7


def test_the_broker_names_a_tasks_first_unnamed_game_the_default_game() -> None:
    placement = Placement()
    placement.add_world(WorldRecord(b"w1", "w1", 10, {"watched": TaskInfo("watched", {"Attacker": 1},
                                                                          frozenset({"Attacker"}))},
                                    1.0, expiry=99.0, registered_at=0.0))
    first = placement.place_join(b"c1", None, "Attacker", None)
    second = placement.place_join(b"c2", None, "Attacker", None)
    assert first.game == default_game_name("watched") and second.game != first.game


@pytest.mark.parametrize("game", ["watched-1", "watched-2", "duel"])
def test_a_worlds_game_rng_starts_from_its_seed(tmp_path: Path, game: str) -> None:
    task = load_task(defended_task(tmp_path))
    host = GameHost({task.name: task}, "w-test", seed=SERVER_SEED)
    join = pack({"task": task.name, "role": "Attacker", "game": game})
    host.request([PROTOCOL_FRAME, Command.REQUEST.frame, b"agent", Command.JOIN.frame, b"seat-1", seq_bytes(1),
                  join], now=0.0)
    state = host.games[game].session.rng.getstate()
    assert (state == random.Random(SERVER_SEED).getstate()) is (game == "watched-1")
    assert state == random.Random(game_seed(SERVER_SEED, game, task.name)).getstate()


def test_the_default_games_first_episode_is_the_one_a_reset_with_the_server_seed_replays(tmp_path: Path) -> None:
    """Through a real broker and world, as a NetSecGame user compares: join without a game
    name, play the first episode with no reset, then reset with the server seed and play
    the same actions."""
    with Stack(tasks=[str(defended_task(tmp_path))], worlds=1, seed=SERVER_SEED) as stack:
        stack.wait_registered()
        agent = BaseAgent(stack.endpoints["frontend"], AgentRole.Attacker, timeout=30)
        try:
            joined = agent.register()
            assert joined is not None, agent.last_error
            assert agent.game == default_game_name("watched")
            first = play_episode(agent.make_step, joined)
            reset = agent.request_game_reset(seed=SERVER_SEED)
            assert reset is not None and reset.state == joined.state
            replayed = play_episode(agent.make_step, reset)
        finally:
            agent.terminate_connection()
    assert first[-1][4] == "AgentStatus.Fail", "the global defender's roll ended the episode"
    assert first == replayed
