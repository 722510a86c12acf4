"""Instructions per deferred job of the server, counted by callgrind: robust to a busy
machine.

    .venv/bin/python -m benchmarks.server_job_instructions [--burst 200] [--rounds 2]

A private Redis; a daphne process of `benchmarks.server` under `valgrind
--tool=callgrind` (INFO trace events to a file, as `envelope bench deferred` runs it)
and one `actors.workers.EnvelopeSimpleWorker` outside callgrind. Each round opens
`--burst` connections; once they are open and the server is idle, its counters are
zeroed (`callgrind_control -z`) and each connection sends one `bench.work` request at
the same moment. The counters are read when the last `s` has come (the jobs: `q`, the
enqueue, `r` and `s`) and again once the closed connections are done with (the closes
too). A first burst warms the server up. A start takes a minute or two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._procs import ROOT, free_port, server_command, stop
from benchmarks._rawws import connect
from benchmarks._redis import private_redis
from benchmarks._rq_load import request_frame, until_done, until_idle, workers


def _counted(pid: int) -> int:
    shown = subprocess.run(
        ["callgrind_control", "-e", "Ir", str(pid)], check=True, capture_output=True, text=True
    ).stdout
    counts = re.findall(r"Th\s+\d+\s+([\d,]+)", shown)
    if not counts:
        raise RuntimeError(f"callgrind_control said:\n{shown}")
    return sum(int(count.replace(",", "")) for count in counts)


def _zero(pid: int) -> None:
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)


async def _round(port: int, pid: int, size: int, measure: bool) -> tuple[int, int]:
    url = f"ws://127.0.0.1:{port}/deferred/"
    conns = []
    for _ in range(0, size, 10):  # a few at a time: callgrind's server is slow
        conns += await asyncio.gather(*(connect(url) for _ in range(min(10, size - len(conns)))))
    to_last_s = 0
    try:
        await until_idle(pid, quiet=1.0, deadline=120)
        if measure:
            _zero(pid)
        frames = [request_frame(n, "simple") for n in range(size)]
        for conn, (_, frame) in zip(conns, frames, strict=True):
            conn.transport.write(frame)  # type: ignore[union-attr]
        await asyncio.gather(
            *(
                until_done(conn, i, n)
                for n, (conn, (i, _)) in enumerate(zip(conns, frames, strict=True))
            )
        )
        if measure:
            to_last_s = _counted(pid)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    await until_idle(pid, quiet=1.0, deadline=120)
    return to_last_s, _counted(pid) if measure else 0


def server_job_instructions(size: int, rounds: int) -> list[tuple[float, float]]:
    """(to the last `s`, with the closes) instructions per job, one pair per round."""
    port = free_port()
    with private_redis() as url, tempfile.TemporaryDirectory() as tmp:
        env = {
            "BENCH_RQ_URL": url,
            "BENCH_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "BENCH_DB": str(Path(tmp) / "db.sqlite3"),
            "ENVELOPE_TRACE_LOG": str(Path(tmp) / "trace.jsonl"),
        }
        full_env = {
            **os.environ,
            **env,
            "PYTHONPATH": str(ROOT),
            "PYTHONHASHSEED": "0",
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "BENCH_LOG": "info",
            "BENCH_SLOW": "1",
        }
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
            # Handshakes under callgrind can take longer than daphne's default 20 s.
            *server_command(
                "daphne",
                "benchmarks.server:application",
                port,
                options=("--websocket_connect_timeout", "600"),
            ),
        ]
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=log)
        try:
            with workers(env, "simple", 1, Path(tmp) / "worker.log", url):
                deadline = time.monotonic() + 900
                while True:
                    try:
                        asyncio.run(_round(port, proc.pid, min(size, 50), False))  # warm-up
                        break
                    except OSError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError(
                                f"daphne did not start:\n{(Path(tmp) / 'server.log').read_text()}"
                            ) from None
                        time.sleep(1)
                figures = []
                try:
                    for _ in range(rounds):
                        to_last_s, closed = asyncio.run(_round(port, proc.pid, size, True))
                        figures.append((to_last_s / size, closed / size))
                except ConnectionError as exc:
                    said = (Path(tmp) / "server.log").read_text()[-3000:]
                    raise RuntimeError(f"the server refused a connection:\n{said}") from exc
                return figures
        finally:
            stop(proc, grace=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.server_job_instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    for to_last_s, closed in server_job_instructions(args.burst, args.rounds):
        print(
            f"{to_last_s:,.0f} instructions per job to the last s, {closed:,.0f} with the "
            f"closes (daphne, a burst of {args.burst})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
