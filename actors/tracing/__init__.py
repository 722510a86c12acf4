"""Trace logs: structlog's configuration, the JSON-lines sink, `capture_trace` for tests,
the viewer behind `envelope trace`, and OpenTelemetry spans (`_otel`).
`actors.tracing.views.trace_view` serves one trace as a waterfall, for development (not
imported here: it is a Django view)."""

from actors.tracing._capture import capture_trace
from actors.tracing._configure import (
    TRACE_LOG_SETTING,
    configure_logging,
    default_processors,
    is_enabled,
    logger,
    render_json_line,
    rendered_nowhere,
    trace_log_path,
)
from actors.tracing._fast import handled_recorder, handled_writer, info_writer
from actors.tracing._otel import (
    CARRIER_KEY,
    JobSpan,
    RequestSpans,
    current_span_context,
    flush_spans,
    job_span,
    note_exception,
    publish_span,
    publish_spans,
    request_spans,
    trace_carrier,
)
from actors.tracing._processors import UTCTimeStamper, add_process, trace_vars
from actors.tracing._sink import TraceLogSink, flush_trace_logs
from actors.tracing._viewer import format_slowest, format_timeline, read_logs, slowest, timeline
from actors.tracing._writer import stage_durations

__all__ = [
    "CARRIER_KEY",
    "TRACE_LOG_SETTING",
    "JobSpan",
    "RequestSpans",
    "TraceLogSink",
    "UTCTimeStamper",
    "add_process",
    "capture_trace",
    "configure_logging",
    "current_span_context",
    "default_processors",
    "flush_spans",
    "flush_trace_logs",
    "format_slowest",
    "format_timeline",
    "handled_recorder",
    "handled_writer",
    "info_writer",
    "is_enabled",
    "job_span",
    "logger",
    "note_exception",
    "publish_span",
    "publish_spans",
    "read_logs",
    "render_json_line",
    "rendered_nowhere",
    "request_spans",
    "slowest",
    "stage_durations",
    "timeline",
    "trace_carrier",
    "trace_log_path",
    "trace_vars",
]
