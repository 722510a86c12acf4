"""The client side of the socket scenarios: many connections, request/response loops.

Load is generated with `benchmarks._rawws` (a minimal client that costs far less CPU per
round trip than the servers measured); the `deferred` scenario uses the `websockets`
package.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks._rawws import RawConnection, connect, text_frame

_perf = time.perf_counter


async def open_many(url: str, count: int, *, at_once: int = 50) -> list[RawConnection]:
    """`count` open connections to `url`, or an error naming how many failed."""
    gate = asyncio.Semaphore(at_once)

    async def one() -> RawConnection:
        async with gate:
            return await connect(url)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    conns = [r for r in results if isinstance(r, RawConnection)]
    errors = [r for r in results if not isinstance(r, RawConnection)]
    if errors:
        await close_many(conns)
        raise RuntimeError(f"{len(errors)} of {count} connections to {url} failed: {errors[0]!r}")
    return conns


async def close_many(conns: list[RawConnection]) -> None:
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def round_trips(
    conns: list[RawConnection], text: str, seconds: float
) -> tuple[int, list[float], float]:
    """Every connection sends `text` and awaits the reply, again and again, for `seconds`.

    Returns (round trips, latencies in seconds, elapsed seconds).
    """
    frame = text_frame(text)
    latencies: list[float] = []
    record = latencies.append
    start = _perf()
    stop = start + seconds

    async def loop(conn: RawConnection) -> None:
        request = conn.request
        while True:
            sent = _perf()
            if sent >= stop:
                return
            await request(frame)
            record(_perf() - sent)

    await asyncio.gather(*(loop(c) for c in conns))
    return len(latencies), latencies, _perf() - start


async def request(conn: RawConnection, text: str, timeout: float = 10.0) -> str:
    return (await asyncio.wait_for(conn.request(text_frame(text)), timeout)).decode()


async def receive(conn: RawConnection, timeout: float = 10.0) -> str:
    return (await asyncio.wait_for(conn.receive(), timeout)).decode()
