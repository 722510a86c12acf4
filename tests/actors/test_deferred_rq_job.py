"""`EnvelopeJob` (the job class of `EnvelopeSimpleWorker`) restores every job as RQ's
`Job` does, field for field, on a real Redis: jobs queued, finished by a real RQ
worker, with and without the optional dates, in RQ's older date format and with dates
that are not RQ's; and its registries are RQ's."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import str_to_date, utcformat

from actors.deferred._rq_job import EnvelopeJob, format_date, parse_date


@pytest.fixture
def queue(redis_url: str) -> Iterator[Queue]:
    client = redis.Redis.from_url(redis_url)
    name = f"job-{uuid.uuid4().hex[:8]}"
    yield Queue(name, connection=client)
    keys = [*client.scan_iter(match=f"rq:*{name}*")]
    if keys:
        client.delete(*keys)
    client.close()


def _restored(cls: type[Job], queue: Queue, job_id: str, now: bool = False) -> dict[str, Any]:
    """`cls`'s restore of the job's hash, as `restore` and `fetch` make it (`now`: the
    job has no `created_at`, which each makes `now()`)."""
    skip = ("connection", "log", "created_at") if now else ("connection", "log")
    raw = queue.connection.hgetall(Job.redis_job_namespace_prefix + job_id)
    job = cls(job_id, connection=queue.connection, serializer=queue.serializer)
    job.restore(raw)
    found = {k: v for k, v in vars(job).items() if k not in skip}
    fetched = cls.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
    assert {k: v for k, v in vars(fetched).items() if k not in skip} == found
    return {k: v for k, v in vars(job).items() if k not in ("connection", "log")}


def _same_as_rq(queue: Queue, job_id: str) -> dict[str, Any]:
    ours = _restored(EnvelopeJob, queue, job_id)
    theirs = _restored(Job, queue, job_id)
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert ours[name] == value, name
        assert type(ours[name]) is type(value), name
        if isinstance(value, datetime.datetime):
            assert ours[name].tzinfo == value.tzinfo, name
    return ours


def test_a_queued_job_is_restored_as_rq_restores_it(queue: Queue) -> None:
    job = queue.enqueue("builtins.len", "abc", job_timeout=30, result_ttl=50, meta={"x": 1})
    fields = _same_as_rq(queue, job.id)
    assert fields["enqueued_at"] is not None and fields["started_at"] is None
    assert fields["ended_at"] is None and fields["last_heartbeat"] is None


def test_a_finished_job_with_all_its_dates_is_restored_as_rq_restores_it(
    queue: Queue,
) -> None:
    job = queue.enqueue("builtins.len", "abcd")
    SimpleWorker([queue], connection=queue.connection, job_class=EnvelopeJob).work(burst=True)
    fields = _same_as_rq(queue, job.id)
    assert fields["_status"] == "finished"
    assert None not in (fields["started_at"], fields["ended_at"], fields["last_heartbeat"])
    assert fields["started_at"].microsecond or fields["ended_at"].microsecond  # RQ's %f


def test_a_failed_job_with_a_json_serializer_is_restored_as_rq_restores_it(
    redis_url: str, queue: Queue
) -> None:
    queue = Queue(queue.name, connection=queue.connection, serializer=JSONSerializer)
    job = queue.enqueue("builtins.len", 5)  # TypeError
    SimpleWorker(
        [queue], connection=queue.connection, job_class=EnvelopeJob, serializer=JSONSerializer
    ).work(burst=True)
    fields = _same_as_rq(queue, job.id)
    assert fields["_status"] == "failed"


@pytest.mark.parametrize(
    "dates",
    [
        {"created_at": "", "enqueued_at": ""},  # empty: RQ's `now()` and None
        {"started_at": "2026-11-27T17:06:16Z"},  # RQ's older format, without %f
        {
            "ended_at": "2026-01-02T03:04:05.000000Z",
            "last_heartbeat": "1999-12-31T23:59:59.999999Z",
        },
    ],
)
def test_optional_and_older_dates_are_restored_as_rq_restores_them(
    queue: Queue, dates: dict[str, str]
) -> None:
    job = queue.enqueue("builtins.len", "abc")
    queue.connection.hset(job.key, mapping=dates)
    if dates.get("created_at") == "":
        ours = _restored(EnvelopeJob, queue, job.id, now=True)
        theirs = _restored(Job, queue, job.id, now=True)
        assert abs(ours.pop("created_at") - theirs.pop("created_at")).total_seconds() < 5
        assert ours == theirs
    else:
        _same_as_rq(queue, job.id)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T17:06:16.384558Z",
        b"2026-11-27T17:06:16.000001Z",
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
        "2026-11-27T17:06:16Z",
        "2026-11-27T17:06:16.5Z",  # strptime's %f takes 1 to 6 digits
        "\uff12\uff10\uff12\uff16-11-27T17:06:16.384558Z",  # fullwidth digits: RQ reads them
    ],
)
def test_parse_date_equals_rqs(text: str | bytes) -> None:
    assert parse_date(text) == str_to_date(text)
    assert parse_date(text).tzinfo == str_to_date(text).tzinfo


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-27T17:06:16.384558Z",  # month 13
        "2026-02-30T17:06:16.384558Z",
        "2026-11-27 17:06:16.384558Z",
        "2026-11-27T17:06:16.384558",
        "2026-11-27T17:06:16.384558+00:00",
        "garbage",
    ],
)
def test_parse_date_refuses_what_rq_refuses(text: str) -> None:
    with pytest.raises(ValueError) as rq_error:
        str_to_date(text)
    with pytest.raises(ValueError) as ours:
        parse_date(text)
    assert str(ours.value) == str(rq_error.value)


def test_parse_date_reads_back_what_rq_writes() -> None:
    moment = datetime.datetime(2026, 11, 27, 17, 6, 16, 384558, tzinfo=datetime.UTC)
    for shift in range(0, 10**6, 99_991):
        when = moment + datetime.timedelta(microseconds=shift)
        assert parse_date(utcformat(when)) == str_to_date(utcformat(when)) == when


_UTC = datetime.UTC


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(datetime.datetime(2026, 11, 27, 17, 6, 16, 384558, tzinfo=_UTC), id="now"),
        pytest.param(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=_UTC), id="no-microseconds"),
        pytest.param(datetime.datetime(2026, 1, 2, 3, 4, 5, 7), id="naive"),
        pytest.param(
            datetime.datetime(
                2026, 12, 31, 23, 59, 59, 999999, datetime.timezone(datetime.timedelta(hours=5))
            ),
            id="another-zone",
        ),
        pytest.param(datetime.datetime(999, 1, 1, tzinfo=_UTC), id="year-999"),
        pytest.param(datetime.datetime(1, 1, 1, tzinfo=_UTC), id="year-1"),
        pytest.param(datetime.datetime(9999, 12, 31, 23, 59, 59, 999999), id="year-9999"),
    ],
)
def test_format_date_writes_what_rq_writes(when: datetime.datetime) -> None:
    assert format_date(when) == utcformat(when)


def test_its_registries_are_rqs(queue: Queue) -> None:
    job = EnvelopeJob.fetch(queue.enqueue("builtins.len", "abc").id, connection=queue.connection)
    rq_job = Job.fetch(job.id, connection=queue.connection)
    for name in ("started_job_registry", "failed_job_registry", "finished_job_registry"):
        ours, theirs = getattr(job, name), getattr(rq_job, name)
        assert type(ours) is type(theirs)
        assert (ours.key, ours.name) == (theirs.key, theirs.name)
        assert ours.serializer is theirs.serializer
        assert ours.job_class is EnvelopeJob and ours.connection is queue.connection


def test_a_script_interrupted_mid_answer_leaves_nothing_for_the_next(queue: Queue) -> None:
    # The worker's scripts keep one connection (no check for unread answers as the pool
    # makes when it hands one out): an exception raised while an answer is read (a
    # signal's handler: SIGTERM, SIGALRM) must not leave it for the next script.
    from actors.deferred._rq_scripts import RUN
    from actors.workers import EnvelopeSimpleWorker

    worker = EnvelopeSimpleWorker([queue], connection=queue.connection)
    assert worker._run(RUN, [], [2, "ECHO", "first"]) == b"first"
    connection = worker._own.connection  # type: ignore[union-attr]
    real = connection.read_response

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # after the script was sent, before its answer is read

    connection.read_response = interrupted
    with pytest.raises(KeyboardInterrupt):
        worker._run(RUN, [], [2, "ECHO", "second"])
    connection.read_response = real
    assert worker._run(RUN, [], [2, "ECHO", "third"]) == b"third"
    worker._own.close()  # type: ignore[union-attr]
