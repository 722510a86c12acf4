"""Faults around RQ: a worker killed with its horse, and Redis going away.

Each test has its own run (queue, layer prefix, database) and processes; the Redis that
is stopped is a private `redis-server`, never the shared one.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
import redis

from envelope import State
from tests.actors.rq_support import (
    ASGI_APP,
    SETTINGS,
    Worker,
    cleanup_redis,
    migrate,
    python_snippet,
    run_env,
    ws_client,
)
from tests.processes import asgi_server, private_redis

pytestmark = pytest.mark.slow


async def test_worker_killed_with_its_horse_is_answered_when_rq_reclaims_the_job(
    redis_url: str, tmp_path: Path, server_name: str
) -> None:
    env = run_env(redis_url, tmp_path)
    migrate(env)
    client_redis = redis.Redis.from_url(redis_url)
    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.wait_ready(client_redis)
        with asgi_server(ASGI_APP, SETTINGS, server=server_name, **env) as port:
            async with ws_client(port) as client:
                await client.send("dtest.sleep", {"seconds": 60}, i="rq-dead")
                while not any(
                    e.i == "rq-dead" and e.s is State.RUNNING and e.p for e in client.seen
                ):
                    await client.receive()
                worker.kill_group()
                queue = env["ENVELOPE_TEST_QUEUE"]
                reclaim = (
                    "import time\nfrom actors.workers import reclaim_abandoned\n"
                    f"print(reclaim_abandoned({queue!r}, timestamp=time.time() + {{}}))"
                )
                # Its heartbeat has not expired yet: RQ does not reclaim it now ...
                assert python_snippet(env, reclaim.format(0)).split()[-1] == "0"
                assert client.states("rq-dead") == ["q", "r", "r"]
                # ... but once it has (min(job timeout, 30 s) + 60 s = 90 s here), the
                # clean-up answers it through the job's failure callback.
                started = time.monotonic()
                assert python_snippet(env, reclaim.format(91)).split()[-1] == "1"
                reply = await client.until_terminal("rq-dead", timeout=10)
                assert reply.p["code"] == "job_failed"
                assert time.monotonic() - started < 10
                assert (await client.request("dtest.echo", {"text": "alive"})).s is State.SUCCESS
    finally:
        worker.stop()
        cleanup_redis(client_redis, env)
        client_redis.close()


async def test_redis_unreachable_answers_queue_unavailable_and_the_connection_stays(
    redis_url: str, tmp_path: Path, server_name: str
) -> None:
    with contextlib.ExitStack() as queues_redis:
        rq_url = queues_redis.enter_context(private_redis())
        env = run_env(redis_url, tmp_path, ENVELOPE_TEST_RQ=rq_url)
        try:
            with asgi_server(ASGI_APP, SETTINGS, server=server_name, **env) as port:
                async with ws_client(port) as client:
                    queues_redis.close()  # the queues' Redis goes away
                    reply = await client.request(
                        "dtest.add", {"a": 1, "b": 2}, i="rq-down", timeout=30
                    )
                    assert reply.s is State.FAILED
                    assert reply.p == {
                        "code": "queue_unavailable",
                        "message": "The job queue is unavailable; retry later.",
                    }
                    assert client.states("rq-down") == ["f"]
                    echo = await client.request("dtest.echo", {"text": "still here"})
                    assert echo.p == {"text": "still here"}
                    again = await client.request("dtest.add", {"a": 1, "b": 2}, timeout=30)
                    assert again.p["code"] == "queue_unavailable"
        finally:
            shared = redis.Redis.from_url(redis_url)
            cleanup_redis(shared, env)
            shared.close()
