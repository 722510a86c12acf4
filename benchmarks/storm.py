"""Scenario `storm`: thousands of subscribed sockets dropped at once.

One daphne process with a Redis channel layer on a private `redis-server` started with
`maxclients 300` (a Redis shared by several servers, as in production); 5,000 websocket
clients each join one topic (`bench.join`), then all of them are dropped at once (TCP
reset, no close handshake). Measured: the most Redis connections the server held
(sampled every 5 ms), how many leaves could not reach Redis at first and were retried
(`topic.leave_deferred` in the server's trace log), how many members the group still has
once things settle (stale members: every later publish would still go to them), and the
time from the drop until the group was empty.

Before the layer gate (wave 1), the same storm opened 4,950 Redis connections, 1,651
leaves failed and 1,651 dead members stayed in the group. Target: the connections stay
within `ENVELOPE_LAYER_CONNECTIONS` + 2 (the gate's cap, the layer's blocking read and
its clean-up) and no member stays. Skipped when `redis-server` is not installed.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._common import Check, ScenarioResult, progress, run_from_command_line
from benchmarks._procs import daphne
from benchmarks._redis import RedisServer

CAP = 16  # ENVELOPE_LAYER_CONNECTIONS: the default
MAXCLIENTS = 300
SETTLE_SECONDS = 120.0


class PeakClients:
    """The most clients Redis had connected, sampled every 5 ms in a thread."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            count = int(self.client.info("clients")["connected_clients"]) - 1  # not this one
            self.peak = max(self.peak, count)

    def reset(self) -> int:
        peak, self.peak = self.peak, 0
        return peak

    def __enter__(self) -> PeakClients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


async def _storm(url: str, redis_url: str, group_key: str, sockets: int, peak: PeakClients) -> Any:
    import redis

    from benchmarks._rawws import connect
    from benchmarks._ws import close_many

    members = redis.Redis.from_url(redis_url)
    gate = asyncio.Semaphore(50)

    async def joined() -> Any:
        async with gate:
            conn = await connect(url)
            reply = (await conn.request(conn.prepare('{"t":"bench.join","i":"j"}'))).decode()
            if '"s":"s"' not in reply:
                raise RuntimeError(f"bench.join answered {reply!r}")
            return conn

    started = time.perf_counter()
    results = await asyncio.gather(*(joined() for _ in range(sockets)), return_exceptions=True)
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_many(conns)
        raise RuntimeError(f"{len(errors)} of {sockets} joins failed: {errors[0]!r}")
    join_seconds = time.perf_counter() - started
    in_group = members.zcard(group_key)
    # Less `members`, this scenario's own connection: the server's connections only.
    joining_peak = peak.reset() - 1
    progress(f"storm: {sockets} joined in {join_seconds:.1f} s, peak {joining_peak} connections")

    dropped = time.perf_counter()
    for conn in conns:
        conn.transport.abort()  # a reset: no close handshake, as when a network drops
    empty_after = None
    deadline = dropped + SETTLE_SECONDS
    while time.perf_counter() < deadline:
        left = await asyncio.to_thread(members.zcard, group_key)
        if left == 0:
            empty_after = time.perf_counter() - dropped
            break
        await asyncio.sleep(0.05)
    stale = members.zcard(group_key)
    members.close()
    return {
        "in_group_before": in_group,
        "join_seconds": round(join_seconds, 2),
        "peak_redis_connections_joining": joining_peak,
        "peak_redis_connections_storm": peak.reset() - 1,
        "seconds_until_group_empty": round(empty_after, 2) if empty_after else None,
        "stale_members": stale,
    }


def _count(log: Path, event: str) -> int:
    if not log.exists():
        return 0
    needle = f'"event":"{event}"'
    with log.open(errors="replace") as lines:
        return sum(1 for line in lines if needle in line.replace(" ", ""))


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("storm")
    started = time.perf_counter()
    if shutil.which("redis-server") is None:
        result.skipped = "redis-server is not installed"
        progress(f"storm: skipped, {result.skipped}")
        return result
    sockets = 200 if quick else 5000
    progress(f"storm: {sockets} subscribed sockets dropped at once, Redis maxclients {MAXCLIENTS}")
    prefix = f"asgi-storm-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer("--maxclients", str(MAXCLIENTS)) as redis_server,
    ):
        log = Path(tmp) / "trace.log"
        with (
            PeakClients(redis_server.url) as peak,
            daphne(
                BENCH_LOG="info",
                ENVELOPE_TRACE_LOG=str(log),
                BENCH_REDIS_URL=redis_server.url,
                BENCH_LAYER_PREFIX=prefix,
            ) as server,
        ):
            group_key = f"{prefix}:group:tp.bench.fan"
            figures = asyncio.run(
                _storm(server.url("envelope"), redis_server.url, group_key, sockets, peak)
            )
            time.sleep(0.5)  # the trace log is flushed in the background
        figures["leaves_retried"] = _count(log, "topic.leave_deferred")
        figures["layer_outages"] = _count(log, "layer.unavailable")
    result.figures = {"sockets": sockets, "maxclients": MAXCLIENTS, "cap": CAP, **figures}
    peak_storm = figures["peak_redis_connections_storm"]
    progress(
        f"storm: peak {peak_storm} Redis connections, {figures['stale_members']} stale members, "
        f"group empty after {figures['seconds_until_group_empty']} s"
    )
    result.checks.append(
        Check(
            "storm: Redis connections one server held, minus the cap",
            max(figures["peak_redis_connections_joining"], peak_storm) - CAP,
            2,
            False,
            note=f"peak {peak_storm} during the storm, cap {CAP}",
            unit=" conns",
        )
    )
    result.checks.append(
        Check(
            "storm: members left in the group after it settled",
            figures["stale_members"],
            0,
            False,
            note=f"empty after {figures['seconds_until_group_empty']} s",
            unit=" members",
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("storm", __doc__, run, argv)
    print(result.figures or result.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
