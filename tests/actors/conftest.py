from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.deferred import ThreadBackend


@pytest.fixture
def backend() -> Iterator[ThreadBackend]:
    """A real thread pool for deferred handlers, shut down (jobs finished) after the test."""
    pool = ThreadBackend(workers=2)
    yield pool
    pool.shutdown(wait=True)


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An OpenTelemetry SDK tracer provider for this test, recording every span in memory
    (the process's global provider stays unset: it can be set only once)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()
