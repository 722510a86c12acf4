"""The websocket client side of the socket scenarios (the `websockets` package, asyncio)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

_perf = time.perf_counter


async def open_many(url: str, count: int, *, at_once: int = 50) -> list[ClientConnection]:
    """`count` connections to `url` (no compression, no keep-alive pings)."""
    gate = asyncio.Semaphore(at_once)

    async def one() -> ClientConnection:
        async with gate:
            return await connect(
                url, compression=None, ping_interval=None, open_timeout=30, close_timeout=5
            )

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    conns = [r for r in results if isinstance(r, ClientConnection)]
    errors = [r for r in results if not isinstance(r, ClientConnection)]
    if errors:
        await close_many(conns)
        raise RuntimeError(f"{len(errors)} of {count} connections to {url} failed: {errors[0]!r}")
    return conns


async def close_many(conns: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


async def round_trips(
    conns: list[ClientConnection], frame: str, seconds: float
) -> tuple[int, list[float], float]:
    """Every connection sends `frame` and awaits the reply, again and again, for `seconds`.

    Returns (round trips, latencies in seconds, elapsed seconds).
    """
    latencies: list[float] = []
    record = latencies.append
    start = _perf()
    stop = start + seconds

    async def loop(ws: ClientConnection) -> None:
        send, recv = ws.send, ws.recv
        while True:
            sent = _perf()
            if sent >= stop:
                return
            await send(frame)
            await recv()
            record(_perf() - sent)

    await asyncio.gather(*(loop(ws) for ws in conns))
    return len(latencies), latencies, _perf() - start


async def request(ws: ClientConnection, frame: str, timeout: float = 10.0) -> Any:
    await ws.send(frame)
    return await asyncio.wait_for(ws.recv(), timeout)
