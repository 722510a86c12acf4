"""`python -m example.demo` (what `make demo` and `envelope demo` run), as a real process."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.example.server import ExampleServer, example_env, login_cookie
from tests.processes import ROOT, free_port, private_redis, python_env

pytestmark = pytest.mark.slow


def children_of(pid: int) -> set[int]:
    """Pids whose parent is `pid` (read from /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.add(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def demo(tmp: Path, *args: str, **env: str) -> Iterator[tuple[subprocess.Popen[str], queue.Queue]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "example.demo", *args],
        cwd=ROOT,
        env=python_env(**example_env(tmp, **env)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(5)
        assert proc.stdout is not None
        proc.stdout.close()


def wait_for_line(lines: queue.Queue, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed; output was:\n{''.join(seen)}")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_serves_the_console_and_stops_every_child(
    tmp_path: Path, stop: int, server_name: str
) -> None:
    port = free_port()
    with demo(tmp_path, "--port", str(port), "--server", server_name) as (proc, lines):
        banner = wait_for_line(lines, "Envelope Router demo:")
        assert f"http://127.0.0.1:{port}/" in banner
        assert f"ws://127.0.0.1:{port}/ws/" in banner
        assert banner.rstrip().endswith(f"on {server_name}")
        wait_for_line(lines, "log in as demo / demo")
        children = children_of(proc.pid)
        assert len(children) == 1  # the server; deferred work runs in its threads
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            assert "Envelope Router console" in response.read().decode()
        with connect(f"ws://127.0.0.1:{port}/ws/") as ws:
            ws.send(json.dumps({"t": "ping", "i": "demo-1"}))
            assert json.loads(ws.recv(timeout=5))["p"] == {"pong": True}
        proc.send_signal(stop)
        assert proc.wait(30) == 0
        wait_for_line(lines, "demo: stopping")
    for pid in children:
        assert not alive(pid), f"child {pid} outlived the demo"
    # The demo user exists, with the documented password.
    assert (tmp_path / "db.sqlite3").exists()


def test_a_child_that_dies_stops_the_demo_with_its_status(tmp_path: Path) -> None:
    port = free_port()
    with demo(tmp_path, "--port", str(port)) as (proc, lines):
        wait_for_line(lines, "Envelope Router demo:")
        (server,) = children_of(proc.pid)
        os.kill(server, signal.SIGKILL)
        assert proc.wait(30) == 1
        wait_for_line(lines, f"server exited with status {-signal.SIGKILL}; stopping")


def test_demo_on_a_busy_port_says_which_port_to_pick(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with demo(tmp_path, "--port", str(port)) as (proc, lines):
            assert proc.wait(30) == 2
            line = wait_for_line(lines, "is in use")
            assert f"PORT={port + 1}" in line


def test_demo_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    with demo(tmp_path, "--port", "70000") as (proc, lines):
        assert proc.wait(30) == 2
        wait_for_line(lines, "a port is 1-65535")


def test_setup_only_creates_the_demo_user_and_is_repeatable(tmp_path: Path) -> None:
    for _ in range(2):
        with demo(tmp_path, "--setup-only") as (proc, _lines):
            assert proc.wait(60) == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute("SELECT username, password FROM auth_user").fetchall()
    assert [name for name, _ in rows] == ["demo"]
    assert rows[0][1].startswith("pbkdf2_sha256$")


def test_demo_with_redis_runs_an_rq_worker_beside_the_server(tmp_path: Path) -> None:
    # A Redis of its own, whatever the run uses: the demo's queue is RQ's "default" and
    # its layer has no prefix, so a shared Redis could hand its jobs to another worker.
    with private_redis() as url:
        run_demo_with_rq(tmp_path, url)


def run_demo_with_rq(tmp_path: Path, url: str) -> None:
    port = free_port()
    with demo(tmp_path, "--port", str(port), REDIS_URL=url) as (proc, lines):
        banner = wait_for_line(lines, "deferred handlers run in")
        assert f"RQ worker on {url}" in banner
        children = children_of(proc.pid)
        assert len(children) == 2  # daphne and the RQ worker
        server = ExampleServer("127.0.0.1", port, tmp_path / "db.sqlite3", tmp_path / "trace.log")
        cookie = login_cookie(server)
        with connect(server.ws, additional_headers={"Cookie": cookie}) as ws:
            ws.send(json.dumps({"t": "report.build", "i": "rq-1", "p": {"rows": 1200}}))
            states: list[str] = []
            while not states or states[-1] not in ("s", "f"):
                frame = json.loads(ws.recv(timeout=60))
                if frame.get("i") == "rq-1":
                    states.append(frame["s"])
                    last = frame
        assert states[0] == "q" and "r" in states and states[-1] == "s", (states, last)
        assert last["p"]["rows"] == 1200
        # DEBUG is on in the demo: the console's waterfall has the server's and the
        # worker's events (`envelope.handled` is written up to 0.1 s after the reply).
        for _ in range(100):
            with urllib.request.urlopen(f"{server.http}/envelope/trace/rq-1") as response:
                trace = json.loads(response.read())
            if trace["complete"]:
                break
            time.sleep(0.05)
        assert [s["state"] for s in trace["states"]] == ["q", "r", "s"]
        assert {p["kind"] for p in trace["processes"]} == {"server", "worker"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    for pid in children:
        assert not alive(pid), f"child {pid} outlived the demo"
