"""The example project as a real server: a fresh sqlite database, daphne or uvicorn, optionally
a worker."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks._procs import stop
from example.demo import commands
from tests.processes import ROOT, asgi_server, python_env


@dataclass
class ExampleServer:
    host: str
    port: int
    db: Path
    trace_log: Path

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}/ws/"


def example_env(tmp: Path, **extra: str) -> dict[str, str]:
    # REDIS_URL="" keeps the example in-process (memory layer, thread backend) even
    # when the machine running the tests has REDIS_URL set.
    env = {
        "EXAMPLE_DB": str(tmp / "db.sqlite3"),
        "ENVELOPE_TRACE_LOG": str(tmp / "trace.log"),
        "REDIS_URL": "",
    }
    env.update(extra)
    return env


#: What names a run's own files, not what `--setup-only` writes: left out of the key of
#: the databases kept by `set_up_database`.
PER_RUN = frozenset({"EXAMPLE_DB", "ENVELOPE_TRACE_LOG"})
_databases: dict[tuple[tuple[str, str], ...], Path] = {}
_databases_dir = tempfile.TemporaryDirectory(prefix="envelope-example-db-")


def set_up_database(env: dict[str, str]) -> None:
    """The example's database at `EXAMPLE_DB`, migrated and with the demo user.

    `example.demo --setup-only` (a Django start-up and every migration, a second or two)
    runs once per test process and environment (less the run's own paths), into a file
    kept here, which each run then gets a copy of: the same SQLite file as its own
    `--setup-only` would have written (tests/example/test_demo.py runs it for real).
    """
    key = tuple(sorted((k, v) for k, v in env.items() if k not in PER_RUN))
    template = _databases.get(key)
    if template is None:
        template = Path(_databases_dir.name) / f"{len(_databases)}.sqlite3"
        subprocess.run(
            [sys.executable, "-m", "example.demo", "--setup-only"],
            cwd=ROOT,
            env=python_env(**{**env, "EXAMPLE_DB": str(template)}),
            check=True,
        )
        _databases[key] = template
    shutil.copyfile(template, env["EXAMPLE_DB"])


@contextlib.contextmanager
def example_server(
    tmp: Path, port: int | None = None, *, server: str = "daphne", **extra: str
) -> Iterator[ExampleServer]:
    """Migrate a fresh database, create the demo user, run the example under `server`."""
    env = example_env(tmp, **extra)
    set_up_database(env)
    app, settings = "example.asgi:application", "example.settings"
    with asgi_server(app, settings, port=port, server=server, **env) as p:
        yield ExampleServer("127.0.0.1", p, tmp / "db.sqlite3", tmp / "trace.log")


@contextlib.contextmanager
def example_worker(tmp: Path, timeout: float = 30.0, **extra: str) -> Iterator[None]:
    """The demo's RQ worker, for an `example_server(tmp, **extra)` whose `extra` has a
    `REDIS_URL`; running once it is registered in Redis, stopped after."""
    env = example_env(tmp, **extra)
    argv = dict(commands("127.0.0.1", 0, env["REDIS_URL"]))["worker"]
    with (tmp / "worker.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=python_env(DJANGO_SETTINGS_MODULE="example.settings", **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        deadline = time.monotonic() + timeout
        while not client.scard("rq:workers:default"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rqworker not ready:\n{(tmp / 'worker.log').read_text()}")
            time.sleep(0.05)
        yield
    finally:
        stop(proc)
        client.close()


def login_cookie(server: ExampleServer, username: str = "demo", password: str = "demo") -> str:
    """Log in through the page's own endpoints (CSRF and all); the `Cookie` header to use."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{server.http}/") as response:
        response.read()
    csrf = next(c.value or "" for c in jar if c.name == "csrftoken")
    body = f"username={username}&password={password}".encode()
    request = urllib.request.Request(
        f"{server.http}/api/login",
        data=body,
        headers={
            "X-CSRFToken": csrf,
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"{server.http}/",
        },
    )
    with opener.open(request) as response:
        answer: dict[str, Any] = json.loads(response.read())
    assert answer == {"user": username}
    return "; ".join(f"{c.name}={c.value or ''}" for c in jar)
