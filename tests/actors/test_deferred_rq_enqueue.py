"""Enqueueing from the server's event loop (`actors.deferred._rq_enqueue`): a burst of
requests shares a bounded set of Redis connections, and a queue whose connection is not
plain TCP (here a Unix socket) is enqueued through a thread and answered the same. Real
daphne, a real `rqworker`, real clients, the queues on a Redis of their own."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis

from benchmarks._redis import PeakClients, RedisServer
from tests.actors.rq_support import (
    ASGI_APP,
    SETTINGS,
    SIMPLE,
    cleanup_redis,
    migrate,
    run_env,
    running_worker,
    ws_client,
)
from tests.processes import daphne_server

pytestmark = pytest.mark.slow

#: Redis connections a server process enqueues through, at most (actors._blocking).
MAX_CONNECTIONS = 16


@contextlib.contextmanager
def queues_on(redis_url: str, rq_url: str, tmp: Path) -> Iterator[dict[str, str]]:
    env = run_env(redis_url, tmp, ENVELOPE_TEST_RQ=rq_url, ENVELOPE_TEST_TRACKING="0")
    migrate(env)
    try:
        yield env
    finally:
        shared = redis.Redis.from_url(redis_url)
        cleanup_redis(shared, env)
        shared.close()


async def test_a_burst_enqueues_through_a_bounded_number_of_redis_connections(
    redis_url: str, tmp_path: Path
) -> None:
    with (
        RedisServer() as queues,
        queues_on(redis_url, queues.url, tmp_path) as env,
        running_worker(env, tmp_path / "worker.log", *SIMPLE),
        daphne_server(ASGI_APP, SETTINGS, **env) as port,
    ):
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(ws_client(port)) for _ in range(40)]
            idle = queues.client_count()  # the worker's
            with PeakClients(queues.url) as peak:
                async with anyio.create_task_group() as tg:
                    for n, client in enumerate(clients):
                        p = {"a": n, "b": 1, "steps": 0}
                        tg.start_soon(client.request, "dtest.add", p)
            # The worker may use two more than when idle (a reply from its timer's thread).
            assert 0 < peak.peak - idle <= MAX_CONNECTIONS + 2
            assert [c.seen[-1].p for c in clients] == [{"total": n + 1} for n in range(40)]


async def test_a_queue_on_a_unix_socket_is_enqueued_and_answered(
    redis_url: str, tmp_path: Path
) -> None:
    sock = tmp_path / f"rq-{uuid.uuid4().hex[:6]}.sock"
    with (
        RedisServer("--unixsocket", str(sock), "--unixsocketperm", "700") as queues,
        queues_on(redis_url, f"unix://{sock}?db=0", tmp_path) as env,
        running_worker(env, tmp_path / "worker.log", *SIMPLE),
        daphne_server(ASGI_APP, SETTINGS, **env) as port,
    ):
        async with ws_client(port) as client:
            reply = await client.request("dtest.add", {"a": 2, "b": 3, "steps": 0}, i="unix")
            assert reply.p == {"total": 5}
            assert client.states("unix") == ["q", "r", "s"]
        assert queues.client_count() >= 1
