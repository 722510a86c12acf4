"""Scenario `deferred`: deferred handlers through real RQ workers, forking and not.

A daphne server (envelope consumer with the deferred `bench.work` handlers, RQ backend,
channels_redis) and `rqworker` processes share a Redis; all write INFO trace events to
one `ENVELOPE_TRACE_LOG` file. The forking `actors.workers.EnvelopeWorker` and the
non-forking `EnvelopeSimpleWorker` each have a queue (and a message) of their own, so
that both run side by side and the scenario alternates between them:

- *idle*: one connection sends requests one after the other to one idle worker and
  times the `q` and the `s` answers;
- *burst*: with 1 and then 4 processes of each worker class running, a short warm-up
  burst each, then rounds (7; 3 with `--quick`) of a burst of N requests (`--burst N`:
  N connections each send one request at the same moment) to the simple and then the
  forking workers (the order flips every round). Per burst: the time until the last
  `s`, the jobs per second per worker process (N / that time / processes) and,
  robust to a loaded machine, the CPU per job of the workers and of the server (from
  /proc, counted from when the burst's connections are open and the server is idle
  again, so without the handshakes; the server's also up to the last `s`, without the
  connections' closes) and the Redis commands per job (INFO commandstats of the
  scenario's own Redis: every process's, Lua scripts' commands included). Reported:
  each figure's median over the rounds and its per-round values, p50/p99 request ->
  `s` over all rounds, and the ratio of jobs/s per process as the median of the
  per-round ratios: the two bursts of a round ran one after the other, so a change of
  the machine's load between rounds cancels out.

Targets (DESIGN.md): the non-forking worker finishes >= 10x the forking worker's jobs/s
per process in a burst, and answers `s` within 5 ms at p50 on an idle worker. The trace
of one request, as `envelope trace` shows it, is kept in the figures. Skipped, with the
reason, when Redis or the RQ backend is not available.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks._common import Check, ScenarioResult, percentile, progress
from benchmarks._procs import Server, cpu_seconds, daphne
from benchmarks._redis import private_redis, redis_server_binary, redis_url
from benchmarks._rq_load import WORKERS, one_by_one, run_burst, workers

PROCESSES = (1, 4)
BURST = 200
QUICK_BURST = 20
#: Bursts of each worker class per number of processes, alternating with the other's.
ROUNDS = 7
QUICK_ROUNDS = 3


def _backend_missing() -> str | None:
    # Looked up, not imported: the worker module needs Django set up with RQ settings.
    for name in ("actors.workers", "django_rq"):
        if importlib.util.find_spec(name) is None:
            return f"the RQ backend is not available ({name} cannot be found)"
    return None


def _ms(sorted_seconds: list[float], q: float) -> float:
    return round(percentile(sorted_seconds, q) * 1000, 2)


def _timeline(trace_log: Path, i: str) -> str:
    from actors.tracing import format_timeline, read_logs, timeline

    with open(trace_log, "rb") as stream:
        logs = read_logs([(str(trace_log), stream)])
    return format_timeline(i, timeline(logs, i))


def _calls(url: str) -> int:
    """Commands the Redis at `url` has run so far (INFO commandstats), Lua's included."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(int(stats["calls"]) for stats in client.info("commandstats").values())
    finally:
        client.close()


def workers_cpu(pids: list[int]) -> float:
    """CPU seconds of the worker processes and of the work horses they waited for."""
    return sum(cpu_seconds(pid, children=True) for pid in pids)


def _burst_figures(size: int, processes: int, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One worker class's bursts at `processes`: per-round figures and their medians
    (the latencies of every round pooled for p50/p99)."""
    latencies = sorted(t for r in rounds for t in r["latencies"])
    per_round = {
        key: [r[key] for r in rounds]
        for key in (
            "until_last_s_ms",
            "jobs_per_second_per_process",
            "worker_cpu_ms_per_job",
            "server_cpu_ms_per_job",
            "server_cpu_ms_per_job_to_last_s",
            "redis_commands_per_job",
        )
    }
    return {
        "requests": size,
        "processes": processes,
        "rounds": len(rounds),
        **{key: round(median(values), 2) for key, values in per_round.items()},
        "p50_ms": _ms(latencies, 50),
        "p99_ms": _ms(latencies, 99),
        "per_round": per_round,
    }


def _one_burst(server: Server, url: str, pids: list[int], kind: str, size: int) -> dict[str, Any]:
    """One burst of `size` requests to the workers `pids` of `kind`, with its figures."""
    burst = asyncio.run(
        run_burst(
            server,
            size,
            kind,
            lambda: (workers_cpu(pids), cpu_seconds(server.pid), _calls(url)),
            lambda: cpu_seconds(server.pid),
        )
    )
    cpu, server_cpu, commands = burst["before"]
    server_cpu_answering = burst["after"] - server_cpu
    cpu = workers_cpu(pids) - cpu
    server_cpu = cpu_seconds(server.pid) - server_cpu
    commands = _calls(url) - commands - 1  # less the INFO itself
    seconds = burst["seconds"]
    processes = len(pids)
    return {
        "latencies": burst["latencies"],
        "until_last_s_ms": round(seconds * 1000, 1),
        "jobs_per_second_per_process": round(size / seconds / processes, 1),
        "worker_cpu_ms_per_job": round(cpu / size * 1000, 3),
        # From when the burst's connections are open and the server is idle again:
        # the handshakes are not counted, only the jobs.
        "server_cpu_ms_per_job": round(server_cpu / size * 1000, 3),
        # The same to the last `s`: without the connections' closes, which come after
        # the jobs (the figure above counts the part of them the server has done when
        # it is read).
        "server_cpu_ms_per_job_to_last_s": round(server_cpu_answering / size * 1000, 3),
        "redis_commands_per_job": round(commands / size, 1),
    }


def _measure(
    server: Server, env: dict[str, str], url: str, tmp: Path, count: int, size: int, rounds: int
) -> dict[str, Any]:
    """For each number of processes, both worker classes running side by side on their
    own queues, and `rounds` bursts of each, alternating (the order flips every round),
    so that both see about the same machine; the ratio is the median of the per-round
    ratios."""
    figures: dict[str, Any] = {"rounds": rounds}
    for processes in PROCESSES:
        with contextlib.ExitStack() as stack:
            pids = {
                kind: stack.enter_context(
                    workers(env, kind, processes, tmp / f"worker-{kind}.log", url)
                )
                for kind in WORKERS
            }
            for kind in WORKERS:
                if processes == 1:
                    progress(f"deferred: {kind} worker, {count} requests one by one")
                    idle = asyncio.run(one_by_one(server, count, kind))
                    figures[f"{kind}_idle"] = {
                        "requests": count,
                        "to_q_ms": {f"p{q}": _ms(idle["to_q"], q) for q in (50, 90, 99)},
                        "to_s_ms": {f"p{q}": _ms(idle["to_s"], q) for q in (50, 90, 99)},
                    }
                    figures.setdefault("example_ids", {})[kind] = idle["ids"][len(idle["ids"]) // 2]
                # Warm-up: every worker process has run a few jobs before the rounds.
                asyncio.run(run_burst(server, 4 * processes, kind))
            progress(
                f"deferred: x{processes}, {rounds} rounds of a burst of {size} requests, "
                "simple and forking worker alternating"
            )
            per_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in WORKERS}
            for r in range(rounds):
                order = list(WORKERS) if r % 2 == 0 else list(reversed(WORKERS))
                for kind in order:
                    per_kind[kind].append(_one_burst(server, url, pids[kind], kind, size))
                simple, forking = per_kind["simple"][-1], per_kind["forking"][-1]
                progress(
                    f"deferred: x{processes} round {r + 1}: jobs/s per process "
                    f"{simple['jobs_per_second_per_process']:g} vs "
                    f"{forking['jobs_per_second_per_process']:g}, worker CPU ms per job "
                    f"{simple['worker_cpu_ms_per_job']:g} vs {forking['worker_cpu_ms_per_job']:g}"
                )
            for kind, done in per_kind.items():
                figures[f"{kind}_burst_{processes}"] = _burst_figures(size, processes, done)
            ratios = [
                s["jobs_per_second_per_process"] / f["jobs_per_second_per_process"]
                for s, f in zip(per_kind["simple"], per_kind["forking"], strict=True)
            ]
            figures[f"burst_ratio_{processes}"] = {
                "median": round(median(ratios), 2),
                "per_round": [round(x, 2) for x in ratios],
            }
    return figures


def run(quick: bool = False, burst: int | None = None) -> ScenarioResult:
    result = ScenarioResult("deferred")
    started = time.perf_counter()
    missing = _backend_missing()
    count = 8 if quick else 40
    size = burst or (QUICK_BURST if quick else BURST)
    rounds = QUICK_ROUNDS if quick else ROUNDS
    # A Redis of its own when one can be started: the figures count its commands.
    with private_redis() if redis_server_binary() else redis_url() as url:
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
            progress(f"deferred: daphne + rqworkers on queue {queue}")
            with daphne(BENCH_LOG="info", **env) as server:
                figures = _measure(server, env, url, Path(tmp), count, size, rounds)
            examples = figures.pop("example_ids")
            for kind, i in examples.items():
                figures[f"{kind}_example_trace"] = _timeline(trace_log, i)
    result.figures = figures
    result.checks.extend(_checks(figures))
    result.seconds = time.perf_counter() - started
    return result


def _checks(figures: dict[str, Any]) -> list[Check]:
    checks = []
    for processes in PROCESSES:
        simple = figures[f"simple_burst_{processes}"]
        forking = figures[f"forking_burst_{processes}"]
        ratio = figures[f"burst_ratio_{processes}"]
        per_round = ", ".join(f"{x:g}" for x in ratio["per_round"])
        checks.append(
            Check(
                f"deferred: burst jobs/s per process, simple / forking worker, x{processes}",
                ratio["median"],
                10.0,
                True,
                note=(
                    f"median of {len(ratio['per_round'])} rounds ({per_round}); medians "
                    f"of {simple['requests']} requests: {simple['jobs_per_second_per_process']:g} "
                    f"vs {forking['jobs_per_second_per_process']:g} jobs/s per process "
                    f"({simple['worker_cpu_ms_per_job']:g} vs {forking['worker_cpu_ms_per_job']:g} "
                    "ms of worker CPU per job, "
                    f"{simple['server_cpu_ms_per_job']:g} vs {forking['server_cpu_ms_per_job']:g} "
                    "ms of server CPU, "
                    f"{simple['redis_commands_per_job']:g} vs "
                    f"{forking['redis_commands_per_job']:g} Redis commands); last s "
                    f"after {simple['until_last_s_ms']:g} vs {forking['until_last_s_ms']:g} ms; "
                    f"p50/p99 {simple['p50_ms']:g}/{simple['p99_ms']:g} vs "
                    f"{forking['p50_ms']:g}/{forking['p99_ms']:g} ms"
                ),
            )
        )
        # Robust to a loaded machine, and what a worker process could finish per second
        # with a core to itself; for information: the target is the burst's rate above.
        checks.append(
            Check(
                f"deferred: worker CPU per job, forking / simple worker, x{processes}",
                forking["worker_cpu_ms_per_job"] / simple["worker_cpu_ms_per_job"],
                None,
                True,
                note=(
                    f"{forking['worker_cpu_ms_per_job']:g} vs "
                    f"{simple['worker_cpu_ms_per_job']:g} ms; server "
                    f"{forking['server_cpu_ms_per_job']:g} vs "
                    f"{simple['server_cpu_ms_per_job']:g} ms per job"
                ),
            )
        )
    for kind, target in (("simple", 5.0), ("forking", None)):
        idle = figures[f"{kind}_idle"]
        checks.append(
            Check(
                f"deferred: idle {kind} worker, request to s p50",
                idle["to_s_ms"]["p50"],
                target,
                False,
                unit=" ms",
                note=f"q after {idle['to_q_ms']['p50']:g} ms; s p99 {idle['to_s_ms']['p99']:g} ms",
            )
        )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deferred", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--burst", type=int, metavar="N", help=f"burst size (default {BURST})")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, burst=args.burst)
    for key, value in result.figures.items():
        print(f"{key}:\n{value}" if key.endswith("_trace") else f"{key}: {value}")
    for check in result.checks:
        print(f"{check.label}: {check.ratio:.2f}{check.unit} ({check.target_text}) {check.note}")
    print(result.skipped or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
