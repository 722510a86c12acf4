"""One event loop per worker process for the channel-layer calls of its jobs.

A job answers its connection through the channel layer, an async API, from sync code.
`async_to_sync` outside an event loop makes a new loop (and a thread) for every call,
and channels_redis keeps its Redis connections per loop: every `r` and `s` of a job
would open and close a TCP connection. A worker that runs many jobs in one process
(`EnvelopeSimpleWorker`) installs a `WorkerLoop` instead: one loop in a daemon thread,
made again after a fork, whose Redis connections live as long as the process.

Calls run one after the other, in the order they were submitted, so a job's replies
and pushes keep their order even when the job does not wait for one to be sent
(`submit`) before making the next.

Without an installed loop, `run_sync` is `async_to_sync` (views, the forking worker's
work horses, which live for one job).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync

T = TypeVar("T")


class WorkerLoop:
    """An event loop running in a daemon thread of this process, running the calls
    submitted to it one at a time, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._last: concurrent.futures.Future[Any] | None = None

    def _running(self) -> asyncio.AbstractEventLoop:
        # After a fork the thread is gone (only the forking thread survives): start again.
        if self._loop is None or self._pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="envelope-worker-loop", daemon=True
            )
            thread.start()
            self._loop, self._pid, self._last = loop, os.getpid(), None
        return self._loop

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> concurrent.futures.Future[T]:
        """Run `await fn(*args)` after every call submitted before it; do not wait."""
        with self._lock:
            loop = self._running()
            before = self._last
            future = asyncio.run_coroutine_threadsafe(_after(before, fn, *args), loop)
            self._last = future
        return future

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`submit`, then wait for the result (or the exception)."""
        return self.submit(fn, *args).result()


async def _after(
    before: concurrent.futures.Future[Any] | None, fn: Callable[..., Awaitable[T]], *args: Any
) -> T:
    if before is not None and not before.done():
        # Its outcome belongs to whoever submitted it; here it only has to be over.
        await asyncio.wait([asyncio.wrap_future(before)])
    return await fn(*args)


_installed: WorkerLoop | None = None


def install_worker_loop() -> WorkerLoop:
    """From now on, `run_sync` in this process runs coroutines on one long-lived loop."""
    global _installed
    if _installed is None:
        _installed = WorkerLoop()
    return _installed


def worker_loop() -> WorkerLoop | None:
    """The loop `install_worker_loop` installed in this process, if any."""
    return _installed


def on_worker_loop() -> bool:
    """True when running on the loop `install_worker_loop` installed (it lives as long as
    the process, so what it opens may stay open)."""
    loop = _installed._loop if _installed is not None else None
    try:
        return loop is not None and asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def run_sync(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`await fn(*args)` from sync code: on the worker loop when one is installed (after
    what was submitted to it before), else through `async_to_sync`."""
    loop = _installed
    if loop is not None:
        return loop.run(fn, *args)
    return async_to_sync(fn)(*args)
