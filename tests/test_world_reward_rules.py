"""world.rewards, rule by rule: ``attacker-blocked`` also counts a BlockIP in upstream
WhiteBox's ``blocked_ip`` form (PROTOCOL.md action table: BlockIP accepts ``blocked_ip``
for ``blocked_host``), and the end-of-episode parts of a seat that never stepped go
through its reward function from a zero breakdown (world/rewards.py docstring;
reference netsecgame.md §3.4)."""

from __future__ import annotations

from typing import Any

from protocol import IP, Action, ActionType, AgentRole, AgentStatus, GameState
from world.rewards import assign_final_rewards
from world.seats import _Seat
from world.trajectory import Trajectory

from .conftest import CLIENT, CNC, join
from .scripted_samples import DEFAULT, task_of


def _defended(agents: list[dict[str, Any]], **changes: Any) -> Any:
    return task_of(DEFAULT, agents, **{"arena.start": {"Attacker": 1, "Defender": 1}, **changes})


def _proxy(ref: str, team: str, components: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ref": ref, "team": team, "type": "proxy", "reward_function": {"reward_components": components}}


def test_attacker_blocked_counts_a_block_ip_in_the_blocked_ip_form(games: Any) -> None:
    """A BlockIP whose blocked host is given as ``blocked_ip`` (upstream WhiteBox) and that
    takes effect on a host the attacker controls earns attacker-blocked, like blocked_host."""
    components = [{"type": "step"}, {"type": "attacker-blocked", "weight": 2}]
    game = games(_defended([_proxy("b", "BLUE", components)]))
    game.send("red", join("Red"))
    game.call("blue", join("Blue", "Defender"))
    action = Action(ActionType.BlockIP, {"source_host": IP("192.168.2.1"), "target_host": IP(CLIENT),
                                         "blocked_ip": IP(CNC)})  # the attacker controls the C&C
    first = game.call("blue", action).observation
    assert first.info["reward_breakdown"] == {"step": -1, "attacker-blocked": 2}
    again = game.call("blue", action).observation
    assert again.info["reward_breakdown"] == {"step": -1, "attacker-blocked": 0}, "nothing new was blocked"


def test_a_seat_that_never_stepped_gets_its_final_parts_from_a_zero_breakdown() -> None:
    """No step of its own (breakdown None): the final parts go onto a zero breakdown, and
    the reward is their sum."""
    task = task_of(DEFAULT, [_proxy("r", "RED", [{"type": "netsecgame"}, {"type": "step"},
                                                  {"type": "fail", "weight": 0.5}])])
    [spec] = task.proxies(AgentRole.Attacker)
    seat = _Seat("r", "r", AgentRole.Attacker, GameState(), GameState(),
                 Trajectory("r", AgentRole.Attacker, GameState()), 0.0, status=AgentStatus.TimeoutReached,
                 reward_fn=spec.reward)
    assert seat.breakdown is None
    assign_final_rewards([seat], task.rewards, {})
    fail = task.rewards.fail
    assert fail < 0
    assert seat.breakdown == {"netsecgame": fail, "step": 0.0, "fail": 0.5 * fail}
    assert seat.reward == seat.final_part == 1.5 * fail
