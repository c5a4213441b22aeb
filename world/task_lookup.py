"""Where a task comes from: the one lookup behind every ``--task`` and every ``task=``.

A task is named by a file path, an ``http(s)://`` URL, or the name of a task shipped in
``world/tasks`` (``default``, ``two_networks_tiny``, ``scenario1_small_attacker``, ...).
:func:`world.task.load_task` resolves it here, and so do ``arena up``, ``arena world``,
``arena demo`` and the RL environments in process, so a name that works in one works in
all. A path that exists wins over a shipped name; anything else that is neither fails
with one line listing the shipped names.

>>> sorted(shipped_tasks())
['default', 'defended_tiny', 'scenario1_small_attacker', 'two_networks_tiny']
>>> locate_task("two_networks_tiny").name
'two_networks_tiny_attacker.yaml'
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from pathlib import Path

import yaml

from .task_reader import TaskConfigError

__all__ = ["TASKS_DIR", "is_url", "locate_task", "shipped_tasks"]

#: The shipped task files.
TASKS_DIR = Path(__file__).with_name("tasks")


def is_url(location: str) -> bool:
    return urllib.parse.urlparse(location).scheme in ("http", "https")


@functools.cache
def _shipped() -> tuple[dict[str, Path], dict[str, Path]]:
    """(served name -> file, file stem -> file) of the shipped tasks. A task is served
    under its ``arena.name``, else its file's stem (the rule of :func:`world.task.load_task`)."""
    names: dict[str, Path] = {}
    stems: dict[str, Path] = {}
    for path in sorted(TASKS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        arena = document.get("arena") if isinstance(document, dict) else None
        name = arena.get("name") if isinstance(arena, dict) else None
        names.setdefault(name if isinstance(name, str) and name else path.stem, path)
        stems[path.stem] = path
    return names, stems


def shipped_tasks() -> dict[str, Path]:
    """The shipped tasks by the name they are served under."""
    return dict(_shipped()[0])


def locate_task(location: str | os.PathLike[str]) -> Path | str:
    """The file (a Path) or URL (a str) ``location`` names: an existing path, an
    ``http(s)://`` URL, or a shipped task's name (or its file's stem)."""
    text = os.fspath(location)
    if isinstance(location, Path) or is_url(text):
        return Path(text) if not is_url(text) else text
    path = Path(text)
    if path.exists():
        return path
    names, stems = _shipped()
    shipped = names.get(text) or stems.get(text)
    if shipped is not None:
        return shipped
    raise TaskConfigError(text, "", "not a task file, an http(s):// URL or a shipped task "
                          f"(shipped: {', '.join(sorted(names))})")
