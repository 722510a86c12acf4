"""`HoldTimer`: the clock of the `r`s a worker holds back (see `JobReplies`).

Each job of a non-forking worker asks for a call `ENVELOPE_RUNNING_HOLD` seconds after
it starts, needed only if the job is still running then; a burst asks hundreds of times
a second. Waking another thread for each (an event loop's timer, a `threading.Timer`)
cost more than the held `r` saves: a thread switch, and the GIL handed over twice, per
job. Here one daemon thread per process keeps the calls in a queue (in the order they
are due: they all wait as long) and sleeps until the first is due. It is woken only
when the queue was empty; calls no longer needed are dropped when it wakes. In a burst
it wakes about once per hold, not once per job.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

from actors.tracing import logger

_Call = tuple[float, Callable[[], None], Callable[[], bool]]


class HoldTimer:
    """`call_later(delay, fn, needed)`: `fn()` in `delay` seconds, from the timer's
    thread, unless `needed()` says no by then. Calls must come with the same delay (they
    are kept in the order they were made). Started again after a fork."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: deque[_Call] = deque()
        self._idle = True
        self._pid = 0

    def call_later(self, delay: float, fn: Callable[[], None], needed: Callable[[], bool]) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first call, or the thread stayed in the parent
                self._pid, self._idle = os.getpid(), True
                self._due.clear()
                threading.Thread(target=self._run, name="envelope-hold", daemon=True).start()
            self._due.append((time.monotonic() + delay, fn, needed))
            if self._idle:
                self._idle = False
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                fn = self._next()
            try:
                fn()
            except Exception:  # the clock goes on for the other jobs
                logger.exception("job.hold_failed")

    def _next(self) -> Callable[[], None]:
        """The next call that is due and still needed (under the lock)."""
        while True:
            while self._due and not self._due[0][2]():
                self._due.popleft()
            if not self._due:
                self._idle = True
                self._cond.wait()
                continue
            deadline, fn, _ = self._due[0]
            wait = deadline - time.monotonic()
            if wait <= 0:
                self._due.popleft()
                return fn
            self._cond.wait(wait)


_timer = HoldTimer()


def hold_timer() -> HoldTimer:
    """The process's `HoldTimer`."""
    return _timer
