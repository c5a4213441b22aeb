"""bin.supervisor.SignalNews: ``arena up``'s signal handlers take no lock.

A Python handler runs on the main thread between bytecodes, also inside ``Event.wait`` or
``Event.clear`` while that thread holds the event's lock; a handler that called
``Event.set`` there deadlocked ``arena up`` (it then never stopped on SIGTERM). The test
runs the handler exactly there: with the event's lock held by the calling thread.
"""

from __future__ import annotations

import signal
import threading

from bin.supervisor import SignalNews

BOUND = 5.0


def test_a_handler_inside_the_events_lock_returns_and_the_news_arrives() -> None:
    stopping, wake = threading.Event(), threading.Event()
    news = SignalNews(stopping, wake)

    def signalled_inside_the_lock() -> None:
        with wake._cond:  # where Event.wait/clear hold it (CPython's threading.Event)
            news.handler(signal.SIGCHLD, None)
            news.handler(signal.SIGTERM, None)

    try:
        # In a thread of its own, so that a handler which does take the lock fails the test
        # instead of hanging it (that thread then stays stuck: a daemon).
        main = threading.Thread(target=signalled_inside_the_lock, daemon=True)
        main.start()
        main.join(BOUND)
        assert not main.is_alive(), "the handler waited for a lock its own thread holds"
        assert wake.wait(BOUND)
        assert stopping.wait(BOUND)
    finally:
        news.close()


def test_a_child_exit_wakes_without_asking_to_stop() -> None:
    stopping, wake = threading.Event(), threading.Event()
    news = SignalNews(stopping, wake)
    try:
        news.handler(signal.SIGCHLD, None)
        assert wake.wait(BOUND)
        assert not stopping.is_set()
        wake.clear()
        for _ in range(100_000):  # more news than the pipe holds: none is lost, none blocks
            news.handler(signal.SIGCHLD, None)
        news.handler(signal.SIGHUP, None)
        assert stopping.wait(BOUND) and wake.wait(BOUND)
    finally:
        news.close()
    assert not news._reader.is_alive()
