"""OpenTelemetry for a test's worker process: the SDK with a batch processor (as in
production: a forked work horse must flush it before it exits), every span written as
one JSON line to a file the test reads (`read_spans`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def _one_line(span: ReadableSpan) -> str:
    return span.to_json(indent=None) + "\n"


def export_spans_to(path: str) -> None:
    """Set the process's tracer provider: spans appended to `path`, one JSON line each."""
    out = open(path, "a", encoding="utf-8")  # open for the process's life
    provider = TracerProvider()
    exporter = ConsoleSpanExporter(out=out, formatter=_one_line)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    trace.set_tracer_provider(provider)


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans written so far (`ReadableSpan.to_json()`: ids are "0x" and hex)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
