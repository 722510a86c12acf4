"""A disconnect storm: hundreds of subscribed sockets dropped at once.

The server's Redis connections stay within the layer gate's cap
(`ENVELOPE_LAYER_CONNECTIONS`, plus the layer's one blocking read and the fan-out's one
pub/sub connection), even with a Redis that accepts few clients (`maxclients`), and
every leave is done: 500 subscribers are one SUBSCRIBE of the server, gone with the last
of them. The full-size storm (5,000 sockets) is `envelope bench storm`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

from benchmarks._redis import PeakClients, RedisServer
from tests.faults.support import fault_run, wait_for

pytestmark = pytest.mark.slow

SOCKETS = 500
CAP = 8  # ENVELOPE_LAYER_CONNECTIONS in the server under test
MAXCLIENTS = 40


async def subscribed_socket(port: int, topic: str, stack: contextlib.AsyncExitStack) -> Any:
    ws: ClientConnection = await stack.enter_async_context(
        connect(f"ws://127.0.0.1:{port}/ws/", open_timeout=30)
    )
    await ws.send(f'{{"t": "topic.subscribe", "i": "s", "p": {{"topic": "{topic}"}}}}')
    reply = await ws.recv()
    assert '"s":"s"' in reply.replace(" ", ""), reply
    return ws


async def test_a_disconnect_storm_keeps_redis_connections_bounded_and_leaves_no_member(
    tmp_path: Path,
) -> None:
    with (
        RedisServer("--maxclients", str(MAXCLIENTS)) as redis_server,
        fault_run(
            redis_server,
            tmp_path,
            worker=False,
            ENVELOPE_TEST_DEFERRED="thread",
            ENVELOPE_TEST_TRACKING="0",
            ENVELOPE_TEST_LAYER_CONNECTIONS=str(CAP),
        ) as run,
        PeakClients(redis_server.url) as clients,
    ):
        channel = f"asgi-{run.env['ENVELOPE_TEST_RUN']}.fanout.storm.all"
        watcher = redis.Redis.from_url(redis_server.url)

        def subscribers() -> int:
            ((_, count),) = watcher.pubsub_numsub(channel)
            return int(count)

        try:
            async with contextlib.AsyncExitStack() as stack:
                sockets = []
                handshakes = anyio.Semaphore(50)

                async def open_one() -> None:
                    async with handshakes:
                        sockets.append(await subscribed_socket(run.port, "storm.all", stack))

                async with anyio.create_task_group() as tg:
                    for _ in range(SOCKETS):
                        tg.start_soon(open_one)
                assert len(sockets) == SOCKETS
                assert subscribers() == 1  # the server, once for its 500 members
                for ws in sockets:  # all dropped at once, without a close handshake
                    ws.transport.abort()
            wait_for(lambda: subscribers() == 0, timeout=60, what="no subscription left")
        finally:
            watcher.close()
        # The gate's cap, the layer's blocking read and its backup cleaner, the fan-out's
        # pub/sub connection, and the test's own `watcher`.
        assert clients.peak <= CAP + 4, clients.peak
        assert "topic.leave_failed" not in run.server.output()
