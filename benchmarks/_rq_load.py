"""Deferred requests through real RQ workers, for the `deferred` scenario and the
instruction counts (`benchmarks.server_job_instructions`): the worker processes of
each class on a queue of their own, a request's frame, waiting for its `s`, bursts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks._procs import ROOT, Server, cpu_seconds, stop
from benchmarks._rawws import RawConnection, connect

#: The worker classes compared, by the name the figures use.
WORKERS = {
    "forking": "actors.workers.EnvelopeWorker",
    "simple": "actors.workers.EnvelopeSimpleWorker",
}
#: Each worker class has a queue of its own (the `deferred` bench settings), and a
#: message whose handler enqueues on it (benchmarks._jobs).
QUEUES: dict[str, Callable[[str], str]] = {
    "forking": lambda queue: f"{queue}-forking",
    "simple": lambda queue: queue,
}
MESSAGES = {"forking": "bench.work_forking", "simple": "bench.work"}


@contextlib.contextmanager
def workers(
    env: dict[str, str], kind: str, processes: int, log: Path, url: str
) -> Iterator[list[int]]:
    """`processes` rqworker processes of worker class `kind` on its queue, registered;
    yields their pids."""
    import redis

    queue = QUEUES[kind](env["BENCH_QUEUE"])
    worker_class = WORKERS[kind]
    full_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p
    )
    command = [sys.executable, "-m", "django", "rqworker", queue, "--worker-class", worker_class]
    client = redis.Redis.from_url(url)
    procs: list[subprocess.Popen[bytes]] = []
    with open(log, "ab") as out:
        try:
            for _ in range(processes):
                procs.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
            deadline = time.monotonic() + 60
            while client.scard(f"rq:workers:{queue}") < processes:
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise RuntimeError(f"rqworker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield [p.pid for p in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                stop(proc, 15)
            for key in client.scan_iter(match=f"*{queue}", count=500):
                client.delete(key)
            for key in client.scan_iter(match=f"*{queue}:*", count=500):
                client.delete(key)
            client.close()


def request_frame(n: int, kind: str) -> tuple[str, bytes]:
    i = f"bench-{uuid.uuid4().hex[:10]}"
    return i, RawConnection.prepare(
        orjson.dumps({"t": MESSAGES[kind], "i": i, "p": {"n": n}}).decode()
    )


async def until_done(conn: RawConnection, i: str, n: int) -> tuple[float | None, float]:
    """Read `conn` until the `s` of request `i`: (when `q` came, when `s` came)."""
    queued = None
    while True:
        reply = orjson.loads(await asyncio.wait_for(conn.receive(), 120))
        if reply.get("i") != i:
            continue
        if reply.get("s") == "q":
            queued = time.perf_counter()
        elif reply.get("s") in ("s", "f"):
            if reply["s"] != "s" or reply["p"] != {"n": n + 1}:
                raise RuntimeError(f"bench.work answered {reply!r}")
            return queued, time.perf_counter()


async def one_by_one(server: Server, count: int, kind: str) -> dict[str, Any]:
    """`count` requests on one connection, each sent when the previous one is answered."""
    conn = await connect(server.url("deferred"))
    to_q: list[float] = []
    to_s: list[float] = []
    ids = []
    try:
        for n in range(count + 1):
            i, frame = request_frame(n, kind)
            start = time.perf_counter()
            conn.transport.write(frame)  # type: ignore[union-attr]
            queued, done = await until_done(conn, i, n)
            if n:  # the first one is a warm-up
                to_q.append((queued or done) - start)
                to_s.append(done - start)
                ids.append(i)
    finally:
        await conn.close()
    return {"to_q": sorted(to_q), "to_s": sorted(to_s), "ids": ids}


#: The server counts as idle once its CPU time stays the same for this long (CPU time
#: moves in clock ticks, 10 ms on Linux): its last handshakes are then done.
IDLE_SECONDS = 0.2


async def until_idle(pid: int, quiet: float = IDLE_SECONDS, deadline: float = 10.0) -> None:
    """Wait until process `pid` uses no CPU for `quiet` seconds (at most `deadline` s)."""
    give_up = time.monotonic() + deadline
    last, since = cpu_seconds(pid), time.monotonic()
    while time.monotonic() < give_up:
        await asyncio.sleep(0.02)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


async def run_burst(
    server: Server,
    size: int,
    kind: str,
    before: Callable[[], Any] | None = None,
    after: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """`size` connections, opened first; then each sends one request at the same moment.
    With `before`: once the connections are open and the server is idle again (the
    handshakes' CPU is not the jobs'), `before()` is called just before the requests go
    out, and its result returned as "before"; `after()` once the last `s` has come,
    before the connections close, its result returned as "after"."""
    conns = await asyncio.gather(*(connect(server.url("deferred")) for _ in range(size)))
    snapshot = None
    try:
        if before is not None:
            await until_idle(server.pid)
            snapshot = before()
        frames = [request_frame(n, kind) for n in range(size)]
        waits = []
        started = time.perf_counter()
        for conn, (_, frame) in zip(conns, frames, strict=True):
            conn.transport.write(frame)  # type: ignore[union-attr]
        for n, (conn, (i, _)) in enumerate(zip(conns, frames, strict=True)):
            waits.append(asyncio.ensure_future(until_done(conn, i, n)))
        done = [finished for _, finished in await asyncio.gather(*waits)]
        answered = after() if after is not None else None
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    latencies = sorted(t - started for t in done)
    return {
        "seconds": latencies[-1],
        "latencies": latencies,
        "before": snapshot,
        "after": answered,
    }
