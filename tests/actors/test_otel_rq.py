"""One trace from the socket to a real RQ worker process and back.

The server side runs in this process (a real consumer behind Channels' communicator, on
a real Redis channel layer) with the SDK's in-memory exporter; the worker is a real
`manage.py rqworker` (the forking `EnvelopeWorker`, then the non-forking
`EnvelopeSimpleWorker`) whose spans are written to a file (`tests.otel_export`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.layers import channel_layers
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors import EnvelopeConsumer
from actors.testing import EnvelopeCommunicator
from envelope import State
from tests.actors import otel_app
from tests.actors.rq_support import Worker, deferred_run, running_worker, wait_until
from tests.otel_export import read_spans

pytestmark = pytest.mark.slow

WORKERS = {
    "forking": "actors.workers.EnvelopeWorker",
    "simple": "actors.workers.EnvelopeSimpleWorker",
}


@pytest.fixture(scope="module", params=sorted(WORKERS))
def run(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp(f"otel-rq-{request.param}")
    with deferred_run(redis_url, tmp) as env:
        env["ENVELOPE_TEST_QUEUE"] = otel_app.QUEUE  # the handler's queue
        env["ENVELOPE_TEST_OTEL_SPANS"] = str(tmp / "worker-spans.jsonl")
        env["ENVELOPE_TEST_WORKER_CLASS"] = WORKERS[request.param]
        yield env


@pytest.fixture(scope="module")
def worker(run: dict[str, str]) -> Iterator[Worker]:
    log = Path(run["ENVELOPE_TEST_TMP"]) / "worker.log"
    with running_worker(run, log, "--worker-class", run["ENVELOPE_TEST_WORKER_CLASS"]) as proc:
        yield proc


@pytest.fixture
def application(run: dict[str, str], worker: Worker, settings: Any) -> Iterator[Any]:
    """The consumer in this process, on the run's Redis channel layer and RQ queue."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [run["ENVELOPE_TEST_REDIS"]],
                "prefix": f"asgi-{run['ENVELOPE_TEST_RUN']}",
            },
        }
    }
    settings.RQ_QUEUES = {otel_app.QUEUE: {"URL": run["ENVELOPE_TEST_REDIS"]}}
    channel_layers.backends.clear()
    try:
        yield EnvelopeConsumer.as_asgi(routers=[otel_app.router], deferred="rq")
    finally:
        channel_layers.backends.clear()


def _hex(n: int, width: int) -> str:
    return f"0x{n:0{width}x}"


async def test_one_trace_from_the_socket_to_the_job_and_back(
    spans: InMemorySpanExporter, application: Any, run: dict[str, str]
) -> None:
    client = EnvelopeCommunicator(application)
    connected, _ = await client.connect()
    assert connected
    try:
        reply = await client.request("otel.job", {"text": "far"}, i="rq-otel-1", timeout=20)
        assert reply.s is State.SUCCESS and reply.p == {"text": "FAR"}
        assert [e.s for e in client.seen if e.i == "rq-otel-1"] == [
            State.QUEUED,
            State.RUNNING,
            State.SUCCESS,
        ]
    finally:
        await client.disconnect()

    [envelope] = [s for s in spans.get_finished_spans() if s.name == "otel.job"]
    assert envelope.context is not None
    trace_id = _hex(envelope.context.trace_id, 32)
    path = Path(run["ENVELOPE_TEST_OTEL_SPANS"])

    def worker_spans() -> dict[str, dict[str, Any]] | None:
        found = {s["name"]: s for s in read_spans(path) if s["context"]["trace_id"] == trace_id}
        return (
            found if {"job otel.job", "otel.job.work", "publish otel.note"} <= set(found) else None
        )

    found = await wait_until(worker_spans)
    job, work, push = found["job otel.job"], found["otel.job.work"], found["publish otel.note"]
    # The job's span continues the envelope's trace, a child of its span, in the worker.
    assert job["parent_id"] == _hex(envelope.context.span_id, 16)
    assert job["kind"] == "SpanKind.CONSUMER"
    assert job["attributes"]["envelope.i"] == "rq-otel-1"
    assert job["attributes"]["envelope.queue"] == otel_app.QUEUE
    assert job["attributes"]["envelope.state"] == "s"
    # ... and back: the `r` and `s` the worker answered are events of the job's span.
    assert [e["attributes"]["envelope.state"] for e in job["events"]] == ["r", "s"]
    assert work["parent_id"] == job["context"]["span_id"]  # the handler's own span
    # The push it made on commit: sent at the commit, linked to the span that made it.
    assert push["parent_id"] == job["context"]["span_id"]
    assert [link["context"]["span_id"] for link in push["links"]] == [work["context"]["span_id"]]
