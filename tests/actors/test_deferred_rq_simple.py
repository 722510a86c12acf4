"""Deferred handlers on a real non-forking worker (`EnvelopeSimpleWorker`), end to end.

A run of its own (queue, channel-layer prefix, sqlite file) with a real daphne server,
a real `manage.py rqworker --worker-class actors.workers.EnvelopeSimpleWorker` and
real websocket clients. The workers that get killed have runs of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from envelope import State
from tests.actors.rq_support import (
    ASGI_APP,
    SETTINGS,
    SIMPLE,
    Worker,
    deferred_run,
    running_worker,
    wait_until,
    ws_client,
)
from tests.processes import daphne_server, open_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with deferred_run(redis_url, tmp_path_factory.mktemp("rq-simple")) as run:
        yield run


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Worker]:
    with running_worker(env, Path(env["ENVELOPE_TEST_TMP"]) / "worker.log", *SIMPLE) as proc:
        yield proc


def _pids(client: Any, i: str) -> list[int]:
    """The pids `dtest.sleep` reported (as progress) for request `i`."""
    return [e.p["pid"] for e in client.seen if e.i == i and e.s is State.RUNNING and e.p]


@pytest.fixture(scope="module")
def port(env: dict[str, str], worker: Worker) -> Iterator[int]:
    with daphne_server(ASGI_APP, SETTINGS, **env) as p:
        yield p


async def test_jobs_run_in_the_worker_process_itself(port: int, worker: Worker) -> None:
    async with ws_client(port) as client:
        for n in range(3):
            reply = await client.request("dtest.sleep", {"seconds": 0}, i=f"simple-pid-{n}")
            assert reply.s is State.SUCCESS
            assert _pids(client, f"simple-pid-{n}") == [worker.proc.pid]  # no work horse


async def test_success_with_progress_and_the_trace_under_the_same_i(
    port: int, worker: Worker
) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.add", {"a": 40, "b": 2, "steps": 2}, i="simple-add")
        assert reply.s is State.SUCCESS and reply.p == {"total": 42}
        assert client.states("simple-add") == ["q", "r", "r", "r", "s"]

    def events() -> list[dict[str, Any]]:
        found = []
        for line in worker.logged().splitlines():
            if '"simple-add"' in line and line.startswith("{"):
                found.append(json.loads(line))
        return [e for e in found if e["event"] in ("job.started", "job.finished")]

    started, finished = await wait_until(lambda: len(events()) == 2 and events())
    assert started["event"] == "job.started" and finished["outcome"] == "s"
    assert started["process"] == finished["process"] == worker.proc.pid


async def test_rq_logs_one_line_per_job_the_trace_log_the_rest(port: int, worker: Worker) -> None:
    # RQ's "Successfully completed job ..." is DEBUG on this worker (job.finished says
    # the same, with the duration); its "Job OK" stays.
    async with ws_client(port) as client:
        reply = await client.request("dtest.add", {"a": 1, "b": 2}, i="simple-rq-log")
        assert reply.s is State.SUCCESS

    def job_id() -> str | None:
        for line in worker.logged().splitlines():
            if '"simple-rq-log"' in line and '"job.finished"' in line:
                return str(json.loads(line)["job"])
        return None

    job = await wait_until(job_id)

    def lines() -> list[str]:
        return [line for line in worker.logged().splitlines() if job in line]

    said = await wait_until(lambda: any("Job OK" in line for line in lines()) and lines())
    assert not any("Successfully completed" in line for line in said)


async def test_a_burst_on_many_connections_is_answered_in_order_through_one_reader(
    port: int, env: dict[str, str]
) -> None:
    # The server reads every connection's replies in batches, on one Redis connection
    # (actors.publishing.LayerInbox), instead of one channels_redis receive per message.
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(ws_client(port)) for _ in range(30)]
        sent = []
        for n, client in enumerate(clients):
            for k in range(2):
                i = await client.send("dtest.add", {"a": n, "b": k, "steps": 0}, i=f"b-{n}-{k}")
                sent.append((client, i, n + k))
        for client, i, total in sent:
            reply = await client.until_terminal(i, 30)
            assert reply.s is State.SUCCESS and reply.p == {"total": total}
            assert client.states(i) == ["q", "r", "s"]
        readers = redis.Redis.from_url(env["ENVELOPE_TEST_REDIS"])
        try:
            names = [c["name"] for c in readers.client_list()]
        finally:
            readers.close()
        assert names.count("envelope-inbox") == 1


async def test_failing_handler_answers_job_failed_and_the_worker_goes_on(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.boom", {}, i="simple-boom")
        assert reply.p["code"] == "job_failed" and "hunter2" not in str(reply.p)
        assert client.states("simple-boom") == ["q", "r", "f"]
        assert (await client.request("dtest.add", {"a": 1, "b": 1})).p == {"total": 2}


async def test_failure_answers_its_code(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.refuse", {"why": "simple"})
        assert reply.p == {
            "code": "app.refused",
            "message": "The app refused this.",
            "reason": "simple",
        }


async def test_writes_commit_on_success_and_roll_back_on_a_failure(port: int) -> None:
    async with ws_client(port) as client:
        assert (await client.request("dtest.write", {"name": "simple-ok"})).s is State.SUCCESS
        bad = await client.request("dtest.write", {"name": "simple-bad", "fail": True})
        assert bad.p["code"] == "app.refused"
        assert (await client.request("dtest.count", {"prefix": "simple-"})).p == {"total": 1}


async def test_timeout_interrupts_the_job_in_the_worker_and_rolls_back(
    port: int, worker: Worker
) -> None:
    async with ws_client(port) as client:
        started = time.monotonic()
        reply = await client.request(
            "dtest.slow", {"seconds": 30, "name": "simpleslow-1"}, i="simple-slow"
        )
        assert reply.s is State.FAILED and reply.p["code"] == "timeout"
        assert time.monotonic() - started < 15  # the 1 s timeout, not the 30 s sleep
        assert client.states("simple-slow") == ["q", "r", "r", "f"]
        assert (await client.request("dtest.count", {"prefix": "simpleslow-"})).p == {"total": 0}
        # The same process takes the next job.
        await client.request("dtest.sleep", {"seconds": 0}, i="simple-after")
        assert _pids(client, "simple-after") == [worker.proc.pid]


async def test_each_job_runs_in_its_connections_language_one_after_the_other(
    port: int,
) -> None:
    async with (
        ws_client(port, headers={"Accept-Language": "sv"}) as swedish,
        ws_client(port, headers={"Accept-Language": "de"}) as german,
        ws_client(port) as default,
    ):
        for _ in range(2):
            assert (await swedish.request("dtest.language", {})).p == {"code": "sv"}
            assert (await default.request("dtest.language", {})).p == {"code": "en"}
            assert (await german.request("dtest.language", {})).p == {"code": "de"}


async def test_no_database_connection_outlives_its_job(
    port: int, worker: Worker, env: dict[str, str]
) -> None:
    async with ws_client(port) as client:
        for _ in range(3):
            reply = await client.request("dtest.db_files", {})
            # One connection while a job runs: none left over from the jobs before it.
            assert reply.p == {"open": 1, "pid": worker.proc.pid}
    # And none once it is over (CONN_MAX_AGE is 0 here: closed after every job).
    await wait_until(lambda: open_files(worker.proc.pid, env["ENVELOPE_TEST_DB"]) == 0)


# -- a worker that dies in the middle of a job ------------------------------------------


@pytest.fixture
def own_run(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with deferred_run(redis_url, tmp_path) as run:
        yield run


async def _running_pid(client: Any, i: str) -> int:
    while True:
        env = await client.receive()
        if env.i == i and env.s is State.RUNNING and env.p:
            return int(env.p["pid"])


async def test_killed_worker_its_job_is_answered_when_a_worker_starts_again(
    own_run: dict[str, str], tmp_path: Path
) -> None:
    with contextlib.ExitStack() as processes:
        first = processes.enter_context(running_worker(own_run, tmp_path / "first.log", *SIMPLE))
        port = processes.enter_context(daphne_server(ASGI_APP, SETTINGS, **own_run))
        async with ws_client(port) as client:
            await client.send("dtest.sleep", {"seconds": 60}, i="simple-killed")
            assert await _running_pid(client, "simple-killed") == first.proc.pid
            first.kill_group()  # the job dies with its worker
            # What a supervisor does (systemd Restart=, rqworker-pool): start one again.
            started = time.monotonic()
            second = processes.enter_context(
                running_worker(own_run, tmp_path / "second.log", *SIMPLE)
            )
            reply = await client.until_terminal("simple-killed", timeout=30)
            assert reply.p["code"] == "job_failed"
            assert client.states("simple-killed") == ["q", "r", "r", "f"]
            assert time.monotonic() - started < 30  # not RQ's heartbeat expiry (90 s)
            assert (await client.request("dtest.add", {"a": 2, "b": 3})).p == {"total": 5}
        assert "job.abandoned" in second.logged()


async def test_rqworker_pool_respawns_a_killed_worker_and_its_job_is_answered(
    own_run: dict[str, str], tmp_path: Path
) -> None:
    pool_args = ("--num-workers", "2", *SIMPLE)
    with (
        running_worker(
            own_run, tmp_path / "pool.log", *pool_args, command="rqworker-pool", workers=2
        ) as pool,
        daphne_server(ASGI_APP, SETTINGS, **own_run) as port,
    ):
        async with ws_client(port) as client:
            await client.send("dtest.sleep", {"seconds": 60}, i="pool-killed")
            pid = await _running_pid(client, "pool-killed")
            assert pid != pool.proc.pid
            os.kill(pid, signal.SIGKILL)
            reply = await client.until_terminal("pool-killed", timeout=30)
            assert reply.p["code"] == "job_failed"
            for n in range(3):
                reply = await client.request("dtest.add", {"a": n, "b": 1})
                assert reply.p == {"total": n + 1}
