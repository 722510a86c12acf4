"""What a job costs the non-forking worker (`EnvelopeSimpleWorker`) in round trips to
Redis, and what it keeps while costing less: a fast job's `r` and `s` in one
channel-layer message (the client sees the same frames), a long job's `r` while it runs,
its pushes after its `r`, RQ's registries and counters as `rq info` reads them, and
`rq suspend`.

Real daphne, a real `rqworker --worker-class actors.workers.EnvelopeSimpleWorker`, real
websocket clients; the commands are those the test's own Redis saw (MONITOR, INFO
commandstats). A run of its own without connection tracking, whose jobs would be
counted too.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.suspension import resume, suspend
from rq.worker import Worker as RQWorker

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
from tests.processes import daphne_server

pytestmark = pytest.mark.slow

#: Redis commands per deferred request, all processes together: the server's enqueue,
#: the worker's RQ bookkeeping and reply, the server's channel-layer receive (see
#: docs/workers.md): 52 measured (54 before the job's end went into one script, 77
#: before the worker batched its bookkeeping and sent `r` with `s`); the bound leaves
#: room for heartbeats on a slow machine.
COMMANDS_PER_JOB = 58
#: The worker's round trips to Redis per job, from one job's start to the next's (see
#: docs/workers.md): 5 measured; 9 before RQ's dependents check went into one script
#: with the job's end (7), and the gone check, the reply and the answered mark into
#: another; the bound leaves room for a heartbeat.
TRIPS_PER_JOB = 5.5
#: The same while jobs wait in the queue (a burst): 3, the next job and its hash taken
#: by the script that writes the last one's end (4 when they were a script of their own).
TRIPS_PER_JOB_IN_A_BACKLOG = 3


@pytest.fixture(scope="module")
def env(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("rq-trips")
    with deferred_run(redis_url, tmp, ENVELOPE_TEST_TRACKING="0") as run:
        yield run


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Worker]:
    with running_worker(env, Path(env["ENVELOPE_TEST_TMP"]) / "worker.log", *SIMPLE) as proc:
        yield proc


@pytest.fixture(scope="module")
def port(env: dict[str, str], worker: Worker) -> Iterator[int]:
    with daphne_server(ASGI_APP, SETTINGS, **env) as p:
        yield p


@pytest.fixture
def rq_redis(env: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(env["ENVELOPE_TEST_REDIS"])
    yield client
    client.close()


@contextlib.contextmanager
def monitored(url: str) -> Iterator[list[str]]:
    """Every command Redis runs while the block runs (MONITOR), as text."""
    commands: list[str] = []
    client = redis.Redis.from_url(url)
    with client.monitor() as monitor:
        done = threading.Event()

        def listen() -> None:
            for entry in monitor.listen():
                commands.append(entry["command"])
                if done.is_set() and "envelope-test-monitor-end" in entry["command"]:
                    return

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        client.ping()  # MONITOR is on once a command of ours shows up
        try:
            yield commands
        finally:
            done.set()
            client.echo("envelope-test-monitor-end")
            reader.join(10)
            client.close()


def layer_sends(commands: list[str], env: dict[str, str], i: str) -> list[str]:
    """The channel-layer messages carrying request `i` that were sent (not the server's
    own bookkeeping of what it received: `$inflight`)."""
    prefix = f"ZADD asgi-{env['ENVELOPE_TEST_RUN']}"
    return [c for c in commands if c.startswith(prefix) and "$inflight" not in c and i in c]


def finished_job(queue: Queue, i: str) -> Job | None:
    """The job of request `i` once it is in `queue`'s finished registry."""
    for job in Job.fetch_many(queue.finished_job_registry.get_job_ids(), queue.connection):
        if job is not None and job.args and job.args[0]["i"] == i:
            return job
    return None


def _replies(client: Any, i: str) -> list[tuple[str, str | None]]:
    return [(e.t, e.s.value if e.s else None) for e in client.seen if e.i == i]


async def test_a_fast_job_sends_r_and_s_in_one_channel_layer_message(
    port: int, env: dict[str, str]
) -> None:
    with monitored(env["ENVELOPE_TEST_REDIS"]) as commands:
        async with ws_client(port) as client:
            for n in range(3):
                reply = await client.request(
                    "dtest.add", {"a": n, "b": 1, "steps": 0}, i=f"fast-{n}"
                )
                assert reply.p == {"total": n + 1}
                assert client.states(f"fast-{n}") == ["q", "r", "s"]  # the same frames
    for n in range(3):
        assert len(layer_sends(commands, env, f"fast-{n}")) == 1  # r and s together


async def test_the_last_reply_and_the_answered_mark_are_one_script(
    port: int, env: dict[str, str], rq_redis: redis.Redis
) -> None:
    queue = Queue(env["ENVELOPE_TEST_QUEUE"], connection=rq_redis)
    with monitored(env["ENVELOPE_TEST_REDIS"]) as entries:
        async with ws_client(port) as client:
            assert (await client.request("dtest.kept", {"n": 3}, i="marked")).p == {"total": 3}
        job = await wait_until(lambda: finished_job(queue, "marked"))  # after the reply
    assert job.meta["envelope_answered"] is True
    # The mark is written inside the script that sends the reply, right after its ZADD:
    # a crash cannot come between them (and answer the job a second time).
    writes = [c for c in entries if c.startswith(f"HSET {job.key} meta ")]
    assert len(writes) == 1
    at = entries.index(writes[0])
    assert entries[at - 2].startswith(f"ZADD asgi-{env['ENVELOPE_TEST_RUN']}")
    assert entries[at - 1].startswith(f"EXPIRE asgi-{env['ENVELOPE_TEST_RUN']}")


async def test_a_job_longer_than_the_hold_gets_its_r_while_it_runs(
    port: int, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    async with ws_client(port) as client:
        await client.send("dtest.wait", {"path": str(go)}, i="long")
        # The job waits for the file, which only exists once its `r` has come.
        assert [(await client.receive()).s, (await client.receive()).s] == [
            State.QUEUED,
            State.RUNNING,
        ]
        go.touch()
        assert (await client.until_terminal("long")).p == {"name": "go"}
        assert client.states("long") == ["q", "r", "s"]


async def test_progress_and_pushes_of_a_job_come_after_its_r(
    port: int, env: dict[str, str]
) -> None:
    with monitored(env["ENVELOPE_TEST_REDIS"]) as commands:
        async with ws_client(port) as client:
            await client.request("dtest.write", {"name": "trips-pushed"}, i="pushed")
            await client.request("dtest.add", {"a": 1, "b": 1, "steps": 2}, i="steps")
    assert _replies(client, "pushed") == [
        ("dtest.write", "q"),
        ("dtest.write", "r"),
        ("dtest.written", None),  # ctx.send(), on commit
        ("dtest.write", "s"),
    ]
    assert client.states("steps") == ["q", "r", "r", "r", "s"]
    # The held `r` went out on its own before the push; with the first progress update.
    assert len(layer_sends(commands, env, "pushed")) == 3
    assert len(layer_sends(commands, env, "steps")) == 3


async def test_rq_registries_and_counters_are_kept(
    port: int, env: dict[str, str], rq_redis: redis.Redis
) -> None:
    queue = Queue(env["ENVELOPE_TEST_QUEUE"], connection=rq_redis)
    (before,) = RQWorker.all(queue=queue)
    async with ws_client(port) as client:
        assert (await client.request("dtest.kept", {"n": 7}, i="kept")).p == {"total": 7}

    # The registry, the job, its result and the worker's state and counters are written
    # in one script, after the reply.
    job = await wait_until(lambda: finished_job(queue, "kept"))
    (after,) = RQWorker.all(queue=queue)
    assert after.get_state() == "idle" and after.get_current_job_id() is None
    assert after.successful_job_count > before.successful_job_count
    assert after.total_working_time > before.total_working_time
    assert job.get_status() == "finished"
    assert job.worker_name == after.name and job.ended_at is not None
    assert job.return_value() == {"total": 7}  # result_ttl=30: kept
    # What `rq info` and the dashboards show: the request's type and trace id.
    assert job.description == "actors.deferred._rq.perform(dtest.kept, i=kept)"
    assert queue.started_job_registry.count == 0
    # The job's end writes only what changed (its end, its status), not the whole hash
    # again: the hash holds every field RQ's whole save writes, with the same value
    # (`data` the same request: a server's zlib stream need not be compressed as RQ's).
    stored = rq_redis.hgetall(job.key)
    whole = job.to_dict(include_meta=False, include_result=False)
    encode = rq_redis.get_encoder().encode
    stored[b"data"] = zlib.decompress(stored[b"data"])
    whole["data"] = zlib.decompress(whole["data"])
    assert {field: stored.get(field.encode()) for field in whole} == {
        field: encode(value) for field, value in whole.items()
    }
    assert stored[b"status"] == b"finished" and stored[b"ended_at"] == stored[b"last_heartbeat"]
    assert job.id not in queue.get_job_ids()


async def test_redis_commands_per_job_stay_within_their_bound(
    port: int, rq_redis: redis.Redis
) -> None:
    jobs = 20
    async with ws_client(port) as client:
        await client.request("dtest.add", {"a": 0, "b": 0, "steps": 0})  # warm
        before = rq_redis.info("commandstats")
        for n in range(jobs):
            await client.request("dtest.add", {"a": n, "b": 0, "steps": 0})
        after = rq_redis.info("commandstats")
    calls = sum(after[k]["calls"] - before.get(k, {}).get("calls", 0) for k in after)
    calls -= 1  # the INFO itself
    assert calls / jobs <= COMMANDS_PER_JOB, {
        k: after[k]["calls"] - before.get(k, {}).get("calls", 0) for k in after
    }


# -- runs of their own -------------------------------------------------------------------


@pytest.fixture
def trips_run(redis_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], int, Path]]:
    """A run with a `TripsWorker` and daphne; its round-trip counts go to the Path."""
    trips = tmp_path / "trips"
    with (
        deferred_run(
            redis_url, tmp_path, ENVELOPE_TEST_TRACKING="0", ENVELOPE_TEST_TRIPS=str(trips)
        ) as run,
        running_worker(
            run, tmp_path / "worker.log", "--worker-class", "tests.actors.trips_worker.TripsWorker"
        ),
        daphne_server(ASGI_APP, SETTINGS, **run) as port,
    ):
        yield run, port, trips


def _trips(path: Path) -> list[int]:
    """Round trips between two jobs' starts: one job's, and the taking of the next."""
    counts = [int(line) for line in path.read_text().split()]
    return [b - a for a, b in itertools.pairwise(counts)]


async def test_worker_round_trips_per_job_stay_within_their_bound(
    trips_run: tuple[dict[str, str], int, Path],
) -> None:
    _, port, trips = trips_run
    jobs = 20
    async with ws_client(port) as client:
        for n in range(jobs + 2):
            await client.request("dtest.add", {"a": n, "b": 0, "steps": 0})
    per_job = _trips(trips)[1:]  # the worker warm
    assert len(per_job) == jobs
    assert sum(per_job) / jobs <= TRIPS_PER_JOB, per_job


async def test_a_backlog_is_taken_with_the_last_jobs_end_in_one_round_trip(
    trips_run: tuple[dict[str, str], int, Path], tmp_path: Path
) -> None:
    """A backlog made sure of: the worker holds a job that waits for a file while the 40
    are queued (on a busy machine the worker could otherwise keep up with the server's
    enqueues, and each job would find the queue empty)."""
    run, port, trips = trips_run
    jobs = 40
    go = tmp_path / "go"
    waiting = redis.Redis.from_url(run["ENVELOPE_TEST_REDIS"])
    async with (
        ws_client(port) as gate,
        ws_client(port) as one,
        ws_client(port) as two,
        ws_client(port) as three,
        ws_client(port) as four,
    ):
        await gate.send("dtest.wait", {"path": str(go)}, i="gate")
        assert [(await gate.receive()).s, (await gate.receive()).s] == [
            State.QUEUED,
            State.RUNNING,
        ]
        clients = [one, two, three, four]  # at most 16 jobs in progress per connection
        sent = [
            (client, n, await client.send("dtest.add", {"a": n, "b": 1, "steps": 0}))
            for n in range(jobs // 4)
            for client in clients
        ]
        queue = Queue(run["ENVELOPE_TEST_QUEUE"], connection=waiting)
        try:
            await wait_until(lambda: queue.count == jobs)
        finally:
            waiting.close()
        go.touch()
        assert (await gate.until_terminal("gate")).p == {"name": "go"}
        for client, n, i in sent:
            assert (await client.until_terminal(i)).p == {"total": n + 1}
            assert client.states(i) == ["q", "r", "s"]
    per_job = sorted(_trips(trips))
    assert len(per_job) == jobs  # the gate's start and each job's
    assert per_job[len(per_job) // 2] <= TRIPS_PER_JOB_IN_A_BACKLOG, str(per_job)
    # RQ's queues and registries as after RQ's own dequeue.
    rq_redis = redis.Redis.from_url(run["ENVELOPE_TEST_REDIS"])
    queue = Queue(run["ENVELOPE_TEST_QUEUE"], connection=rq_redis)
    try:
        await wait_until(lambda: queue.finished_job_registry.count == jobs + 1)
        assert queue.count == 0
        assert rq_redis.llen(queue.intermediate_queue_key) == 0
        assert queue.started_job_registry.count == 0
    finally:
        rq_redis.close()


@pytest.fixture
def own_run(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with deferred_run(redis_url, tmp_path, ENVELOPE_TEST_TRACKING="0") as run:
        yield run


@pytest.fixture
def own_queue(own_run: dict[str, str]) -> Iterator[Queue]:
    """The run's RQ queue, on a Redis client of the test's own, closed after the test."""
    client = redis.Redis.from_url(own_run["ENVELOPE_TEST_REDIS"])
    yield Queue(own_run["ENVELOPE_TEST_QUEUE"], connection=client)
    client.close()


async def test_a_job_with_dependents_takes_rqs_path_and_they_run(
    own_run: dict[str, str], own_queue: Queue, tmp_path: Path
) -> None:
    first = own_queue.enqueue("operator.add", 1, 2)
    then = own_queue.enqueue("operator.mul", 3, 4, depends_on=first)
    alone = own_queue.enqueue("operator.sub", 9, 4)
    assert then.get_status() == "deferred"
    with running_worker(own_run, tmp_path / "worker.log", *SIMPLE):
        await wait_until(lambda: then.get_status(refresh=True) == "finished")
        await wait_until(lambda: alone.get_status(refresh=True) == "finished")
    assert (first.return_value(), then.return_value(), alone.return_value()) == (3, 12, 5)
    assert first.get_status(refresh=True) == "finished"
    registry = own_queue.finished_job_registry
    assert {first.id, then.id, alone.id} <= set(registry.get_job_ids())
    assert own_queue.started_job_registry.count == 0


async def test_rq_suspend_keeps_jobs_queued_until_resume(
    own_run: dict[str, str], own_queue: Queue, tmp_path: Path
) -> None:
    suspend(own_queue.connection)
    try:
        with (
            running_worker(own_run, tmp_path / "worker.log", *SIMPLE),
            daphne_server(ASGI_APP, SETTINGS, **own_run) as port,
        ):
            await wait_until(
                lambda: [w.get_state() for w in RQWorker.all(queue=own_queue)] == ["suspended"]
            )
            async with ws_client(port) as client:
                await client.send("dtest.add", {"a": 2, "b": 2, "steps": 0}, i="suspended")
                assert (await client.receive()).s is State.QUEUED
                assert own_queue.count == 1  # not taken
                resume(own_queue.connection)
                assert (await client.until_terminal("suspended")).p == {"total": 4}
    finally:
        resume(own_queue.connection)


async def test_without_a_hold_r_is_sent_when_the_job_starts(redis_url: str, tmp_path: Path) -> None:
    with (
        deferred_run(
            redis_url, tmp_path, ENVELOPE_TEST_TRACKING="0", ENVELOPE_TEST_RUNNING_HOLD="0"
        ) as run,
        running_worker(run, tmp_path / "worker.log", *SIMPLE),
        daphne_server(ASGI_APP, SETTINGS, **run) as port,
        monitored(run["ENVELOPE_TEST_REDIS"]) as commands,
    ):
        async with ws_client(port) as client:
            await client.request("dtest.add", {"a": 1, "b": 2, "steps": 0}, i="unheld")
            assert client.states("unheld") == ["q", "r", "s"]
    assert len(layer_sends(commands, run, "unheld")) == 2


# -- the next job taken with the last one's end: stops put it back ------------------------


def _queued_and_taken(queue: Queue) -> tuple[list[str], int]:
    return queue.get_job_ids(), int(queue.connection.llen(queue.intermediate_queue_key))


async def test_max_jobs_puts_the_job_taken_with_the_last_end_back_in_front(
    own_run: dict[str, str], own_queue: Queue, tmp_path: Path
) -> None:
    jobs = [own_queue.enqueue("operator.add", n, 1) for n in range(6)]
    # A backlog from the first job on: each job's end takes the next one, the second
    # one's too, and the worker stops there (--max-jobs 2) without starting it.
    worker = Worker(own_run, tmp_path / "first.log", *SIMPLE, "--max-jobs", "2")
    try:
        assert worker.proc.wait(30) == 0
    finally:
        worker.stop()
    assert [j.get_status(refresh=True) for j in jobs[:3]] == ["finished", "finished", "queued"]
    assert _queued_and_taken(own_queue) == ([j.id for j in jobs[2:]], 0)  # in order, in front
    assert own_queue.started_job_registry.count == 0
    with running_worker(own_run, tmp_path / "second.log", *SIMPLE):
        await wait_until(lambda: own_queue.finished_job_registry.count == 6)
    assert [j.return_value() for j in jobs] == [1, 2, 3, 4, 5, 6]
    assert _queued_and_taken(own_queue) == ([], 0)


async def test_warm_shutdown_in_a_backlog_finishes_the_job_and_takes_no_other(
    own_run: dict[str, str], own_queue: Queue, tmp_path: Path
) -> None:
    slow = own_queue.enqueue("time.sleep", 1.5)
    rest = [own_queue.enqueue("operator.add", n, 1) for n in range(4)]  # a backlog
    with running_worker(own_run, tmp_path / "first.log", *SIMPLE) as worker:
        await wait_until(lambda: slow.get_status(refresh=True) == "started")
        worker.proc.send_signal(signal.SIGTERM)  # warm: this job, then stop
        assert worker.proc.wait(30) == 0
    assert slow.get_status(refresh=True) == "finished"
    assert [j.get_status(refresh=True) for j in rest] == ["queued"] * 4
    assert _queued_and_taken(own_queue) == ([j.id for j in rest], 0)
    with running_worker(own_run, tmp_path / "second.log", *SIMPLE):
        await wait_until(lambda: own_queue.finished_job_registry.count == 5)
    assert [j.return_value() for j in rest] == [1, 2, 3, 4]
