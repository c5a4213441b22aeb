"""The optional extras (pyproject.toml) and the one line that names the missing one.

Code that needs an extra imports it inside :func:`needs`: an ImportError of one of the
extras' modules becomes :class:`MissingExtraError`, whose message says what needs which
extra and how to install it, instead of a bare ``No module named 'gymnasium'``. A script
passes ``script=__name__ == "__main__"`` and then ends with that one line and exit
status 1, without a traceback; commands catch :class:`MissingExtraError` and say the same.

>>> print(MissingExtraError("ArenaEnv", "rl", "gymnasium"))  # doctest: +NORMALIZE_WHITESPACE
ArenaEnv needs the rl extra (gymnasium is not installed): pip install 'netsec-arena[rl]'
(in a clone: pip install -e '.[rl]')
>>> require("arena report", "plot", "json")    # importable: nothing happens
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence

__all__ = ["EXTRA_OF", "MissingExtraError", "install_hint", "needs", "require"]

#: The top-level modules the extras bring, and their extra.
EXTRA_OF = {"gymnasium": "rl", "pettingzoo": "rl", "numpy": "rl", "rich": "monitor", "matplotlib": "plot",
            "torch": "sb3", "stable_baselines3": "sb3", "sb3_contrib": "sb3"}


def _names(extras: str | Sequence[str]) -> list[str]:
    return [extras] if isinstance(extras, str) else list(extras)


def install_hint(extras: str | Sequence[str]) -> str:
    """How to install ``extras``, from the package index and in a clone."""
    joined = ",".join(_names(extras))
    return f"pip install 'netsec-arena[{joined}]' (in a clone: pip install -e '.[{joined}]')"


class MissingExtraError(ModuleNotFoundError):
    """``what`` needs ``extras`` and ``module`` (one of theirs) is not installed."""

    def __init__(self, what: str, extras: str | Sequence[str], module: str) -> None:
        names = _names(extras)
        plural = "s" if len(names) > 1 else ""
        super().__init__(f"{what} needs the {' and '.join(names)} extra{plural} ({module} is not installed): "
                         f"{install_hint(names)}", name=module)
        self.what, self.extras, self.module = what, names, module


def _optional(error: ImportError) -> str | None:
    """The extras' module an ImportError is about, or None (then it is a real bug)."""
    top = (error.name or "").partition(".")[0]
    return top if top in EXTRA_OF else None


@contextlib.contextmanager
def needs(what: str, extras: str | Sequence[str], *, script: bool = False) -> Iterator[None]:
    """Imports in the block that fail for want of ``extras`` raise :class:`MissingExtraError`;
    with ``script`` the process ends with its message (status 1) instead."""
    try:
        yield
    except ImportError as error:
        if isinstance(error, MissingExtraError):
            missing = error
        elif (module := _optional(error)) is not None:
            missing = MissingExtraError(what, extras, module)
        else:
            raise
        if script:
            sys.exit(f"Error: {missing}")
        if missing is error:
            raise
        raise missing from None  # the message names the module: the chain would only repeat it


def require(what: str, extras: str | Sequence[str], *modules: str) -> None:
    """Import ``modules`` now (a command checks before it starts work); :class:`MissingExtraError`
    names ``extras`` if one of them is missing."""
    with needs(what, extras):
        for module in modules:
            importlib.import_module(module)
