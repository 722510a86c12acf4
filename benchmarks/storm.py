"""Scenario `storm`: thousands of subscribed sockets dropped at once.

One daphne process with a Redis channel layer on a private `redis-server` started with
`maxclients 300` (a Redis shared by several servers, as in production); 5,000 websocket
clients each join one topic (`bench.join`), then all of them are dropped at once (TCP
reset, no close handshake). Measured: the most Redis connections the server held
(sampled every 5 ms), whether the server is still subscribed to the topic's fan-out
channel once things settle (`PUBSUB NUMSUB`: 1 while it has a member, 0 after its last
one left; a stale subscription would bring every later publish to a server with nobody
to deliver it to), and the time from the drop until it was not.

Before the layer gate (wave 1), the same storm opened 4,950 Redis connections, 1,651
leaves failed and 1,651 dead members stayed in the channel-layer group. Since the
fan-out, leaving is local to the server and the last leave is one UNSUBSCRIBE. Target:
the connections stay within `ENVELOPE_LAYER_CONNECTIONS` + 3 (the gate's cap, the layer's
blocking read and its clean-up, the fan-out's pub/sub connection) and no subscription
stays. Skipped when `redis-server` is not installed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._common import Check, ScenarioResult, progress, run_from_command_line
from benchmarks._procs import daphne
from benchmarks._redis import PeakClients, RedisServer, redis_server_binary

CAP = 16  # ENVELOPE_LAYER_CONNECTIONS: the default
MAXCLIENTS = 300
SETTLE_SECONDS = 120.0


async def _storm(url: str, redis_url: str, channel: str, sockets: int, peak: PeakClients) -> Any:
    import redis

    from benchmarks._ws import open_many, request

    members = redis.Redis.from_url(redis_url)

    def subscribed() -> int:
        ((_, count),) = members.pubsub_numsub(channel)
        return int(count)

    started = time.perf_counter()
    conns = await open_many(url, sockets)
    # Every socket joins at once: a storm of joins, the gate's cap holds for it too.
    replies = await asyncio.gather(*(request(c, '{"t":"bench.join","i":"j"}') for c in conns))
    refused = [reply for reply in replies if '"s":"s"' not in reply]
    if refused:
        raise RuntimeError(f"{len(refused)} bench.join refused: {refused[0]!r}")
    join_seconds = time.perf_counter() - started
    in_group = subscribed()
    # Less `members`, this scenario's own connection: the server's connections only.
    joining_peak = peak.reset() - 1
    progress(f"storm: {sockets} joined in {join_seconds:.1f} s, peak {joining_peak} connections")

    dropped = time.perf_counter()
    for conn in conns:
        # A reset: no close handshake, as when a network drops (either load client).
        transport = conn.transport if hasattr(conn, "transport") else conn.ws.transport
        transport.abort()
    empty_after = None
    deadline = dropped + SETTLE_SECONDS
    while time.perf_counter() < deadline:
        left = await asyncio.to_thread(subscribed)
        if left == 0:
            empty_after = time.perf_counter() - dropped
            break
        await asyncio.sleep(0.05)
    stale = subscribed()
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
    if redis_server_binary() is None:
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
            channel = f"{prefix}.fanout.bench.fan"
            figures = asyncio.run(
                _storm(server.url("envelope"), redis_server.url, channel, sockets, peak)
            )
            time.sleep(0.5)  # the trace log is flushed in the background
        figures["leaves_retried"] = _count(log, "topic.leave_deferred")
        figures["layer_outages"] = _count(log, "layer.unavailable")
    result.figures = {"sockets": sockets, "maxclients": MAXCLIENTS, "cap": CAP, **figures}
    peak_storm = figures["peak_redis_connections_storm"]
    progress(
        f"storm: peak {peak_storm} Redis connections, {figures['stale_members']} stale "
        f"subscriptions, unsubscribed after {figures['seconds_until_group_empty']} s"
    )
    result.checks.append(
        Check(
            "storm: Redis connections one server held, minus the cap",
            max(figures["peak_redis_connections_joining"], peak_storm) - CAP,
            3,
            False,
            note=f"peak {peak_storm} during the storm, cap {CAP}",
            unit=" conns",
        )
    )
    result.checks.append(
        Check(
            "storm: fan-out subscriptions left after it settled",
            figures["stale_members"],
            0,
            False,
            note=f"empty after {figures['seconds_until_group_empty']} s",
            unit=" subscriptions",
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
