"""Run a module as ``python -m`` does, with some top-level modules made unimportable: a
machine without an optional extra, without uninstalling anything.

    python tests/blocked_imports.py numpy,gymnasium -m bin bench --cases env-inprocess
    python tests/blocked_imports.py gymnasium -c "from agents import ArenaEnv"

A finder first on ``sys.meta_path`` raises ModuleNotFoundError (with ``name`` set, as a
missing package does) for the named modules and their submodules. Child processes the
command starts are not affected.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class BlockingFinder(MetaPathFinder):
    """Refuses ``names`` and their submodules."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def command(blocked: Sequence[str], *arguments: str) -> list[str]:
    """The argv that runs ``arguments`` (``-m MODULE ...`` or ``-c CODE``) with ``blocked`` blocked."""
    return [sys.executable, str(Path(__file__).resolve()), ",".join(blocked), *arguments]


def main(argv: list[str]) -> None:
    names, flag, target, *rest = argv
    sys.path[0] = str(ROOT)  # as `python -m` run in the repository
    sys.meta_path.insert(0, BlockingFinder([name for name in names.split(",") if name]))
    if flag == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
        return
    if flag != "-m":
        raise SystemExit(f"usage: {Path(__file__).name} NAMES (-m MODULE | -c CODE) [ARGS...]")
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
