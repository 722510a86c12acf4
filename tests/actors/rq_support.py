"""Support for the RQ tests: a unique run (queue, channel prefix, database), rqworker
processes, and a websocket client speaking envelopes to a real daphne server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import redis
from websockets.asyncio.client import ClientConnection, connect

from envelope import Envelope, dumps, parse_reply
from tests.processes import ROOT, python_env, run_python

SETTINGS = "tests.deferred_settings"
#: The arguments that make a worker command run the non-forking worker.
SIMPLE = ("--worker-class", "actors.workers.EnvelopeSimpleWorker")
ASGI_APP = "tests.actors.deferred_asgi:application"


def run_env(redis_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """Environment of one run's processes: its own queue, layer prefix and database."""
    run = uuid.uuid4().hex[:10]
    env = {
        "ENVELOPE_TEST_DB": str(tmp / "db.sqlite3"),
        "ENVELOPE_TEST_REDIS": redis_url,
        "ENVELOPE_TEST_QUEUE": f"dtest-{run}",
        "ENVELOPE_TEST_RUN": run,
        "ENVELOPE_TEST_TMP": str(tmp),
        "ENVELOPE_TEST_INTERVAL": "1",
    }
    env.update(extra)
    return env


def django_command(env: dict[str, str], *args: str) -> str:
    return run_python(SETTINGS, env, "-m", "django", *args)


#: What differs from one run to the next and not in the schema `migrate` makes: left out of
#: the key of the migrated databases kept by `migrate`.
PER_RUN = frozenset(
    {
        "ENVELOPE_TEST_DB",
        "ENVELOPE_TEST_REDIS",
        "ENVELOPE_TEST_RQ",
        "ENVELOPE_TEST_QUEUE",
        "ENVELOPE_TEST_RUN",
        "ENVELOPE_TEST_TMP",
        "ENVELOPE_TEST_TRIPS",  # a file only the TripsWorker writes
    }
)
_migrated: dict[tuple[tuple[str, str], ...], Path] = {}
_migrated_dir = tempfile.TemporaryDirectory(prefix="envelope-migrated-")


def migrate(env: dict[str, str]) -> None:
    """Give the run's database (`ENVELOPE_TEST_DB`, a fresh file) the migrated schema.

    `migrate` is a Django start-up in a process of its own, a second or more per run; it
    runs once per test process and per environment (less what only names the run), into
    a file kept here, which each run then gets a copy of: the same SQLite file as its own
    `migrate` would have written, users, sessions and content types none.
    """
    key = tuple(sorted((k, v) for k, v in env.items() if k not in PER_RUN))
    template = _migrated.get(key)
    if template is None:
        template = Path(_migrated_dir.name) / f"{len(_migrated)}.sqlite3"
        django_command({**env, "ENVELOPE_TEST_DB": str(template)}, "migrate", "--noinput")
        _migrated[key] = template
    shutil.copyfile(template, env["ENVELOPE_TEST_DB"])


def python_snippet(env: dict[str, str], code: str) -> str:
    """Run `code` in a fresh process with the run's settings, after django.setup()."""
    return run_python(SETTINGS, env, "-c", f"import django\ndjango.setup()\n{code}")


#: How long `Worker.stop` lets a worker end by itself after the first SIGTERM (an idle
#: one exits at once) before it asks for the cold shutdown.
WARM_SECONDS = 1.0


class Worker:
    """A `manage.py rqworker <queue> [args]` process (or another `command`, e.g.
    `rqworker-pool`) in its own process group, logging to a file."""

    def __init__(
        self, env: dict[str, str], log: Path, *args: str, command: str = "rqworker"
    ) -> None:
        self.env = env
        self.log = log
        self._out = open(log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", command, env["ENVELOPE_TEST_QUEUE"], *args],
            cwd=ROOT,
            env=python_env(DJANGO_SETTINGS_MODULE=SETTINGS, **env),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, redis_client: Any, timeout: float = 30.0, workers: int = 1) -> None:
        """Until `workers` workers of the queue are registered in Redis."""
        key = f"rq:workers:{self.env['ENVELOPE_TEST_QUEUE']}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rqworker exited:\n{self.log.read_text()[-3000:]}")
            if redis_client.scard(key) >= workers:
                return
            time.sleep(0.05)
        raise TimeoutError(f"rqworker not ready:\n{self.log.read_text()[-3000:]}")

    def kill_group(self) -> None:
        """SIGKILL the worker and its work horse at once (a machine or container dying)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop the worker at the end of a test, without waiting for the job it runs.

        A first SIGTERM asks RQ for a warm shutdown: an idle worker exits at once, a busy
        one would wait for its job (a test's 30 s sleep) while the test's teardown waited
        10 s before killing it. What it runs then is of no interest to the test any more:
        a second SIGTERM is RQ's cold shutdown, which kills the work horse (in a process
        group of its own, so the first signal did not reach it) and exits.
        """
        if self.proc.poll() is None:
            for grace in (WARM_SECONDS, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(grace)
                    break
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def cleanup_redis(redis_client: Any, env: dict[str, str]) -> None:
    """Delete what the run left in the shared Redis (its queue's and layer's keys)."""
    for pattern in (f"*{env['ENVELOPE_TEST_QUEUE']}*", f"asgi-{env['ENVELOPE_TEST_RUN']}*"):
        keys = list(redis_client.scan_iter(match=pattern, count=500))
        if keys:
            redis_client.delete(*keys)


@contextlib.contextmanager
def deferred_run(redis_url: str, tmp: Path, **extra: str) -> Iterator[dict[str, str]]:
    """A run of its own (`run_env`) with its database migrated; its Redis keys go after."""
    run = run_env(redis_url, tmp, **extra)
    migrate(run)
    client = redis.Redis.from_url(redis_url)
    try:
        yield run
    finally:
        cleanup_redis(client, run)
        client.close()


@contextlib.contextmanager
def running_worker(
    env: dict[str, str], log: Path, *args: str, command: str = "rqworker", workers: int = 1
) -> Iterator[Worker]:
    """A `Worker` with `workers` workers registered on the run's queue; stopped after."""
    proc = Worker(env, log, *args, command=command)
    client = redis.Redis.from_url(env.get("ENVELOPE_TEST_RQ") or env["ENVELOPE_TEST_REDIS"])
    try:
        proc.wait_ready(client, workers=workers)
        yield proc
    finally:
        proc.stop()
        client.close()


def rows(db: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=20)
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


class WsClient:
    """A real websocket client: send envelopes, collect every frame, wait for replies."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[Envelope] = []

    async def send(self, t: str, p: Any = None, i: str | None = None) -> str:
        i = i or uuid.uuid4().hex[:12]
        frame: dict[str, Any] = {"t": t, "i": i}
        if p is not None:
            frame["p"] = p
        await self.ws.send(dumps(frame))
        return i

    async def receive(self, timeout: float = 10.0) -> Envelope:
        with anyio.fail_after(timeout):
            raw = await self.ws.recv()
        env = parse_reply(raw)
        self.seen.append(env)
        return env

    async def until_terminal(self, i: str, timeout: float = 15.0) -> Envelope:
        for env in self.seen:
            if env.i == i and env.s is not None and env.s.terminal:
                return env
        with anyio.fail_after(timeout):
            while True:
                env = await self.receive(timeout)
                if env.i == i and env.s is not None and env.s.terminal:
                    return env

    async def request(
        self, t: str, p: Any = None, i: str | None = None, timeout: float = 15.0
    ) -> Envelope:
        return await self.until_terminal(await self.send(t, p, i), timeout)

    def states(self, i: str) -> list[str]:
        return [env.s.value for env in self.seen if env.i == i and env.s is not None]


@contextlib.asynccontextmanager
async def ws_client(port: int, path: str = "/ws/", headers: dict[str, str] | None = None) -> Any:
    async with connect(
        f"ws://127.0.0.1:{port}{path}", open_timeout=10, additional_headers=headers
    ) as ws:
        yield WsClient(ws)


async def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll `predicate()` (sync, run in a thread) until it is truthy; its value."""
    for _ in range(int(timeout / interval) + 1):
        value = await anyio.to_thread.run_sync(predicate)
        if value:
            return value
        await anyio.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout} s")


__all__ = [
    "ASGI_APP",
    "SETTINGS",
    "SIMPLE",
    "Worker",
    "WsClient",
    "cleanup_redis",
    "deferred_run",
    "django_command",
    "python_snippet",
    "rows",
    "run_env",
    "running_worker",
    "wait_until",
    "ws_client",
]
