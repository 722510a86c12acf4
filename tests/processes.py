"""Real processes for tests: a Redis server when none is reachable, ASGI servers (daphne or
uvicorn, by name), workers.

A test that should pass under both servers takes the `server_name` fixture (tests/conftest.py,
parametrised over `SERVERS`) and hands it on:

    def test_something(server_name: str) -> None:
        with server_process(APP, SETTINGS, server=server_name) as server:
            ...
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks._procs import SERVERS as SERVERS  # re-exported: tests parametrise on it
from benchmarks._procs import server_command, stop
from benchmarks._redis import private_redis, redis_answers

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 20.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """The Redis of a test run: a private `redis-server` on a free port, started here and
    stopped at the end, so that no test can touch anybody's data.

    A shared Redis is used only when `REDIS_URL` names one (the tests then only add and
    delete keys under names of their own, and never flush a database);
    `ENVELOPE_TEST_PRIVATE_REDIS=1` insists on the private one even then.
    """
    url = os.environ.get("REDIS_URL")
    if url and not os.environ.get("ENVELOPE_TEST_PRIVATE_REDIS"):
        if not redis_answers(url):
            raise RuntimeError(f"REDIS_URL={url} does not answer PING")
        yield url
        return
    with private_redis() as url:
        yield url


#: A Redis URL for tests that only build configuration: nothing listens on port 9
#: (discard), so a test that connected by mistake would fail, not touch a real Redis.
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"


def open_files(pid: int, path: str) -> int:
    """How many file descriptors process `pid` has open on the file at `path` (Linux)."""
    target = os.path.realpath(path)
    fds = f"/proc/{pid}/fd"
    found = 0
    for fd in os.listdir(fds):
        try:
            found += os.readlink(os.path.join(fds, fd)) == target
        except OSError:
            continue  # closed meanwhile
    return found


def python_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_python(settings_module: str, env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run `python *args` from the repository with `settings_module`; its stdout, or a
    `RuntimeError` with the end of its stderr when it fails."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE=settings_module, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"python {' '.join(args[:3])} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path  # the server's stdout and stderr

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def server_process(
    asgi_app: str,
    settings_module: str,
    port: int | None = None,
    *,
    server: str = "daphne",
    **env: str,
) -> Iterator[Server]:
    """Run `asgi_app` under `server` ("daphne" or "uvicorn", see `SERVERS`) on a free
    loopback port. Its output goes to a file (a pipe nobody reads would fill up and stall
    the server)."""
    port = port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / f"{server}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                server_command(server, asgi_app, port),
                cwd=ROOT,
                env=python_env(DJANGO_SETTINGS_MODULE=settings_module, **env),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port, process=proc)
            yield Server(port, proc, log)
        finally:
            stop(proc)


@contextlib.contextmanager
def asgi_server(
    asgi_app: str,
    settings_module: str,
    port: int | None = None,
    *,
    server: str = "daphne",
    **env: str,
) -> Iterator[int]:
    """Run `asgi_app` under `server` on a free loopback port; yields the port."""
    with server_process(asgi_app, settings_module, port, server=server, **env) as running:
        yield running.port


def daphne_process(
    asgi_app: str, settings_module: str, port: int | None = None, **env: str
) -> contextlib.AbstractContextManager[Server]:
    """`server_process` under daphne."""
    return server_process(asgi_app, settings_module, port, server="daphne", **env)


def daphne_server(
    asgi_app: str, settings_module: str, port: int | None = None, **env: str
) -> contextlib.AbstractContextManager[int]:
    """`asgi_server` under daphne."""
    return asgi_server(asgi_app, settings_module, port, server="daphne", **env)
