"""Watching a server process from a test: its RSS over time, its log events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._procs import rss_kib
from tests.processes import Server


@contextmanager
def peak_rss(pid: int, every: float = 0.01) -> Iterator[Callable[[], int]]:
    """Sample the RSS of `pid` in a thread; yields a function giving the peak so far (KiB)."""
    peak = [rss_kib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every):
            peak[0] = max(peak[0], rss_kib(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join()


def events(server: Server, name: str) -> list[dict[str, Any]]:
    """The server's JSON log events called `name`."""
    found = []
    for line in server.output().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it is truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s: {what}")
        time.sleep(0.02)
