"""Blocking calls to RQ's Redis off the event loop, in threads that never keep the process
from exiting.

anyio's worker threads are stopped when the task that first started them ends. Under
daphne the reactor stops the event loop before the connections' tasks end, so idle anyio
threads waited for work forever and the interpreter, joining them, never exited: SIGTERM
to a server whose connections had enqueued work on RQ hung. These threads belong to a
`ThreadPoolExecutor`, which Python stops when the interpreter exits. At most
`MAX_THREADS` run at once, which also bounds the Redis connections RQ's client opens.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

MAX_THREADS = 16
_pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="envelope-blocking")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a thread, with this task's context variables (the trace's `i`).

    Cancelling the caller (a deadline) returns at once; a call already running is left
    to finish in its thread."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool, context.run, fn, *args)
