"""Deferred handlers on real RQ workers, end to end.

One run per server (daphne, then uvicorn): a unique queue and channel-layer prefix in the
shared Redis, a sqlite file shared by the real server and a real `manage.py rqworker`
(with `actors.workers.EnvelopeWorker`), and real websocket clients.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from envelope import State
from tests.actors.rq_support import (
    ASGI_APP,
    SETTINGS,
    Worker,
    deferred_run,
    rows,
    running_worker,
    wait_until,
    ws_client,
)
from tests.processes import SERVERS, asgi_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    """Every test runs under each server, with its own database, queue and worker."""
    return str(request.param)


@pytest.fixture(scope="module")
def env(
    server: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    with deferred_run(redis_url, tmp_path_factory.mktemp(f"rq-{server}")) as run:
        yield run


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Worker]:
    with running_worker(env, Path(env["ENVELOPE_TEST_TMP"]) / "worker.log") as proc:
        yield proc


@pytest.fixture(scope="module")
def port(server: str, env: dict[str, str], worker: Worker) -> Iterator[int]:
    with asgi_server(ASGI_APP, SETTINGS, server=server, **env) as p:
        yield p


async def test_state_sequence_with_progress_and_result(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.add", {"a": 20, "b": 22, "steps": 2}, i="rq-add")
        assert reply.s is State.SUCCESS and reply.t == "dtest.add"
        assert reply.p == {"total": 42}
        assert client.states("rq-add") == ["q", "r", "r", "r", "s"]
        progress = [env.p for env in client.seen if env.s is State.RUNNING and env.p]
        assert progress == [{"done": 1, "of": 2}, {"done": 2, "of": 2}]


async def test_failing_handler_answers_job_failed_with_a_safe_message(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.boom", {}, i="rq-boom")
        assert reply.s is State.FAILED and reply.p["code"] == "job_failed"
        assert "hunter2" not in str(reply.p) and "RuntimeError" not in str(reply.p)
        assert client.states("rq-boom") == ["q", "r", "f"]
        assert (await client.request("dtest.echo", {"text": "alive"})).p == {"text": "alive"}


async def test_failure_answers_its_code(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.refuse", {"why": "rq"})
        assert reply.p == {
            "code": "app.refused",
            "message": "The app refused this.",
            "reason": "rq",
        }


async def test_writes_commit_only_on_success_and_pushes_follow_the_commit(port: int) -> None:
    async with ws_client(port) as client:
        ok = await client.request("dtest.write", {"name": "rq-ok"}, i="rq-w-ok")
        assert ok.s is State.SUCCESS
        bad = await client.request("dtest.write", {"name": "rq-bad", "fail": True}, i="rq-w-bad")
        assert bad.p["code"] == "app.refused"
        pushes = [(env.t, env.i, env.p) for env in client.seen if env.s is None]
        assert pushes == [("dtest.written", "rq-w-ok", {"name": "rq-ok"})]
        ordered = [(env.s, env.t) for env in client.seen if env.i == "rq-w-ok"]
        assert ordered.index((None, "dtest.written")) < ordered.index(
            (State.SUCCESS, "dtest.write")
        )
        count = await client.request("dtest.count", {"prefix": "rq-"})
        assert count.p == {"total": 1}


async def test_permission_is_checked_on_the_worker_with_the_database(port: int) -> None:
    async with ws_client(port) as client:
        refused = await client.request("dtest.guarded", {"key": "rq-key"}, i="rq-g1")
        assert refused.p["code"] == "forbidden"
        assert client.states("rq-g1") == ["q", "r", "f"]
        await client.request("dtest.write", {"name": "rq-key"})
        allowed = await client.request("dtest.guarded", {"key": "rq-key"})
        assert allowed.s is State.SUCCESS


async def test_timeout_answers_timeout_and_rolls_back(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.slow", {"seconds": 5, "name": "rqslow-1"}, i="rq-slow")
        assert reply.s is State.FAILED and reply.p["code"] == "timeout"
        assert client.states("rq-slow") == ["q", "r", "r", "f"]  # r: started, r: its pid
        assert (await client.request("dtest.count", {"prefix": "rqslow-"})).p == {"total": 0}


async def test_job_that_starts_too_late_answers_timeout_without_running(port: int) -> None:
    async with ws_client(port) as client:
        await client.send("dtest.sleep", {"seconds": 1.2}, i="rq-busy")
        reply = await client.request("dtest.late", {"name": "rqlate-1"}, i="rq-late")
        assert reply.p["code"] == "timeout" and reply.p["start_timeout"] == 0.5
        assert client.states("rq-late") == ["q", "f"]
        assert (await client.until_terminal("rq-busy")).s is State.SUCCESS
        assert (await client.request("dtest.count", {"prefix": "rqlate-"})).p == {"total": 0}


async def test_retries_run_a_failed_job_again(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.flaky", {"name": "rq-flaky"}, i="rq-flaky")
        assert reply.s is State.SUCCESS and reply.p == {"total": 2}
        assert client.states("rq-flaky") == ["q", "r", "r", "s"]


async def test_reply_false_sends_only_failures(port: int) -> None:
    async with ws_client(port) as client:
        await client.send("dtest.quiet", {}, i="rq-quiet-ok")
        failed = await client.request("dtest.quiet", {"fail": True}, i="rq-quiet-f")
        assert failed.p["code"] == "app.refused"
        assert client.states("rq-quiet-ok") == [] and client.states("rq-quiet-f") == ["f"]


async def test_target_function_runs_on_the_worker(port: int) -> None:
    async with ws_client(port, "/ws/target/") as client:
        reply = await client.request("dtest.count", {"prefix": "none-"}, i="rq-target")
        assert reply.p == {"total": 1000}
        assert client.states("rq-target") == ["q", "r", "s"]


async def test_killed_work_horse_answers_job_failed_at_once(port: int, worker: Worker) -> None:
    async with ws_client(port) as client:
        await client.send("dtest.sleep", {"seconds": 60}, i="rq-horse")
        pid = None
        while pid is None:
            env = await client.receive()
            if env.i == "rq-horse" and env.s is State.RUNNING and env.p:
                pid = env.p["pid"]
        assert pid != worker.proc.pid
        os.kill(pid, signal.SIGKILL)
        reply = await client.until_terminal("rq-horse", timeout=10)
        assert reply.p["code"] == "job_failed"
        # The worker lives on and takes the next job.
        assert (await client.request("dtest.add", {"a": 1, "b": 1})).p == {"total": 2}
    assert any("job.lost" in line and '"rq-horse"' in line for line in worker.logged().splitlines())


async def test_job_of_a_closed_connection_sends_nothing_and_the_worker_goes_on(
    port: int, worker: Worker, redis_url: str
) -> None:
    async with ws_client(port) as client:
        address = (await client.request("dtest.address", {})).p["address"]
        await client.send("dtest.sleep", {"seconds": 0.8, "name": "rqgone-1"}, i="rq-gone")
        assert (await client.receive()).s is State.QUEUED
    server_redis = redis.Redis.from_url(redis_url)
    try:
        await wait_until(lambda: server_redis.exists(f"envelope:gone:{address}"))
    finally:
        server_redis.close()
    await wait_until(
        lambda: any(
            "job.connection_gone" in line and '"rq-gone"' in line
            for line in worker.logged().splitlines()
        )
    )

    def finished_line() -> Any:
        return [
            line
            for line in worker.logged().splitlines()
            if '"rq-gone"' in line and "job.finished" in line
        ]

    lines = await wait_until(finished_line)
    assert json.loads(lines[0])["outcome"] == "s"
    async with ws_client(port) as client:
        assert (await client.request("dtest.count", {"prefix": "rqgone-"})).p == {"total": 1}


async def test_connection_rows_online_last_action_and_close_code(
    port: int, env: dict[str, str]
) -> None:
    db = env["ENVELOPE_TEST_DB"]

    def row(address: str) -> Any:
        found = rows(
            db,
            "SELECT online, online_at, offline_at, last_action, close_code "
            "FROM actors_connection WHERE channel_name = ?",
            address,
        )
        return found[0] if found else None

    async with ws_client(port) as client:
        address = (await client.request("dtest.address", {})).p["address"]
        online, online_at, offline_at, first_action, _ = await wait_until(lambda: row(address))
        assert online == 1 and online_at and offline_at is None
        # ENVELOPE_CONNECTION_UPDATE_INTERVAL is 1 s here: a frame after it moves last_action.
        await anyio.sleep(1.2)
        await client.request("dtest.echo", {"text": "tick"})
        await wait_until(lambda: row(address)[3] > first_action)
        await client.ws.close(code=4001)
    closed = await wait_until(lambda: (r := row(address))[0] == 0 and r)
    assert closed[2] is not None and closed[4] == 4001
    # The sync signals fired on the worker (their receivers record Group rows).
    wanted = (f"created:{address}", f"closed:{address}")
    await wait_until(
        lambda: len(rows(db, "SELECT name FROM auth_group WHERE name IN (?, ?)", *wanted)) == 2
    )


async def test_result_ttl_keeps_the_job_result_in_redis(
    port: int, worker: Worker, redis_url: str
) -> None:
    async with ws_client(port) as client:
        assert (await client.request("dtest.kept", {"n": 7}, i="rq-kept")).p == {"total": 7}

    def job_id() -> Any:
        for line in worker.logged().splitlines():
            if '"rq-kept"' in line and "job.finished" in line:
                return json.loads(line)["job"]
        return None

    job = await wait_until(job_id)
    client = redis.Redis.from_url(redis_url)
    try:
        # `job.finished` is logged from inside the job; RQ sets the TTL just after it
        # returns, so the key may still be without one (-1) for a moment.
        def ttl_set() -> Any:
            ttl = client.ttl(f"rq:job:{job}")
            return None if ttl == -1 else ttl  # -2 (no key) fails the assertion below

        ttl = await wait_until(ttl_set)
        assert 0 < ttl <= 30
    finally:
        client.close()


async def test_job_subscribes_the_connection_and_its_pushes_are_batched(port: int) -> None:
    async with ws_client(port) as client:
        assert (await client.request("dtest.join", {"topic": "rq.room"})).s is State.SUCCESS
        assert "rq.room" in (await client.request("topic.list", {})).p["topics"]
        reply = await client.request("dtest.announce", {"topic": "rq.room", "count": 4}, i="rq-ann")
        assert reply.p == {"total": 4}
        batches = [env for env in client.seen if env.t == "batch" and env.i == "rq-ann"]
        assert len(batches) == 1 and len(batches[0].p["items"]) == 4
        order = [(env.t, env.s) for env in client.seen if env.i == "rq-ann"]
        assert order == [
            ("dtest.announce", State.QUEUED),
            ("dtest.announce", State.RUNNING),
            ("batch", None),
            ("dtest.announce", State.SUCCESS),
        ]
