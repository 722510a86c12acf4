"""Instructions per job of a non-forking RQ worker, counted by callgrind: robust to a busy
machine.

    .venv/bin/python -m benchmarks.worker_instructions [--jobs 200]

A private Redis; an `rqworker --worker-class actors.workers.EnvelopeSimpleWorker`
process of `benchmarks.settings` under `valgrind --tool=callgrind`, logging INFO trace
events to a file as `envelope bench deferred` runs it. A few jobs warm it up; then its
counters are zeroed (`callgrind_control -z`), `--jobs` requests of the `deferred`
scenario's `bench.work` handler are enqueued at once (as a server's `RQBackend` enqueues
them: the same job request, failure callback and job id), and once the trace log has
their `job.finished` the counters are read (`callgrind_control -e`): what the worker
spends per job while jobs wait in the queue (a burst), start-up excluded. Also prints
the Redis commands per job, the enqueue's included (INFO commandstats). A run takes a
minute or two; the enqueue runs outside callgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._procs import ROOT, stop
from benchmarks._redis import private_redis

WARM_UP = 5


def enqueue(count: int) -> None:
    """Enqueue `count` `bench.work` job requests on `BENCH_QUEUE` (Django set up)."""
    import django

    django.setup()
    import django_rq
    from rq import Callback

    queue = django_rq.get_queue(os.environ["BENCH_QUEUE"])
    for n in range(count):
        job = uuid.uuid4().hex
        i = f"bench-{job[:10]}"
        conn = f"specific.{uuid.uuid4().hex[:12]}!{uuid.uuid4().hex[:12]}"
        req = {  # what actors.deferred's make_request writes for bench.work
            "t": "bench.work",
            "i": i,
            "p": {"n": n},
            "fn": "benchmarks._jobs:work",
            "target": False,
            "user": None,
            "conn": conn,
            "trace": {"i": i, "t": "bench.work", "conn": conn},
            "otel": None,
            "enqueued_at": time.time(),
            "job": job,
            "queue": queue.name,
            "start_timeout": None,
            "timeout": None,
            "reply": True,
            "lang": None,
        }
        queue.enqueue(
            "actors.deferred._rq.perform",
            req,
            job_id=job,
            on_failure=Callback("actors.deferred._rq.on_job_failure"),
        )


def _finished(trace_log: Path) -> int:
    if not trace_log.exists():
        return 0
    return trace_log.read_text().count('"job.finished"')


def _until_finished(trace_log: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 1800
    while _finished(trace_log) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker finished {_finished(trace_log)} of {count} jobs")
        time.sleep(0.2)


def worker_instructions(jobs: int) -> tuple[float, float]:
    """(instructions, Redis commands) per job of an `EnvelopeSimpleWorker`."""
    import redis

    with private_redis() as url, tempfile.TemporaryDirectory() as tmp:
        trace_log = Path(tmp) / "trace.jsonl"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONHASHSEED": "0",
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "BENCH_RQ_URL": url,
            "BENCH_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
            "BENCH_DB": str(Path(tmp) / "db.sqlite3"),
            "ENVELOPE_TRACE_LOG": str(trace_log),
        }
        feed = [sys.executable, "-m", "benchmarks.worker_instructions", "--enqueue"]
        subprocess.run([*feed, str(WARM_UP)], cwd=ROOT, env=env, check=True)
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={Path(tmp) / 'callgrind.out'}",
            sys.executable,
            "-m",
            "django",
            "rqworker",
            env["BENCH_QUEUE"],
            "--worker-class",
            "actors.workers.EnvelopeSimpleWorker",
        ]
        client = redis.Redis.from_url(url)
        with open(Path(tmp) / "worker.log", "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            _until_finished(trace_log, WARM_UP, proc)
            time.sleep(1)  # its last job's end, then waiting on an empty queue
            pid = str(proc.pid)
            subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
            before = sum(int(s["calls"]) for s in client.info("commandstats").values())
            subprocess.run([*feed, str(jobs)], cwd=ROOT, env=env, check=True)
            _until_finished(trace_log, WARM_UP + jobs, proc)
            shown = subprocess.run(
                ["callgrind_control", "-e", "Ir", pid], check=True, capture_output=True, text=True
            ).stdout
            after = sum(int(s["calls"]) for s in client.info("commandstats").values())
        finally:
            stop(proc, grace=120)
            client.close()
    counts = re.findall(r"Th\s+\d+\s+([\d,]+)", shown)
    if not counts:
        raise RuntimeError(f"callgrind_control said:\n{shown}")
    instructions = sum(int(count.replace(",", "")) for count in counts)
    return instructions / jobs, (after - before - 1) / jobs  # less the INFO itself


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.worker_instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--enqueue", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.enqueue is not None:
        enqueue(args.enqueue)
        return 0
    instructions, commands = worker_instructions(args.jobs)
    print(f"{instructions:,.0f} instructions per job (EnvelopeSimpleWorker, {args.jobs} jobs)")
    print(f"{commands:.1f} Redis commands per job, the enqueue's included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
