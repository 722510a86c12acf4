"""Trace logs: structlog's configuration, the JSON-lines sink, `capture_trace` for tests,
and the viewer behind `envelope trace`. `actors.tracing.views.trace_view` serves one
trace as a waterfall, for development (not imported here: it is a Django view)."""

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
from actors.tracing._fast import info_writer
from actors.tracing._processors import UTCTimeStamper, add_process, trace_vars
from actors.tracing._sink import TraceLogSink, flush_trace_logs
from actors.tracing._viewer import format_slowest, format_timeline, read_logs, slowest, timeline

__all__ = [
    "TRACE_LOG_SETTING",
    "TraceLogSink",
    "UTCTimeStamper",
    "add_process",
    "capture_trace",
    "configure_logging",
    "default_processors",
    "flush_trace_logs",
    "format_slowest",
    "format_timeline",
    "info_writer",
    "is_enabled",
    "logger",
    "read_logs",
    "render_json_line",
    "rendered_nowhere",
    "slowest",
    "timeline",
    "trace_log_path",
    "trace_vars",
]
