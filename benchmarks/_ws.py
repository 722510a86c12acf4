"""The client side of the socket scenarios: many connections, request/response loops.

Load is generated with `benchmarks._rawws` by default (a minimal client, about 20-25 µs of
CPU per round trip); `use_client("websockets")` (`envelope bench --client websockets`)
uses the `websockets` package instead (about 35-45 µs). On a 2-core machine the client
shares the CPU with the server, so the cheaper one disturbs the measure less. The
`deferred` scenario always uses `websockets`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks._rawws import connect

_perf = time.perf_counter
CLIENTS = ("raw", "websockets")
_client = "raw"


def use_client(name: str) -> None:
    """Which client generates load from now on: "raw" (default) or "websockets"."""
    global _client
    if name not in CLIENTS:
        raise ValueError(f"unknown client {name!r}; choose from {', '.join(CLIENTS)}")
    _client = name


def client_name() -> str:
    return _client


class WebsocketsConnection:
    """The `websockets` package's client behind the interface of `RawConnection`."""

    prepare = staticmethod(str)

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def request(self, frame: str) -> bytes:
        await self.ws.send(frame)
        return await self.receive()

    async def receive(self) -> bytes:
        data = await self.ws.recv()
        return data.encode() if isinstance(data, str) else bytes(data)

    async def close(self) -> None:
        await self.ws.close()


async def _connect(url: str) -> Any:
    if _client == "raw":
        return await connect(url)
    from websockets.asyncio.client import connect as ws_connect

    ws = await ws_connect(
        url, compression=None, ping_interval=None, open_timeout=30, close_timeout=5
    )
    return WebsocketsConnection(ws)


async def open_many(url: str, count: int, *, at_once: int = 50) -> list[Any]:
    """`count` open connections to `url`, or an error naming how many failed."""
    gate = asyncio.Semaphore(at_once)

    async def one() -> Any:
        async with gate:
            return await _connect(url)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_many(conns)
        raise RuntimeError(f"{len(errors)} of {count} connections to {url} failed: {errors[0]!r}")
    return conns


async def close_many(conns: list[Any]) -> None:
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def round_trips(
    conns: list[Any], text: str, seconds: float
) -> tuple[int, list[float], float]:
    """Every connection sends `text` and awaits the reply, again and again, for `seconds`.

    Returns (round trips, latencies in seconds, elapsed seconds).
    """
    frame = conns[0].prepare(text) if conns else text
    latencies: list[float] = []
    record = latencies.append
    start = _perf()
    stop = start + seconds

    async def loop(conn: Any) -> None:
        request = conn.request
        while True:
            sent = _perf()
            if sent >= stop:
                return
            await request(frame)
            record(_perf() - sent)

    await asyncio.gather(*(loop(c) for c in conns))
    return len(latencies), latencies, _perf() - start


async def request(conn: Any, text: str, timeout: float = 10.0) -> str:
    return bytes(await asyncio.wait_for(conn.request(conn.prepare(text)), timeout)).decode()


async def receive(conn: Any, timeout: float = 10.0) -> str:
    return bytes(await asyncio.wait_for(conn.receive(), timeout)).decode()
