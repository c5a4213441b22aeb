"""Children of a stack die with it (DESIGN §7: children never outlive their supervisor).

:class:`bin.stack.Stack` starts each child (``python -m bin broker|world|gateway``) with
:data:`PARENT_VARIABLE` set to its own pid and, while it starts the stack, with
:data:`SCRATCH_VARIABLE` naming its temporary ``arena-*`` folder. ``python -m bin`` calls
:func:`hold_on_to_parent` before anything else, which in such a child:

* asks Linux for SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``; elsewhere a
  thread watches ``getppid()``), so a SIGKILLed or crashed supervisor leaves no broker or
  world holding its ports. The signal fires when the *thread* that started the child ends:
  a stack starts its children from the thread that lives as long as it does;
* then checks that the parent is still the one named: if it died before ``prctl`` ran,
  no signal will come, so the child leaves at once;
* turns SIGTERM into an orderly exit until the command installs its own handler, and
  removes the scratch folder on exit if the parent is gone (a SIGKILLed parent cannot).
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["PARENT_VARIABLE", "SCRATCH_VARIABLE", "child_environment", "hold_on_to_parent"]

PARENT_VARIABLE = "ARENA_PARENT_PID"
SCRATCH_VARIABLE = "ARENA_SCRATCH"
_PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent where ``prctl`` is missing (not Linux).
_WATCH_INTERVAL = 0.5


def child_environment(scratch: str | None = None) -> dict[str, str]:
    """The environment of a child that must die with this process."""
    environment = dict(os.environ)
    environment[PARENT_VARIABLE] = str(os.getpid())
    environment.pop(SCRATCH_VARIABLE, None)
    if scratch is not None:
        environment[SCRATCH_VARIABLE] = scratch
    return environment


def hold_on_to_parent() -> None:
    """In a stack's child: exit when the parent is gone (see the module's docstring);
    elsewhere nothing. The variables are removed so that the child's own children do
    not inherit them."""
    value = os.environ.pop(PARENT_VARIABLE, None)
    scratch = os.environ.pop(SCRATCH_VARIABLE, None)
    if not value or not value.isdigit():
        return
    parent = int(value)
    if scratch:
        atexit.register(_remove_if_orphaned, parent, scratch)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if not _ask_for_death_signal(signal.SIGTERM):
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before prctl ran: no signal will come
        sys.exit(f"the parent process {parent} is gone")


def _ask_for_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_INTERVAL)  # no event tells a process its parent died, short of prctl
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    sys.exit(128 + signum)  # an orderly exit: atexit handlers (the scratch folder) run


def _remove_if_orphaned(parent: int, scratch: str) -> None:
    if os.getppid() != parent:
        shutil.rmtree(scratch, ignore_errors=True)
