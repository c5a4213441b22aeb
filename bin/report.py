"""``arena report``: plots and a page from trajectory and trace JSON-lines files.

Reading is :mod:`bin.report_data`, drawing :mod:`bin.report_plots` (the ``plot`` extra).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .report_data import SourceFile, load_report
from .report_plots import MatplotlibMissingError, draw_report, require_matplotlib

__all__ = ["report"]


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the PNGs, series.json and index.html (created if missing).")
@click.option("--window", default=10, show_default=True, type=click.IntRange(1),
              help="Episodes in the moving averages.")
@click.option("--bins", default=20, show_default=True, type=click.IntRange(1),
              help="Bins of episodes in the action-mix plot.")
@click.option("--by-seat", is_flag=True, help="Trace files: one series per seat instead of per agent name.")
@click.option("--dpi", default=100, show_default=True, type=click.IntRange(20, 600),
              help="Figures are 10 x 5 inches: 1000 x 500 pixels at 100.")
@click.option("--title", default=None, help="Title of the page and the plots.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: agents, files read, files written.")
def report(files: tuple[str, ...], out_dir: str, window: int, bins: int, by_seat: bool, dpi: int,
           title: str | None, as_json: bool) -> None:
    """Plot trajectory JSONL (NetSecGame's shape, env.save_trajectories) and trace JSONL
    (arena monitor --jsonl) files: return, win rate, episode length, action mix and
    detection rate per episode, and a per-agent comparison; PNGs and index.html in --out."""
    try:
        require_matplotlib()
    except MatplotlibMissingError as error:
        raise click.ClickException(str(error)) from None
    with click.progressbar(length=len(files), label="reading", file=sys.stderr,
                           item_show_func=_shown_file, hidden=as_json) as bar:
        data = load_report(files, by_seat=by_seat, on_file=lambda source: bar.update(1, source))
    if not data.episodes:
        records = sum(source.records for source in data.sources)
        raise click.ClickException(f"no finished episode in {len(files)} file(s) ({records} JSON lines read)")
    result = draw_report(data, out_dir, window=window, bins=bins, dpi=dpi, title=title)
    if as_json:
        click.echo(json.dumps({key: result[key] for key in ("agents", "sources", "files")}))
        return
    _print_summary(result)


def _shown_file(source: SourceFile | None) -> str:
    return source.path if source is not None else ""


def _print_summary(result: dict[str, Any]) -> None:
    for agent in result["agents"]:
        detection = agent["detection_rate"]
        detected = f", detected {detection:.1%}" if detection is not None else ""
        click.echo(f"{agent['label']}: {agent['episodes']} episodes, wins {agent['win_rate']:.1%}{detected}, "
                   f"mean return {agent['mean_return']:.1f}, mean length {agent['mean_length']:.1f}")
    for source in result["sources"]:
        lost = [f"{source[key]} {words}" for key, words in (("partial", "cut lines"), ("corrupt", "corrupt lines"),
                                                           ("ignored", "other lines"), ("gaps", "lost trace messages"))
                if source[key]]
        if lost:
            click.echo(f"{source['path']}: skipped {', '.join(lost)}", err=True)
    click.echo(f"wrote {len(result['files'])} files: {', '.join(result['files'])}")
