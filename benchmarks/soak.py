"""Scenario `soak`: never-reading clients next to normal ones, on a real daphne.

One daphne process (outbound budget `BUDGET`) serves N normal connections that do
request/response the whole time. After a baseline phase, M never-reading clients join
them and are kept at M for the rest of the run: half send echo requests and never read
the replies, half subscribe to a topic fed with pushes (by one more connection) and
never read them, each at 1,000 messages/s. Each is a socket with a tiny receive buffer
whose reading is paused after the handshake; when the server drops one (4008, it held
more than its budget), a new one takes its place. The server's RSS is sampled every
0.25 s throughout.

Reported: the RSS over time, its growth from the baseline to the peak per never-reading
client (target: at most the budget plus a small constant, 1 MiB), how many slow clients
the server dropped, and the normal connections' round trips/s and p50/p99 latency in
each phase (their ratio, for information: DESIGN.md sets no target for it). The
never-reading clients' own traffic (1,000 messages/s each) costs the server CPU: on a
small machine shared with the load client, that, not memory, is what the ratio shows.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from typing import Any

from benchmarks._common import (
    Check,
    ScenarioResult,
    percentile,
    progress,
    run_from_command_line,
    smoke,
)
from benchmarks._procs import Server, daphne, rss_kib

FRAME = '{"t":"bench.small","i":"s1","p":{"n":7,"text":"hello"}}'
BUDGET = 256 * 1024
#: What a never-reading client may cost beyond its budget (DESIGN.md: "a small constant").
CONSTANT_KIB = 1024
#: The soak's seconds in a smoke run (12 quick, 60 in a full run).
SMOKE_SECONDS = 4.0
ECHO = '{"t":"bench.small","i":"x","p":{"n":1,"text":"' + "y" * 1000 + '"}}'
FEED = '{"t":"bench.soak.feed","i":"f","p":{"count":100,"size":2000}}'


class Silent:
    """A never-reading client: a tiny receive buffer, reading paused after the handshake."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "echo": floods requests; "subscriber": fed pushes
        self.conn: Any = None

    async def open(self, url: str) -> None:
        from benchmarks._rawws import RawConnection, handshake

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
        await loop.sock_connect(sock, (host, int(port)))
        _, self.conn = await loop.create_connection(RawConnection, sock=sock)
        await handshake(self.conn, url)
        if self.kind == "subscriber":
            join = self.conn.prepare('{"t":"bench.soak.join"}')
            await asyncio.wait_for(self.conn.request(join), 10)
        self.conn.transport.pause_reading()

    @property
    def dropped(self) -> bool:
        conn = self.conn
        return conn is not None and (conn.closed.done() or conn.transport.is_closing())

    def send_echo(self) -> None:
        if self.kind == "echo" and not self.dropped:
            self.conn.transport.write(self.conn.prepare(ECHO))

    def close(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.abort()


async def _soak(server: Server, normal: int, slow: int, seconds: float) -> dict[str, Any]:
    from benchmarks._ws import close_many, open_many, request

    url = server.url("envelope")
    conns = await open_many(url, normal)
    feeder = (await open_many(url, 1))[0]
    for ws in conns:
        await request(ws, FRAME)
    frame = conns[0].prepare(FRAME)
    started = time.perf_counter()
    phase = ["baseline"]
    latencies: dict[str, list[float]] = {"baseline": [], "slow": []}
    counts = {"baseline": 0, "slow": 0}
    rss: list[tuple[float, int]] = []
    silent: list[Silent] = []
    dropped = 0
    stop = started + seconds
    baseline_end = started + seconds / 3

    async def normal_loop(conn: Any) -> None:
        while (now := time.perf_counter()) < stop:
            await conn.request(frame)
            name = phase[0]
            latencies[name].append(time.perf_counter() - now)
            counts[name] += 1

    async def sample_rss() -> None:
        while time.perf_counter() < stop:
            rss.append((round(time.perf_counter() - started, 2), rss_kib(server.pid)))
            await asyncio.sleep(0.25)

    async def misbehave() -> None:
        nonlocal dropped
        await asyncio.sleep(max(0.0, baseline_end - time.perf_counter()))
        phase[0] = "slow"
        kinds = ["echo" if k % 2 == 0 else "subscriber" for k in range(slow)]
        for kind in kinds:
            client = Silent(kind)
            await client.open(url)
            silent.append(client)
        tick = time.perf_counter()
        while tick < stop:
            # Every 0.1 s: 100 echo requests from each flooder, 100 pushes of 2 KB to each
            # subscriber (1,000/s each, as in the measurements).
            for k, client in enumerate(silent):
                if client.dropped:
                    dropped += 1
                    client.close()
                    silent[k] = Silent(client.kind)
                    await silent[k].open(url)
                for _ in range(100):
                    client.send_echo()
            await request(feeder, FEED, timeout=30)
            tick += 0.1
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))

    try:
        await asyncio.gather(sample_rss(), misbehave(), *(normal_loop(c) for c in conns))
    finally:
        for client in silent:
            client.close()
        await close_many([*conns, feeder])
    figures: dict[str, Any] = {"normal": normal, "slow": slow, "budget_bytes": BUDGET}
    for name in ("baseline", "slow"):
        lat = sorted(latencies[name])
        elapsed = (baseline_end - started) if name == "baseline" else (stop - baseline_end)
        figures[name] = {
            "per_second": round(counts[name] / elapsed, 1),
            "p50_ms": round(percentile(lat, 50) * 1000, 3),
            "p99_ms": round(percentile(lat, 99) * 1000, 3),
        }
    base = [kib for t, kib in rss if t < baseline_end - started]
    during = [kib for t, kib in rss if t >= baseline_end - started]
    figures["rss_kib"] = rss
    figures["rss_baseline_kib"] = max(base)
    figures["rss_peak_kib"] = max(during)
    figures["rss_last_kib"] = during[-1]
    figures["slow_dropped"] = dropped
    figures["peak_growth_per_slow_kib"] = round((max(during) - max(base)) / slow, 1)
    return figures


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("soak")
    started = time.perf_counter()
    normal, slow = (10, 4) if quick else (50, 20)
    # A smoke run: a third of it (the RSS is sampled every 0.25 s) alone, then beside them.
    seconds = (SMOKE_SECONDS if smoke() else 12.0) if quick else 60.0
    progress(
        f"soak: {normal} normal connections for {seconds:g} s; from a third of the way, "
        f"{slow} never-reading clients (budget {BUDGET // 1024} KiB)"
    )
    with daphne(BENCH_MAX_OUTBOUND_BYTES=str(BUDGET)) as server:
        figures = asyncio.run(_soak(server, normal, slow, seconds))
    result.figures = figures
    base, during = figures["baseline"], figures["slow"]
    progress(
        f"  RSS {figures['rss_baseline_kib']} KiB -> peak {figures['rss_peak_kib']} KiB "
        f"({figures['peak_growth_per_slow_kib']} KiB per slow client), "
        f"{figures['slow_dropped']} slow clients dropped"
    )
    progress(
        f"  normal: {base['per_second']:.0f}/s p99 {base['p99_ms']:.2f} ms alone, "
        f"{during['per_second']:.0f}/s p99 {during['p99_ms']:.2f} ms beside them"
    )
    result.checks += [
        Check(
            "soak: peak RSS growth per never-reading client",
            figures["peak_growth_per_slow_kib"],
            BUDGET / 1024 + CONSTANT_KIB,
            False,
            unit=" KiB",
            note=f"budget {BUDGET // 1024} KiB + {CONSTANT_KIB} KiB; "
            f"{figures['slow_dropped']} dropped with 4008",
        ),
        Check(
            "soak: normal p99 beside never-reading clients vs alone",
            round(during["p99_ms"] / base["p99_ms"], 3),
            None,
            False,
            note=f"{during['p99_ms']:.2f} vs {base['p99_ms']:.2f} ms",
        ),
        Check(
            "soak: normal round trips/s beside never-reading clients vs alone",
            round(during["per_second"] / base["per_second"], 3),
            None,
            True,
            note=f"{during['per_second']:.0f} vs {base['per_second']:.0f}/s",
        ),
    ]
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("soak", __doc__, run, argv)
    for check in result.checks:
        met = {True: "ok", False: "MISSED", None: "-"}[check.met]
        print(f"{check.label:62} {check.ratio:8.2f}  {check.target_text}  {met}  {check.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
