"""The enqueue's own script call (`actors.deferred._rq_enqueue`): the bytes redis-py
would send to run the commands RQ collects as the ARGV of `_rq_scripts.RUN`, the job RQ
would write, one reply read, a Redis that lost its scripts, and redis-py's answers to a
refused command. A real Redis (the suite's), RQ's own job building."""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Iterator

import anyio
import pytest
import redis
import redis.asyncio
from rq import Callback, Queue, Retry
from rq.job import Job

from actors.deferred._rq_enqueue import _evalsha, _packed, enqueue
from actors.deferred._rq_scripts import RUN


def job_function(req: dict[str, object]) -> None:
    """What the jobs would run (never run here)."""


def on_failure(job: Job, connection: object, *exc_info: object) -> None:
    """The jobs' failure callback (never called here)."""


@pytest.fixture
def queue(redis_url: str) -> Iterator[Queue]:
    client = redis.Redis.from_url(redis_url)
    queue = Queue(f"packing-{uuid.uuid4().hex[:8]}", connection=client)
    try:
        yield queue
    finally:
        for key in client.scan_iter(match=f"*{queue.name}*"):
            client.delete(key)
        for job_id in _enqueued:
            client.delete(Job.key_for(job_id))
        _enqueued.clear()
        client.srem("rq:queues", queue.key)
        client.close()


_enqueued: list[str] = []

#: The options a deferred request's job is enqueued with, in their shapes.
OPTIONS = [
    {},
    {"on_failure": Callback(on_failure)},
    {"on_failure": Callback(on_failure), "retry": Retry(max=3), "result_ttl": 0},
    {"job_timeout": 7, "result_ttl": 3600, "description": "naïve ☃ job"},
    {"retry": Retry(max=2, interval=[1, 5]), "ttl": 90},
]


def _request(n: int) -> dict[str, object]:
    return {"t": "bench.work", "i": f"é-{n}", "p": {"n": n, "f": 1.5, "b": b"\x00\xff"}}


def _readable(job_hash: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """`job_hash` less the job's times, its `data` decompressed (a zlib stream that RQ's
    `zlib.decompress` reads, compressed or not)."""
    times = {b"created_at", b"enqueued_at"}
    found = {f: v for f, v in job_hash.items() if f not in times}
    found[b"data"] = zlib.decompress(found[b"data"])
    return found


def _commands(queue: Queue, options: dict[str, object], n: int) -> list[tuple[object, ...]]:
    collected = queue.connection.pipeline()
    job_id = uuid.uuid4().hex
    _enqueued.append(job_id)
    queue.enqueue(job_function, _request(n), pipeline=collected, job_id=job_id, **options)
    commands = [args for args, _ in collected.command_stack]
    collected.reset()
    return commands


def _script_call(commands: list[tuple[object, ...]]) -> bytes:
    """What redis-py sends for EVALSHA of `RUN` with `commands` as its ARGV (each
    command's count of words, then its words; a two-word name as two words)."""
    argv: list[object] = []
    for args in commands:
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        argv += [len(args), *args]
    sha = hashlib.sha1(RUN.encode()).hexdigest()
    return b"".join(redis.asyncio.Connection().pack_command("EVALSHA", sha, 0, *argv))


def _sent(commands: list[tuple[object, ...]]) -> bytes:
    return _evalsha(*_packed(commands, redis.asyncio.Connection().encoder))


@pytest.mark.parametrize("n", range(len(OPTIONS)))
def test_the_bytes_are_redis_pys(queue: Queue, n: int) -> None:
    commands = _commands(queue, OPTIONS[n], n)
    assert _sent(commands) == _script_call(commands)


def test_every_kind_of_value_is_packed_as_redis_py_packs_it() -> None:
    commands: list[tuple[object, ...]] = [
        ("CONFIG GET", "maxmemory"),
        ("SET", "k", memoryview(b"view")),
        ("HSET", "h", "int", 12, "float", 0.1, "big", 10**30, "neg", -3, "text", "ünï ☃"),
        ("RPUSH", b"bytes-key", b"\r\n*1\r\n", "x" * 10_000),
    ]
    assert _sent(commands) == _script_call(commands)


def test_a_value_redis_py_refuses_is_refused() -> None:
    encoder = redis.asyncio.Connection().encoder
    with pytest.raises(redis.exceptions.DataError):
        _packed([("SET", "k", True)], encoder)
    with pytest.raises(redis.exceptions.DataError):
        _packed([("SET", "k", None)], encoder)


async def test_the_job_is_the_one_rq_writes(queue: Queue) -> None:
    """Enqueued here and with RQ's own `enqueue` (its pipeline, redis-py's client): the
    same hash but for the job's times, in the queue in order, readable by RQ."""
    options = {"on_failure": Callback(on_failure), "retry": Retry(max=2), "result_ttl": 60}
    ours, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    _enqueued.extend((ours, theirs))
    await enqueue(queue, job_function, _request(1), {**options, "job_id": ours})
    with queue.connection.pipeline() as pipe:
        queue.enqueue(job_function, _request(1), pipeline=pipe, job_id=theirs, **options)
        pipe.execute()
    assert queue.get_job_ids() == [ours, theirs]
    hashes = [queue.connection.hgetall(Job.key_for(job_id)) for job_id in (ours, theirs)]
    assert _readable(hashes[0]) == _readable(hashes[1])
    job = Job.fetch(ours, connection=queue.connection)
    assert job.args == (_request(1),)
    assert job.func is job_function
    assert job.retries_left == 2
    assert job.failure_callback is on_failure
    assert job.get_status() == "queued"


async def test_a_job_is_one_script_call_with_one_reply(queue: Queue) -> None:
    """The enqueue runs RQ's commands in one EVALSHA (no MULTI/EXEC), templated or not."""
    client = queue.connection
    job_ids = [uuid.uuid4().hex for _ in range(3)]
    _enqueued.extend(job_ids)
    before = client.info("commandstats")
    for k, job_id in enumerate(job_ids):  # the first built by RQ, the next templated
        await enqueue(queue, job_function, _request(k), {"job_id": job_id})
    after = client.info("commandstats")
    calls = {
        name: after[name]["calls"] - before.get(name, {}).get("calls", 0)
        for name in after
        if after[name]["calls"] != before.get(name, {}).get("calls", 0)
    }
    calls.pop("cmdstat_info")
    # RQ's own job (the first) sets its status alone first, as RQ does.
    assert calls == {
        "cmdstat_evalsha": 3,
        "cmdstat_sadd": 3,
        "cmdstat_hset": 4,
        "cmdstat_rpush": 3,
    }
    assert queue.get_job_ids() == job_ids


async def test_a_redis_that_lost_the_script_is_sent_it(queue: Queue) -> None:
    """After SCRIPT FLUSH (as after a Redis restart) the enqueue still lands: NOSCRIPT
    ran nothing, and the script itself is sent once; the next job is by its SHA1 again."""
    job_ids = [uuid.uuid4().hex for _ in range(3)]
    _enqueued.extend(job_ids)
    await enqueue(queue, job_function, _request(0), {"job_id": job_ids[0]})
    queue.connection.script_flush()
    before = queue.connection.info("commandstats")
    for k, job_id in enumerate(job_ids[1:], start=1):
        await enqueue(queue, job_function, _request(k), {"job_id": job_id})
    after = queue.connection.info("commandstats")
    assert after["cmdstat_eval"]["calls"] - before.get("cmdstat_eval", {}).get("calls", 0) == 1
    assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 2
    assert queue.get_job_ids() == job_ids
    for k, job_id in enumerate(job_ids):
        assert Job.fetch(job_id, connection=queue.connection).args == (_request(k),)


async def test_a_refused_command_raises_and_the_connection_goes_on(queue: Queue) -> None:
    """The queue's key of the wrong type: RPUSH fails inside the transaction, which
    raises redis-py's error (as its pipeline did); the next enqueue, on the same pooled
    connection, succeeds."""
    queue.connection.set(queue.key, "not a list")
    first = uuid.uuid4().hex
    _enqueued.append(first)
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        await enqueue(queue, job_function, _request(1), {"job_id": first})
    queue.connection.delete(queue.key)
    second = uuid.uuid4().hex
    _enqueued.append(second)
    await enqueue(queue, job_function, _request(2), {"job_id": second})
    assert queue.get_job_ids() == [second]


async def test_a_stale_pooled_connection_is_retried_once(queue: Queue) -> None:
    """Redis drops the pooled connection (CLIENT KILL, as at a restart): the next
    enqueue still lands, on a new connection."""
    job_ids = [uuid.uuid4().hex for _ in range(2)]
    _enqueued.extend(job_ids)
    await enqueue(queue, job_function, _request(1), {"job_id": job_ids[0]})
    queue.connection.client_kill_filter(_type="normal", skipme=True)
    await enqueue(queue, job_function, _request(2), {"job_id": job_ids[1]})
    assert queue.get_job_ids() == job_ids


@pytest.mark.parametrize("n", range(len(OPTIONS)))
async def test_later_jobs_of_a_shape_are_the_ones_rq_writes(queue: Queue, n: int) -> None:
    """The first job of a shape is built by RQ, the next ones from its template: each
    hash is RQ's own for that request but for the job's times, in RQ's format."""
    options = OPTIONS[n]
    ours = [uuid.uuid4().hex for _ in range(3)]
    theirs = [uuid.uuid4().hex for _ in range(3)]
    _enqueued.extend((*ours, *theirs))
    for k, job_id in enumerate(ours):
        await enqueue(queue, job_function, _request(k), {**options, "job_id": job_id})
    for k, job_id in enumerate(theirs):
        with queue.connection.pipeline() as pipe:
            queue.enqueue(job_function, _request(k), pipeline=pipe, job_id=job_id, **options)
            pipe.execute()
    assert queue.get_job_ids() == [*ours, *theirs]
    for k in range(3):
        mine, rqs = (queue.connection.hgetall(Job.key_for(ids[k])) for ids in (ours, theirs))
        assert _readable(mine) == _readable(rqs)
        job = Job.fetch(ours[k], connection=queue.connection)
        assert job.args == (_request(k),)
        assert job.func is job_function
        assert job.created_at is not None and job.enqueued_at is not None
        assert job.get_status() == "queued"


@pytest.mark.parametrize(
    ("size", "compressed"),
    # Up to 1 KiB of pickled request stored, larger compressed.
    [pytest.param(10, False, id="small-stored"), pytest.param(5000, True, id="large")],
)
async def test_a_templated_jobs_data_is_a_zlib_stream_rqs_job_reads(
    queue: Queue, size: int, compressed: bool
) -> None:
    """A templated job's `data`: a small request's in a zlib stream of stored blocks (no
    compression: zlib's set-up per call cost more than the request), a large one's as RQ
    compresses it; RQ's own `Job.fetch` restores the function and the request."""
    job_ids = [uuid.uuid4().hex for _ in range(2)]
    _enqueued.extend(job_ids)
    reqs = [{**_request(k), "text": "ab" * (size // 2)} for k in range(2)]
    for req, job_id in zip(reqs, job_ids, strict=True):  # the first built by RQ
        await enqueue(queue, job_function, req, {"job_id": job_id})
    data = queue.connection.hget(Job.key_for(job_ids[1]), "data")
    assert data is not None
    raw = zlib.decompress(data)
    assert (data == zlib.compress(raw)) is compressed
    assert (len(data) > len(raw)) is not compressed
    for req, job_id in zip(reqs, job_ids, strict=True):
        job = Job.fetch(job_id, connection=queue.connection)
        assert job.func is job_function
        assert job.args == (req,)
        assert job.kwargs == {}


async def test_a_job_of_a_shape_rq_builds_differently_is_still_rqs(queue: Queue) -> None:
    """Options the template does not know (a `meta` dict) are not templated: every job
    of that shape is built by RQ."""
    job_ids = [uuid.uuid4().hex for _ in range(2)]
    _enqueued.extend(job_ids)
    for k, job_id in enumerate(job_ids):
        options = {"meta": {"k": k}, "job_id": job_id}
        await enqueue(queue, job_function, _request(k), options)
    for k, job_id in enumerate(job_ids):
        job = Job.fetch(job_id, connection=queue.connection)
        assert job.meta == {"k": k}
        assert job.args == (_request(k),)


def _calls(queue: Queue, command: str) -> int:
    return int(queue.connection.info("commandstats").get(command, {}).get("calls", 0))


async def test_each_job_of_a_shape_keeps_the_callers_own_description(queue: Queue) -> None:
    """A description given with each job (as the server gives a deferred request's) is
    each job's own, templated or not: the same hash as RQ's enqueue with it."""
    ours = [uuid.uuid4().hex for _ in range(3)]
    theirs = [uuid.uuid4().hex for _ in range(3)]
    _enqueued.extend((*ours, *theirs))
    described = [f"job_function(bench.work, i=é-{k}) ☃" for k in range(3)]
    before = _calls(queue, "cmdstat_hset")
    for k, job_id in enumerate(ours):  # the first built by RQ, the next templated
        options = {"job_id": job_id, "description": described[k]}
        await enqueue(queue, job_function, _request(k), options)
    # RQ's own job sets its status alone first; the templated ones do not.
    assert _calls(queue, "cmdstat_hset") - before == 4
    for k, job_id in enumerate(theirs):
        with queue.connection.pipeline() as pipe:
            queue.enqueue(
                job_function,
                _request(k),
                pipeline=pipe,
                job_id=job_id,
                description=described[k],
            )
            pipe.execute()
    for k in range(3):
        mine, rqs = (queue.connection.hgetall(Job.key_for(ids[k])) for ids in (ours, theirs))
        assert _readable(mine) == _readable(rqs)
        job = Job.fetch(ours[k], connection=queue.connection)
        assert job.description == described[k]
        assert job.args == (_request(k),)


def _connections_made(client: redis.Redis) -> int:
    return int(client.info("stats")["total_connections_received"])


async def test_one_enqueue_after_another_goes_on_the_same_connection(queue: Queue) -> None:
    """Kept between enqueues: no new connection, and each enqueue reads its own reply."""
    job_ids = [uuid.uuid4().hex for _ in range(5)]
    _enqueued.extend(job_ids)
    await enqueue(queue, job_function, _request(0), {"job_id": job_ids[0]})
    made = _connections_made(queue.connection)
    for k, job_id in enumerate(job_ids[1:], start=1):
        await enqueue(queue, job_function, _request(k), {"job_id": job_id})
    assert _connections_made(queue.connection) == made
    assert queue.get_job_ids() == job_ids


async def test_an_enqueue_interrupted_before_its_reply_leaves_no_answer_unread(
    queue: Queue,
) -> None:
    """Redis holds the script (CLIENT PAUSE WRITE) past the caller's deadline: the
    enqueue is cancelled with its reply unread, its connection dropped; the next
    enqueue, once Redis answers again, reads its own reply, on a new connection."""
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    _enqueued.extend((first, second))
    await enqueue(queue, job_function, _request(0), {"job_id": uuid.uuid4().hex})  # warm
    queue.connection.delete(queue.key)
    made = _connections_made(queue.connection)
    queue.connection.execute_command("CLIENT", "PAUSE", 300, "WRITE")
    with anyio.move_on_after(0.05) as scope:
        await enqueue(queue, job_function, _request(1), {"job_id": first})
    assert scope.cancelled_caught
    await anyio.sleep(0.4)  # the pause over
    await enqueue(queue, job_function, _request(2), {"job_id": second})
    assert second in queue.get_job_ids()
    assert Job.fetch(second, connection=queue.connection).args == (_request(2),)
    assert _connections_made(queue.connection) == made + 1  # the enqueue's new one
