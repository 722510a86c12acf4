"""OpenTelemetry spans in-process: one per envelope, the handler's inside it, a deferred
job's in the same trace, one per publish with its link; and none, at no cost, without a
tracer provider.

The actor runs in-process (ActorHarness) with the SDK's in-memory exporter (the `spans`
fixture); deferred jobs run in the thread backend's real pool. The same trace across a
real RQ worker process is in `test_otel_rq.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from channels.layers import get_channel_layer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from actors.deferred import ThreadBackend
from actors.testing import ActorHarness
from envelope import State
from tests.actors import otel_app
from tests.processes import run_python


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def one(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, [s.name for s in spans.get_finished_spans()]
    return found[0]


def is_child(child: ReadableSpan, parent: ReadableSpan) -> bool:
    assert child.parent is not None and parent.context is not None
    return (
        child.parent.span_id == parent.context.span_id
        and child.context is not None
        and child.context.trace_id == parent.context.trace_id
    )


async def test_an_envelope_is_a_server_span_named_by_its_type_with_its_i_state_and_timings(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router], address="conn-7") as client:
        reply = await client.request("otel.echo", {"text": "hi"}, i="ot-1")
        assert reply.s is State.SUCCESS
    span = one(spans, "otel.echo")
    assert span.kind is SpanKind.SERVER
    attributes = dict(span.attributes or {})
    assert attributes["envelope.i"] == "ot-1"
    assert attributes["envelope.state"] == "s"
    assert "envelope.code" not in attributes
    assert attributes["envelope.connection"] == "conn-7"
    stages = {k for k in attributes if k.startswith("envelope.stage.")}
    assert stages == {
        f"envelope.stage.{name}_us"
        for name in ("respond", "parse", "validate", "authorize", "dispatch")
    }
    # Whole µs per stage, each rounded down: together at most the span's duration.
    assert span.end_time is not None and span.start_time is not None
    assert 0 <= sum(attributes[k] for k in stages) <= (span.end_time - span.start_time) / 1000
    assert span.status.status_code is StatusCode.UNSET


async def test_the_handlers_own_spans_nest_inside_the_envelopes_span(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        await client.request("otel.echo", {"text": "a"})
        await client.request("otel.echo", {"text": "b"})
    envelopes, works = named(spans, "otel.echo"), named(spans, "otel.echo.work")
    assert len(envelopes) == len(works) == 2
    for envelope, work in zip(envelopes, works, strict=True):
        assert is_child(work, envelope)
    assert envelopes[0].context.trace_id != envelopes[1].context.trace_id  # type: ignore[union-attr]


async def test_a_concurrent_handlers_spans_nest_inside_its_envelopes_span_until_its_reply(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        first = await client.send("otel.slow_echo", {"text": "1"}, i="slow-1")
        second = await client.send("otel.slow_echo", {"text": "2"}, i="slow-2")
        assert (await client.until_terminal(first)).s is State.SUCCESS
        assert (await client.until_terminal(second)).s is State.SUCCESS
    envelopes = {s.attributes["envelope.i"]: s for s in named(spans, "otel.slow_echo")}  # type: ignore[index]
    assert set(envelopes) == {"slow-1", "slow-2"}
    works = named(spans, "otel.slow_echo.work")
    assert len(works) == 2
    for work in works:
        parents = [e for e in envelopes.values() if is_child(work, e)]
        assert len(parents) == 1
        # The envelope's span ends with its reply, after the handler's own.
        assert parents[0].end_time >= work.end_time  # type: ignore[operator]
        assert parents[0].attributes["envelope.state"] == "s"  # type: ignore[index]


async def test_an_envelope_cancelled_by_its_connection_closing_ends_its_span(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        await client.send("otel.wait", {}, i="wait-1")
        await client.request("connection.ping", {})  # the mailbox moved on: it is running
        assert named(spans, "otel.wait") == []
    span = one(spans, "otel.wait")
    assert span.attributes["envelope.code"] == "cancelled"  # type: ignore[index]
    assert "envelope.state" not in span.attributes  # type: ignore[operator]


async def test_a_failure_sets_the_state_and_code_and_leaves_the_status_unset(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        assert (await client.request("otel.deny", {})).p["code"] == "forbidden"
        assert (await client.request("otel.nope", {})).p["code"] == "unknown_type"
    denied = one(spans, "otel.deny")
    assert denied.attributes["envelope.state"] == "f"  # type: ignore[index]
    assert denied.attributes["envelope.code"] == "forbidden"  # type: ignore[index]
    assert denied.status.status_code is StatusCode.UNSET  # the client's doing, not an error
    unknown = one(spans, "otel.nope")
    assert unknown.attributes["envelope.code"] == "unknown_type"  # type: ignore[index]


async def test_an_internal_error_sets_status_error_and_records_the_exception(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        reply = await client.request("otel.crash", {})
        assert reply.p["code"] == "internal" and "hunter2" not in str(reply.p)
    span = one(spans, "otel.crash")
    assert span.attributes["envelope.code"] == "internal"  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR
    [event] = [e for e in span.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "RuntimeError"  # type: ignore[index]


async def test_a_frame_that_cannot_be_read_is_a_span_named_error(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router]) as client:
        await client.send_frame("{not json")
        reply = await client.receive()
        assert reply.p["code"] == "bad_json"
    span = one(spans, "error")
    assert span.attributes["envelope.code"] == "bad_json"  # type: ignore[index]
    assert span.attributes["envelope.i"] == reply.i  # type: ignore[index]


async def test_a_publish_is_a_producer_span_in_the_envelopes_trace_linked_to_it(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router], address="conn-9", layer=_layer()) as client:
        assert (await client.request("otel.announce", {"text": "x"}, i="pub-1")).s is State.SUCCESS
    envelope = one(spans, "otel.announce")
    push = one(spans, "publish otel.note")
    assert push.kind is SpanKind.PRODUCER
    assert is_child(push, envelope)
    assert [link.context.span_id for link in push.links] == [envelope.context.span_id]  # type: ignore[union-attr]
    assert dict(push.attributes or {}) == {
        "envelope.push.type": "otel.note",
        "envelope.topic": "otel.room",
        "envelope.i": "pub-1",
    }


@pytest.mark.django_db(transaction=True)
async def test_a_deferred_job_continues_the_envelopes_trace_on_the_thread_backend(
    spans: InMemorySpanExporter, backend: ThreadBackend
) -> None:
    async with ActorHarness([otel_app.router], backend=backend) as client:
        reply = await client.request("otel.job", {"text": "go"}, i="job-1")
        assert reply.s is State.SUCCESS and reply.p == {"text": "GO"}
        assert backend.wait_idle(5)
    envelope = one(spans, "otel.job")
    assert envelope.attributes["envelope.state"] == "q"  # type: ignore[index]  # its part ends at q
    job = one(spans, "job otel.job")
    assert job.kind is SpanKind.CONSUMER and is_child(job, envelope)
    assert job.attributes["envelope.i"] == "job-1"  # type: ignore[index]
    assert job.attributes["envelope.state"] == "s"  # type: ignore[index]
    assert [e.attributes["envelope.state"] for e in job.events] == ["r", "s"]  # type: ignore[index]
    work = one(spans, "otel.job.work")
    assert is_child(work, job)
    # Its on-commit push: sent at the commit (the job's span), linked to where it was made.
    push = one(spans, "publish otel.note")
    assert is_child(push, job)
    assert [link.context.span_id for link in push.links] == [work.context.span_id]  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
async def test_a_failing_job_sets_status_error_and_the_code(
    spans: InMemorySpanExporter, backend: ThreadBackend
) -> None:
    async with ActorHarness([otel_app.router], backend=backend) as client:
        reply = await client.request("otel.job", {"text": "go", "fail": True})
        assert reply.p["code"] == "job_failed"
        assert backend.wait_idle(5)
    job = one(spans, "job otel.job")
    assert job.attributes["envelope.state"] == "f"  # type: ignore[index]
    assert job.attributes["envelope.code"] == "job_failed"  # type: ignore[index]
    assert job.status.status_code is StatusCode.ERROR
    assert named(spans, "publish otel.note") == []  # rolled back: never sent


@contextmanager
def opentelemetry_calls() -> Iterator[list[str]]:
    """Every Python function of the `opentelemetry` packages called in this thread."""
    calls: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and "/opentelemetry/" in frame.f_code.co_filename:
            calls.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(None)


async def test_without_a_tracer_provider_no_opentelemetry_call_is_made() -> None:
    # No `spans` fixture: the API's default proxy provider, which records nothing.
    async with ActorHarness([otel_app.router], address="conn-1", layer=_layer()) as client:
        assert client.config.otel is None
        with opentelemetry_calls() as calls:
            for n in range(3):
                assert (await client.request("otel.deny", {})).s is State.FAILED
                assert (await client.request("connection.ping", {}, i=f"p{n}")).s is State.SUCCESS
                assert (await client.request("otel.crash", {})).s is State.FAILED
        # The handlers' own instrumentation is the application's; the library's is silent.
        assert calls == []


async def test_envelope_opentelemetry_false_turns_the_spans_off(
    spans: InMemorySpanExporter,
) -> None:
    async with ActorHarness([otel_app.router], opentelemetry=False) as client:
        assert client.config.otel is None
        await client.request("otel.deny", {})
    assert named(spans, "otel.deny") == []


@pytest.mark.django_db(transaction=True)
async def test_envelope_opentelemetry_false_turns_the_job_spans_off_too(
    spans: InMemorySpanExporter, backend: ThreadBackend, settings: Any
) -> None:
    settings.ENVELOPE_OPENTELEMETRY = False
    async with ActorHarness([otel_app.router], backend=backend) as client:
        assert (await client.request("otel.job", {"text": "go"})).s is State.SUCCESS
        assert backend.wait_idle(5)
    assert [s.name for s in spans.get_finished_spans()] == ["otel.job.work"]  # the app's own


def test_the_library_runs_without_opentelemetry_installed() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if the `otel` extra were not installed
import django
django.setup()
import anyio
from actors.testing import ActorHarness
from envelope import State

async def main():
    async with ActorHarness() as client:
        assert client.config.otel is None
        assert (await client.request("connection.ping", {})).s is State.SUCCESS
    print("ok")

anyio.run(main)
"""
    # A fresh process (run_python raises with its stderr when it fails).
    assert run_python("tests.settings", {}, "-c", code).splitlines()[-1] == "ok"


def _layer() -> Any:
    return get_channel_layer()
