"""How the ``arena`` commands stop on signals: one place for every command.

* Servers (``arena broker``, ``world``, ``gateway``) call their ``stop()`` on SIGINT,
  SIGTERM or SIGHUP (a closed terminal) and leave their loop in order:
  :func:`stop_on_signals`.
* Commands that play (``arena play``, ``arena demo``) are interrupted where they wait:
  SIGINT or SIGTERM raises :class:`Interrupted` in the main thread, so the ``finally``
  clauses that leave the game run; :func:`ignore_interrupts` then keeps a second signal
  from cutting that cleanup short. Their exit status is 128 + the signal's number, as a
  shell reports a process the signal ended (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["INTERRUPTS", "STOP_SIGNALS", "Interrupted", "ignore_interrupts", "interrupts", "stop_on_signals"]

#: Signals that ask a server, or ``arena up``, to stop (and exit 0).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Signals that interrupt a command that plays.
INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt, so no library's
    ``except Exception`` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def _handling(signals: tuple[signal.Signals, ...], handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP call ``stop()`` instead of killing the process mid-step."""
    return _handling(STOP_SIGNALS, lambda *_: stop())


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def interrupts() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` where the main thread is."""
    return _handling(INTERRUPTS, _raise)


def ignore_interrupts() -> None:
    """From now on SIGINT and SIGTERM are ignored: the cleanup that follows runs to its end
    (the ``interrupts()`` block restores the handlers it found when it is left)."""
    for sig in INTERRUPTS:
        signal.signal(sig, signal.SIG_IGN)
