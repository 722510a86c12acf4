"""Redis restarts and hangs: a dependency's fault is not a restart.

One private `redis-server` holds the channel layer and the RQ queues, as in the example
app; the test stops it and starts it again on the same port (empty, as after a crash),
or freezes a separate queue Redis with SIGSTOP. daphne and an `EnvelopeWorker` are real
processes; the clients are real websockets.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks._redis import RedisServer
from envelope import Envelope, State
from tests.actors.rq_support import WsClient
from tests.faults.support import client, fault_run, session_cookie, wait_for

pytestmark = pytest.mark.slow


async def until_success(ws: WsClient, t: str, p: Any, timeout: float = 30) -> Envelope:
    """Send `t` until it succeeds; meanwhile it may only fail as unavailable (Redis is
    coming back: the layer's recovery, or the queue's one-second pause after a failure)."""
    with anyio.fail_after(timeout):
        while True:
            reply = await ws.request(t, p, timeout=timeout)
            if reply.s is State.SUCCESS:
                return reply
            assert reply.p["code"] in ("topics_unavailable", "queue_unavailable")
            await anyio.sleep(0.2)


async def test_redis_restart_closes_no_socket_and_everything_recovers(tmp_path: Path) -> None:
    with RedisServer() as redis_server, fault_run(redis_server, tmp_path) as run:
        cookie = session_cookie(run.env, "alice")
        async with client(run.port, cookie) as alice, client(run.port) as anonymous:
            assert (await alice.request("dtest.add", {"a": 1, "b": 2})).p == {"total": 3}

            redis_server.stop()
            started = time.monotonic()
            # During the outage: every socket stays open and answers what needs no Redis.
            for ws in (alice, anonymous):
                assert (await ws.request("connection.ping")).p == {"pong": True}
            # What needs Redis is answered at once, with a documented code.
            queued = await alice.request("dtest.add", {"a": 1, "b": 2}, i="outage-job")
            assert queued.p["code"] == "queue_unavailable"
            published = await alice.request("faults.notify_me", {"text": "x"}, i="outage-pub")
            assert published.p["code"] == "topics_unavailable"
            assert time.monotonic() - started < 5
            # A handshake during the outage succeeds (its user topic is joined later).
            async with client(run.port, cookie) as late:
                assert (await late.request("connection.ping")).p == {"pong": True}
                redis_server.start()

                # Back: the layer reader reconnected, the late socket joined its user
                # topic, and the worker takes jobs again.
                await until_success(alice, "faults.notify_me", {"text": "back"})
                notice = await late.receive()
                assert (notice.t, notice.p) == ("faults.notice", {"text": "back"})
                reply = await until_success(alice, "dtest.add", {"a": 2, "b": 2})
                assert reply.p == {"total": 4}
                assert (await late.request("dtest.add", {"a": 1, "b": 1})).p == {"total": 2}

            # No socket was closed, none was told to restart.
            for ws in (alice, anonymous):
                assert (await ws.request("connection.ping")).p == {"pong": True}
                assert all(env.t != "connection.closing" for env in ws.seen)
        # A close code, not digits of a timestamp (`...:01.401235Z` holds "4012").
        assert re.search(r"\b4012\b", run.server.output()) is None


async def test_a_job_running_through_a_redis_restart_is_answered_when_redis_is_back(
    tmp_path: Path,
) -> None:
    with RedisServer() as redis_server, fault_run(redis_server, tmp_path) as run:
        assert run.worker is not None
        async with client(run.port) as ws:
            await ws.send("dtest.sleep", {"seconds": 2, "name": "through"}, i="through")
            while ws.states("through") != ["q", "r", "r"]:  # started (`r` with its pid)
                await ws.receive()
            redis_server.stop()
            # The job ends while Redis is away: its answer waits, the worker stays.
            worker = run.worker
            wait_for(lambda: "_waiting" in worker.logged(), what="the job waiting for Redis")
            redis_server.start()

            reply = await ws.until_terminal("through", timeout=30)
            assert (reply.s, reply.p) == (State.SUCCESS, {"name": "through"})
            assert run.worker.proc.poll() is None
            # The worker takes jobs again.
            assert (await until_success(ws, "dtest.add", {"a": 5, "b": 5})).p == {"total": 10}
        assert "quitting" not in run.worker.logged()


async def test_a_hung_queue_redis_holds_up_neither_the_mailbox_nor_the_reply(
    tmp_path: Path,
) -> None:
    with (
        RedisServer() as layer,
        RedisServer() as queues,
        fault_run(layer, tmp_path, queues=queues) as run,
    ):
        async with client(run.port) as ws:
            assert (await ws.request("dtest.add", {"a": 1, "b": 2})).p == {"total": 3}
            queues.pause()  # SIGSTOP: connections stay open, nothing answers
            try:
                started = time.monotonic()
                await ws.send("dtest.add", {"a": 1, "b": 2}, i="hung")
                await ws.send("connection.ping", i="behind")
                pong = await ws.until_terminal("behind")
                assert pong.p == {"pong": True}
                # The ping did not wait for the enqueue: it was answered first.
                assert ws.states("hung") == []
                reply = await ws.until_terminal("hung")
                assert reply.p["code"] == "queue_unavailable"
                assert time.monotonic() - started < 5  # ENVELOPE_QUEUE_TIMEOUT is 2 s
                # Meanwhile more deferred requests are answered at once.
                again = await ws.request("dtest.add", {"a": 1, "b": 2})
                assert again.p["code"] == "queue_unavailable"
            finally:
                queues.resume()
            assert (await until_success(ws, "dtest.add", {"a": 2, "b": 3})).p == {"total": 5}


async def test_a_hung_layer_redis_answers_topics_unavailable_in_time_and_recovers(
    tmp_path: Path,
) -> None:
    with (
        RedisServer() as layer,
        RedisServer() as queues,
        fault_run(layer, tmp_path, queues=queues, worker=False) as run,
    ):
        cookie = session_cookie(run.env, "bob")
        async with client(run.port, cookie) as bob:
            assert (await bob.request("faults.notify_me", {"text": "1"})).s is State.SUCCESS
            layer.pause()
            try:
                started = time.monotonic()
                await bob.send("faults.notify_me", {"text": "2"}, i="frozen")
                await bob.send("connection.ping", i="behind")
                reply = await bob.until_terminal("frozen")
                assert reply.p["code"] == "topics_unavailable"
                assert time.monotonic() - started < 5  # ENVELOPE_LAYER_TIMEOUT is 2 s
                assert (await bob.until_terminal("behind")).p == {"pong": True}
                # While it is away, layer work is answered at once.
                started = time.monotonic()
                again = await bob.request("faults.notify_me", {"text": "3"})
                assert again.p["code"] == "topics_unavailable"
                assert time.monotonic() - started < 2  # not another timeout
            finally:
                layer.resume()
            await until_success(bob, "faults.notify_me", {"text": "4"})
            while True:  # the push of the publish that succeeded
                env = await bob.receive()
                if env.t == "faults.notice" and env.p == {"text": "4"}:
                    break


async def test_the_servers_reader_of_a_frozen_layer_redis_gives_up_in_time_and_reads_on(
    tmp_path: Path,
) -> None:
    # The server reads its connections' messages on one connection (`envelope-inbox`),
    # blocked in Redis for up to the layer's brpop_timeout at a time (channels_redis: 5 s;
    # 1 s here, not to wait out 5): frozen longer than that plus ENVELOPE_LAYER_TIMEOUT
    # (2 s), the read times out, the layer is reported away, and once Redis answers the
    # replies of a job reach their socket again, in order.
    with (
        RedisServer() as layer,
        RedisServer() as queues,
        fault_run(layer, tmp_path, queues=queues, FAULT_BRPOP_TIMEOUT="1") as run,
    ):
        async with client(run.port) as ws:
            assert (await ws.request("dtest.add", {"a": 1, "b": 2})).p == {"total": 3}
            layer.pause()
            try:
                wait_for(
                    lambda: "layer.unavailable" in run.server.output(),
                    timeout=15,
                    what="the reader's read timing out",
                )
            finally:
                layer.resume()
            wait_for(lambda: "layer.recovered" in run.server.output(), what="the recovery")
            reply = await ws.request("dtest.add", {"a": 2, "b": 3, "steps": 0}, i="after")
            assert reply.p == {"total": 5}
            assert ws.states("after") == ["q", "r", "s"]
            assert all(env.t != "connection.closing" for env in ws.seen)
