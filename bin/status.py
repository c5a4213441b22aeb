"""``arena status``: the broker's STATUS answer (PROTOCOL.md §3.5) as a table per task
(games by state, seats by role, worlds), the worlds, and with ``--games`` one row per
game; ``--json`` prints the answer with the per-task figures added, for scripts.

A game's state comes from its seats: ``playing`` once every seat of its task is taken
(a game starts then), ``waiting`` while some are free (a join is held until they are
taken), ``no world`` while its world is not registered.

>>> answer = {"worlds": [{"world": "w-1", "tasks": ["duel"], "capacity": 10, "games": 2, "seats": 3,
...                       "inflight": 0, "alive_for": 12.0}], "tasks": ["duel"], "seats": 3,
...           "games": [{"game": "a", "task": "duel", "world": "w-1", "seats": {"Attacker": 1, "Defender": 1},
...                      "size": {"Attacker": 1, "Defender": 1}},
...                     {"game": "b", "task": "duel", "world": "w-1", "seats": {"Defender": 1},
...                      "size": {"Attacker": 1, "Defender": 1}}]}
>>> summary = by_task(answer)["duel"]
>>> summary["games_by_state"], summary["seats_by_role"]
({'playing': 1, 'waiting': 1}, {'Attacker': 1, 'Defender': 2})
>>> game_state(answer["games"][1])
'waiting for 1 Attacker'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import click

from agents.status import ask_status
from broker import DEFAULT_ENDPOINTS

from .curve_options import curve_client, curve_client_options

__all__ = ["STATES", "by_task", "game_state", "status", "status_lines"]

#: Game states, in the order the tables show them.
STATES = ("playing", "waiting", "no world")
_ROLES = ("Attacker", "Defender", "Benign")


def game_state(game: dict[str, Any]) -> str:
    """``playing``, ``waiting for N ROLE, ...`` or ``no world`` (the short state: its first word(s))."""
    if game.get("world") is None:
        return "no world"
    size, taken = game.get("size") or {}, game.get("seats") or {}
    free = [(role, size[role] - taken.get(role, 0)) for role in _ordered(size) if size[role] > taken.get(role, 0)]
    if not size:
        return "waiting" if not taken else "playing"  # a broker that does not send sizes: a guess
    if not free:
        return "playing"
    return "waiting for " + ", ".join(f"{count} {role}" for role, count in free)


def _short(state: str) -> str:
    return "waiting" if state.startswith("waiting") else state


def _ordered(roles: Any) -> list[str]:
    return sorted(roles, key=lambda role: (_ROLES.index(role) if role in _ROLES else len(_ROLES), role))


def by_task(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task: its games (by state), its seats (by role) and the worlds serving it."""
    tasks = list(answer.get("tasks", []))
    tasks += sorted({game["task"] for game in answer.get("games", [])} - set(tasks))
    result = {}
    for task in tasks:
        games = [game for game in answer.get("games", []) if game["task"] == task]
        states = Counter(_short(game_state(game)) for game in games)
        seats: Counter[str] = Counter()
        for game in games:
            seats.update(game.get("seats") or {})
        result[task] = {
            "games": len(games),
            "games_by_state": {state: states[state] for state in STATES if states[state]},
            "seats": sum(seats.values()),
            "seats_by_role": {role: seats[role] for role in _ordered(seats) if seats[role]},
            "worlds": [world["world"] for world in answer.get("worlds", []) if task in world.get("tasks", ())],
        }
    return result


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return ["  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                      for i, cell in enumerate(row)).rstrip() for row in [header, *rows]]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def status_lines(address: str, answer: dict[str, Any], *, games: bool = False) -> list[str]:
    """The answer as text: a summary line, the tasks, the worlds and (``games``) the games."""
    worlds, tasks = answer.get("worlds", []), by_task(answer)
    lines = [f"broker {address}: {_plural(len(worlds), 'world')}, {_plural(len(tasks), 'task')}, "
             f"{_plural(len(answer.get('games', [])), 'game')}, {_plural(answer.get('seats', 0), 'seat')}"]
    if not worlds:
        lines.append("no world has registered yet (start one: arena world --backend ADDRESS --task FILE)")
    if tasks:
        roles = _ordered({role for task in tasks.values() for role in task["seats_by_role"]})
        header = ["task", "worlds", "games", *STATES, "seats", *roles]
        rows = [[name, str(len(task["worlds"])), str(task["games"]),
                 *(str(task["games_by_state"].get(state, 0)) for state in STATES), str(task["seats"]),
                 *(str(task["seats_by_role"].get(role, 0)) for role in roles)] for name, task in tasks.items()]
        lines += ["", *_table(header, rows, set(range(1, len(header))))]
    if worlds:
        rows = [[world["world"], ", ".join(world["tasks"]), f"{world['games']}/{world['capacity']}",
                 str(world["seats"]), str(world.get("inflight", 0)), f"{world['alive_for']:.0f} s"]
                for world in worlds]
        lines += ["", *_table(["world", "tasks", "games", "seats", "in flight", "up"], rows, {2, 3, 4, 5})]
    if games:
        listed = answer.get("games", [])
        if listed:
            rows = [[game["game"], game["task"], game.get("world") or "-", game_state(game),
                     ", ".join(f"{role} {game['seats'].get(role, 0)}/{size[role]}"
                               for size in [game.get("size") or game["seats"]] for role in _ordered(size))]
                    for game in sorted(listed, key=lambda g: (g["task"], g["game"]))]
            lines += ["", *_table(["game", "task", "world", "state", "seats (taken/size)"], rows, set())]
        else:
            lines += ["", "no games"]
    return lines


@click.command()
@click.option("--broker", "address", default=DEFAULT_ENDPOINTS["frontend"], show_default=True,
              help="The broker's frontend.")
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait for the answer (after 1 s without one, it says so and why).")
@click.option("--games", "list_games", is_flag=True, help="Also list every game: task, world, state, seats.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the broker's answer as one JSON object, with a per-task summary under 'by_task'.")
@curve_client_options
def status(address: str, timeout: float, list_games: bool, as_json: bool, curve_server: str | None,
           curve_secret: str | None) -> None:
    """Show the broker's tasks (games by state, seats by role, worlds), its worlds and,
    with --games, every game. Exits 1 when no broker answers within --timeout."""
    def waiting(reason: str) -> None:
        click.echo(f"arena status: no answer from {address} yet ({reason}); waiting up to {timeout:g} s", err=True)

    reply = ask_status(address, timeout=timeout, curve=curve_client(curve_server, curve_secret), on_silence=waiting)
    if reply.answer is None:
        raise click.ClickException(f"no answer from a broker at {address} within {timeout:g} s ({reply.reason})")
    if as_json:
        click.echo(json.dumps({**reply.answer, "by_task": by_task(reply.answer)}))
        return
    for line in status_lines(address, reply.answer, games=list_games):
        click.echo(line)
