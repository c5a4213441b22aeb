"""The ``arena`` command.

    arena demo              attacker against defender on the built-in task, with a summary
    arena demo --json       the summary as one JSON object

Installed as the ``arena`` console script; also ``python -m bin``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import click

from agents.local import EpisodeResult, LocalMatch
from agents.policies import POLICIES
from protocol import AgentRole, ArenaError
from world import TaskConfigError, load_task

__all__ = ["main"]


def summarize(results: list[EpisodeResult], seconds: float) -> dict[str, Any]:
    """The figures ``arena demo`` and ``arena play`` report."""
    attacker_returns = [p.episode_return for r in results for p in r.of_role(AgentRole.Attacker)]
    defender_returns = [p.episode_return for r in results for p in r.of_role(AgentRole.Defender)]
    steps = sum(r.steps for r in results)
    return {
        "episodes": len(results),
        "wins": sum(r.attacker_won for r in results),
        "detections": sum(r.attacker_detected for r in results),
        "timeouts": sum(r.attacker_timed_out for r in results),
        "mean_return": sum(attacker_returns) / len(attacker_returns) if attacker_returns else 0.0,
        "mean_defender_return": sum(defender_returns) / len(defender_returns) if defender_returns else 0.0,
        "steps": steps,
        "steps_per_second": steps / seconds if seconds > 0 else 0.0,
    }


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """netsec-arena: the NetSecGame network-security game, served at scale."""
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--task", "task_location", default=None, metavar="FILE_OR_URL",
              help="Task file or http(s) URL (default: the built-in attacker-vs-defender task).")
@click.option("--episodes", default=20, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--attacker", default="kill-chain", show_default=True, type=click.Choice(sorted(POLICIES)))
@click.option("--defender", default="defender", show_default=True, type=click.Choice(sorted(POLICIES)))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def demo(task_location: str | None, episodes: int, attacker: str, defender: str, seed: int,
         as_json: bool) -> None:
    """Attacker against defender in one game, live figures, then a summary.

    The game runs in this process (the broker and world workers arrive in the next
    release); the figures are those `arena play` reports.
    """
    try:
        task = load_task(task_location)
    except TaskConfigError as error:
        raise click.ClickException(str(error)) from None
    players = [("attacker", AgentRole.Attacker, POLICIES[attacker])]
    if task.seats.get(AgentRole.Defender):
        players.append(("defender", AgentRole.Defender, POLICIES[defender]))
    match = LocalMatch(task, players, seed=seed)
    results: list[EpisodeResult] = []
    started = time.perf_counter()

    def figures(_: Any) -> str:
        if not results:
            return ""
        wins = sum(r.attacker_won for r in results)
        return f"attacker wins {wins}/{len(results)}, steps {sum(r.steps for r in results)}"

    try:
        with click.progressbar(length=episodes, label=f"{task.name}: attacker vs defender",
                               item_show_func=figures, file=click.get_text_stream("stderr")) as bar:
            for result in match.play(episodes):
                results.append(result)
                bar.update(1, result)
    except ArenaError as error:
        raise click.ClickException(str(error)) from None
    summary = summarize(results, time.perf_counter() - started)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"task {task.name} ({task.scenario.name}), {summary['episodes']} episodes, seed {seed}")
    click.echo(f"  attacker wins {summary['wins']}, detections {summary['detections']}, "
               f"timeouts {summary['timeouts']}")
    click.echo(f"  mean return: attacker {summary['mean_return']:.1f}, "
               f"defender {summary['mean_defender_return']:.1f}")
    click.echo(f"  {summary['steps']} steps, {summary['steps_per_second']:,.0f} steps/s")


if __name__ == "__main__":
    main()
