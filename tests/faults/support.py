"""What the fault tests share: a run of daphne + EnvelopeWorker on Redis servers the test
controls, logged-in websocket clients, and polling for a condition with a deadline."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from websockets.asyncio.client import connect

from benchmarks._redis import RedisServer
from tests.actors.rq_support import SETTINGS, Worker, WsClient, migrate, python_snippet
from tests.actors.rq_support import run_env as _run_env
from tests.processes import Server, server_process

FAULT_APP = "tests.faults.fault_asgi:application"


@dataclass
class Run:
    """One test's processes: daphne on `layer` Redis (and `queues` Redis for RQ)."""

    env: dict[str, str]
    server: Server
    worker: Worker | None

    @property
    def port(self) -> int:
        return self.server.port


def run_env(layer: RedisServer, tmp: Path, queues: RedisServer | None = None, **extra: str):  # type: ignore[no-untyped-def]
    env = _run_env(layer.url, tmp, **extra)
    if queues is not None:
        env["ENVELOPE_TEST_RQ"] = queues.url
    return env


@contextlib.contextmanager
def fault_run(
    layer: RedisServer,
    tmp: Path,
    *,
    queues: RedisServer | None = None,
    worker: bool = True,
    server: str = "daphne",
    **extra: str,
) -> Iterator[Run]:
    """Migrate a fresh database, start an EnvelopeWorker (unless `worker=False`) and
    `server` (daphne or uvicorn) serving the fault app, all on the given Redis servers."""
    env = run_env(layer, tmp, queues, **extra)
    migrate(env)
    rq = None
    if worker:
        rq = Worker(env, tmp / "worker.log")
        client = redis.Redis.from_url((queues or layer).url)
        try:
            rq.wait_ready(client)
        finally:
            client.close()
    try:
        with server_process(FAULT_APP, SETTINGS, server=server, **env) as running:
            try:
                yield Run(env, running, rq)
            except BaseException:
                # Shown by pytest with the failure: what the server and the worker said.
                print(f"--- {server} ---\n" + running.output()[-6000:])
                if rq is not None:
                    print("--- worker ---\n" + rq.logged()[-6000:])
                raise
    finally:
        if rq is not None:
            rq.stop()


def session_cookie(env: dict[str, str], username: str) -> str:
    """Create `username` and a logged-in session for it; the `Cookie` header to send."""
    key = python_snippet(
        env,
        "from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY\n"
        "from django.contrib.auth.models import User\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"user = User.objects.create_user({username!r})\n"
        "s = SessionStore()\n"
        "s[SESSION_KEY] = str(user.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = user.get_session_auth_hash()\n"
        "s.create()\n"
        "print(s.session_key)\n",
    ).split()[-1]
    return f"sessionid={key}"


@contextlib.asynccontextmanager
async def client(port: int, cookie: str | None = None) -> Any:
    headers = {"Cookie": cookie} if cookie else None
    async with connect(
        f"ws://127.0.0.1:{port}/ws/", open_timeout=10, additional_headers=headers
    ) as ws:
        yield WsClient(ws)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll `predicate()` until it is truthy (its value), or `TimeoutError` naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'condition'} not met in {timeout} s")
        time.sleep(0.05)
