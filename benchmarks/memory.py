"""Scenario `memory`: resident memory per idle connection under daphne, envelope vs plain.

Each target gets a fresh daphne process. After a warm-up (a few connections that send
one message, then close), its RSS is read from /proc; then N connections are opened,
each sends one message and waits for the answer (so the consumer, and the envelope
actor with its mailbox, exist), and they stay open and idle; RSS is read again.
Target (DESIGN.md): envelope <= plain + 8 KiB per connection.
"""

from __future__ import annotations

import asyncio
import sys
import time

from benchmarks._common import Check, ScenarioResult, progress, run_from_command_line
from benchmarks._procs import Server, daphne, rss_kib

FRAME = '{"t":"bench.small","i":"m1","p":{"n":7,"text":"hello"}}'
TARGET_KIB = 8.0


async def _per_connection(server: Server, path: str, count: int) -> dict[str, float]:
    from benchmarks._ws import close_many, open_many, request

    warm = await open_many(server.url(path), 10)
    await asyncio.gather(*(request(ws, FRAME) for ws in warm))
    await close_many(warm)
    await asyncio.sleep(0.5)
    before = rss_kib(server.pid)
    conns = await open_many(server.url(path), count)
    try:
        await asyncio.gather(*(request(ws, FRAME) for ws in conns))
        await asyncio.sleep(0.5)
        after = rss_kib(server.pid)
    finally:
        await close_many(conns)
    return {
        "connections": count,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": round((after - before) / count, 2),
    }


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("memory")
    started = time.perf_counter()
    count = 100 if quick else 500
    for path in ("plain", "envelope"):
        progress(f"memory: {count} idle connections to /{path}/ on a fresh daphne")
        with daphne(BENCH_LOG="off") as server:
            result.figures[path] = asyncio.run(_per_connection(server, path, count))
        progress(f"  {path:9} {result.figures[path]['kib_per_connection']:.1f} KiB/connection")
    plain = result.figures["plain"]["kib_per_connection"]
    env = result.figures["envelope"]["kib_per_connection"]
    result.checks.append(
        Check(
            "memory: KiB per idle connection, envelope minus plain",
            round(env - plain, 2),
            TARGET_KIB,
            False,
            unit=" KiB",
            note=f"{env:.1f} vs {plain:.1f} KiB",
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("memory", __doc__, run, argv)
    print(result.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
