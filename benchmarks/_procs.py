"""Server processes for the socket scenarios, and what /proc says about them."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from example.demo import SERVERS as SERVERS  # re-exported: tests and benchmarks use it
from example.demo import server_argv

ROOT = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")
_servers: tuple[str, ...] = ()


def use_servers(choice: str) -> None:
    """What the sockets scenario runs under from now on: "daphne", "uvicorn" or "both"."""
    global _servers
    if choice not in (*SERVERS, "both"):
        raise ValueError(f"unknown server {choice!r}; choose from {', '.join(SERVERS)}, both")
    _servers = SERVERS if choice == "both" else (choice,)


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        choices=(*SERVERS, "both"),
        default=None,
        help="the server(s) the sockets scenario runs under (default: both when uvicorn "
        "is installed, else daphne)",
    )


def chosen_servers() -> tuple[str, ...]:
    """The servers chosen with `use_servers`; by default both when uvicorn is installed."""
    if _servers:
        return _servers
    return SERVERS if importlib.util.find_spec("uvicorn") is not None else ("daphne",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of a process so far (Linux /proc); with `children`, plus
    that of its children it has waited for (an RQ worker's work horses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate `proc` if it still runs; kill it when it has not ended after `grace` s."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Server:
    pid: int
    port: int

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{path.strip('/')}/"


def _wait_for_port(
    port: int, proc: subprocess.Popen[bytes], errors: IO[bytes], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            errors.seek(0)
            err = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the benchmark server exited with {proc.returncode}:\n{err}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the benchmark server does not listen on {port} after {timeout} s")


def server_command(server: str, asgi_app: str, port: int, *, quiet: bool = False) -> list[str]:
    """The command line that serves `asgi_app` on 127.0.0.1:`port` under `server`: the
    demo's (what the deployment guide says), with uvloop and httptools named for uvicorn
    so that what runs does not depend on what `auto` finds. `quiet` turns off uvicorn's
    line per connection."""
    command = server_argv(server, "127.0.0.1", port, asgi_app)
    if server == "uvicorn":
        options = ["--loop", "uvloop", "--http", "httptools"]
        if quiet:
            options += ["--log-level", "warning", "--no-access-log"]
        command[-1:-1] = options
    return command


@contextlib.contextmanager
def bench_server(server: str = "daphne", **env: str) -> Iterator[Server]:
    """`benchmarks.server:application` under `server` on a free loopback port, stopped after."""
    port = free_port()
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT), full_env.get("PYTHONPATH", "")] if p
    )
    full_env["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    full_env.update(env)
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            server_command(server, "benchmarks.server:application", port, quiet=True),
            cwd=ROOT,
            env=full_env,
            stdout=devnull,
            stderr=errors,
        )
        try:
            _wait_for_port(port, proc, errors)
            yield Server(proc.pid, port)
        finally:
            stop(proc)


def daphne(**env: str) -> contextlib.AbstractContextManager[Server]:
    """`benchmarks.server:application` under daphne (see `bench_server`)."""
    return bench_server("daphne", **env)
