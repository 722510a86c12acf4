"""SIGTERM to a server with connections that have deferred work: it drains and exits within
`ENVELOPE_DRAIN_SECONDS` + 2 s, and what arrives while a socket is still open is delivered.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from benchmarks._redis import RedisServer
from envelope import State
from tests.actors.rq_support import WsClient
from tests.faults.support import client, fault_run

pytestmark = pytest.mark.slow

DRAIN = 2.0


def exit_seconds(process: subprocess.Popen[bytes], limit: float) -> float:
    """SIGTERM `process`; how long it took to exit (it is killed past `limit` + 10 s)."""
    started = time.monotonic()
    process.terminate()
    try:
        process.wait(limit + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return float("inf")
    return time.monotonic() - started


async def closing_code(ws: WsClient) -> int | None:
    """Read until the server closes; the close code it sent."""
    with anyio.fail_after(20):
        while True:
            try:
                await ws.receive(timeout=20)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd is not None else None


async def test_sigterm_with_enqueued_work_on_rq_exits_in_time(
    tmp_path: Path, server_name: str
) -> None:
    with (
        RedisServer() as redis_server,
        fault_run(
            redis_server,
            tmp_path,
            server=server_name,
            ENVELOPE_TEST_DRAIN_SECONDS=str(DRAIN),
        ) as run,
    ):
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(client(run.port)) for _ in range(3)]
            for n, ws in enumerate(clients):
                assert (await ws.request("dtest.add", {"a": n, "b": 1})).p == {"total": n + 1}
            # One more job each, still queued or running when the server is told to stop.
            for ws in clients:
                i = await ws.send("dtest.sleep", {"seconds": 30})
                while State.QUEUED.value not in ws.states(i):
                    await ws.receive()
            seconds = await anyio.to_thread.run_sync(exit_seconds, run.server.process, DRAIN + 2)
            assert seconds <= DRAIN + 2, f"{server_name} took {seconds:.1f} s to exit"
            for ws in clients:
                assert await closing_code(ws) == 4012


async def test_sigterm_in_thread_mode_delivers_results_that_arrive_during_the_drain(
    tmp_path: Path, server_name: str
) -> None:
    drain = 5.0
    with (
        RedisServer() as redis_server,
        fault_run(
            redis_server,
            tmp_path,
            worker=False,
            server=server_name,
            ENVELOPE_TEST_DEFERRED="thread",
            ENVELOPE_TEST_DRAIN_SECONDS=str(drain),
        ) as run,
    ):
        async with client(run.port) as first, client(run.port) as second:
            # Six one-second jobs for four pool threads: they end during the drain.
            sent = {
                ws: [await ws.send("dtest.sleep", {"seconds": 1}) for _ in range(3)]
                for ws in (first, second)
            }
            for ws, ids in sent.items():
                for i in ids:
                    while State.QUEUED.value not in ws.states(i):
                        await ws.receive()
            stopping = anyio.to_thread.run_sync(exit_seconds, run.server.process, drain + 2)
            async with anyio.create_task_group() as tg:
                seconds: list[float] = []

                async def stop() -> None:
                    seconds.append(await stopping)

                tg.start_soon(stop)
                for ws, ids in sent.items():
                    assert await closing_code(ws) == 4012
                    # Every result came before the restart notice and the close.
                    for i in ids:
                        assert ws.states(i)[-1] == "s", (i, ws.states(i))
            assert seconds[0] <= drain + 2
