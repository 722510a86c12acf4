"""Scenario `deferred`: request to `s` latency of a deferred handler through a real RQ worker.

A daphne server (envelope consumer with the deferred `bench.work` handler, RQ backend,
channels_redis) and an `rqworker` process (`actors.workers.EnvelopeWorker`) share a
Redis; both write INFO trace events to one `ENVELOPE_TRACE_LOG` file. One connection
sends requests one after the other and times the `q` answer and the `s` answer. The
trace of one request, as `envelope trace` shows it, is kept in the figures. DESIGN.md
sets no target here: the figures are reported. Skipped, with the reason, when Redis or
the RQ backend is not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks._common import Check, ScenarioResult, percentile, progress, run_from_command_line
from benchmarks._procs import ROOT, Server, daphne, stop
from benchmarks._redis import redis_url


def _backend_missing() -> str | None:
    # Looked up, not imported: the worker module needs Django set up with RQ settings.
    for name in ("actors.workers", "django_rq"):
        if importlib.util.find_spec(name) is None:
            return f"the RQ backend is not available ({name} cannot be found)"
    return None


@contextlib.contextmanager
def _worker(env: dict[str, str], queue: str, log: Path, url: str) -> Iterator[None]:
    import redis

    full_env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "benchmarks.settings"}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "rqworker",
                queue,
                "--worker-class",
                "actors.workers.EnvelopeWorker",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(url)
        try:
            deadline = time.monotonic() + 30
            while not client.scard(f"rq:workers:{queue}"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rqworker did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield
        finally:
            stop(proc, 15)
            for key in client.scan_iter(match=f"*{queue}*", count=500):
                client.delete(key)
            client.close()


async def _requests(server: Server, count: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    ws = await connect(server.url("deferred"), compression=None, ping_interval=None)
    to_q: list[float] = []
    to_s: list[float] = []
    ids = []
    try:
        for n in range(count + 1):
            i = f"bench-{uuid.uuid4().hex[:10]}"
            start = time.perf_counter()
            await ws.send(orjson.dumps({"t": "bench.work", "i": i, "p": {"n": n}}).decode())
            while True:
                reply = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                if reply.get("i") != i:
                    continue
                if reply.get("s") == "q":
                    queued = time.perf_counter() - start
                elif reply.get("s") in ("s", "f"):
                    if reply["s"] != "s" or reply["p"] != {"n": n + 1}:
                        raise RuntimeError(f"bench.work answered {reply!r}")
                    break
            if n:  # the first one is a warm-up
                to_q.append(queued)
                to_s.append(time.perf_counter() - start)
                ids.append(i)
    finally:
        await ws.close()
    return {"to_q": sorted(to_q), "to_s": sorted(to_s), "ids": ids}


def _percentiles(sorted_seconds: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(sorted_seconds, q) * 1000, 2) for q in (50, 90, 99)}


def _timeline(trace_log: Path, i: str) -> str:
    from actors.tracing import format_timeline, read_logs, timeline

    with open(trace_log, "rb") as stream:
        logs = read_logs([(str(trace_log), stream)])
    return format_timeline(i, timeline(logs, i))


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("deferred")
    started = time.perf_counter()
    missing = _backend_missing()
    count = 8 if quick else 40
    with redis_url() as url:
        if url is None:
            missing = "no Redis reachable (REDIS_URL, 127.0.0.1:6379) nor redis-server"
        if missing:
            result.skipped = missing
            progress(f"deferred: skipped, {missing}")
            return result
        with tempfile.TemporaryDirectory() as tmp:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            trace_log = Path(tmp) / "trace.jsonl"
            env = {
                "BENCH_RQ_URL": url,
                "BENCH_QUEUE": queue,
                "BENCH_DB": str(Path(tmp) / "db.sqlite3"),
                "ENVELOPE_TRACE_LOG": str(trace_log),
            }
            progress(f"deferred: daphne + rqworker on queue {queue}, {count} requests in turn")
            with (
                _worker(env, queue, Path(tmp) / "worker.log", url),
                daphne(BENCH_LOG="info", **env) as server,
            ):
                samples = asyncio.run(_requests(server, count))
            example = samples["ids"][len(samples["ids"]) // 2]
            result.figures = {
                "requests": count,
                "to_q_ms": _percentiles(samples["to_q"]),
                "to_s_ms": _percentiles(samples["to_s"]),
                "example_trace": _timeline(trace_log, example),
            }
    s50 = result.figures["to_s_ms"]["p50"]
    q50 = result.figures["to_q_ms"]["p50"]
    progress(f"deferred: q after {q50:.2f} ms, s after {s50:.2f} ms (p50)")
    result.checks.append(
        Check(
            "deferred: request to s through RQ, p50 ms",
            s50,
            None,
            False,
            unit=" ms",
            note=f"q after {q50:.2f} ms; s p90 {result.figures['to_s_ms']['p90']:.1f} ms",
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("deferred", __doc__, run, argv)
    out = io.StringIO()
    for key, value in result.figures.items():
        print(f"{key}: {value}" if key != "example_trace" else f"{key}:\n{value}", file=out)
    print(out.getvalue() or result.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
