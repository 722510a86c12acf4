"""Trace logs: structlog's configuration, the JSON-lines sink, `capture_trace` for tests,
and the viewer behind `envelope trace`."""

from actors.tracing._capture import capture_trace
from actors.tracing._configure import (
    TRACE_LOG_SETTING,
    configure_logging,
    info_writer,
    is_enabled,
    logger,
    trace_log_path,
)
from actors.tracing._processors import trace_vars
from actors.tracing._sink import TraceLogSink, flush_trace_logs
from actors.tracing._viewer import format_slowest, format_timeline, read_logs, slowest, timeline

__all__ = [
    "TRACE_LOG_SETTING",
    "TraceLogSink",
    "capture_trace",
    "configure_logging",
    "flush_trace_logs",
    "format_slowest",
    "format_timeline",
    "info_writer",
    "is_enabled",
    "logger",
    "read_logs",
    "slowest",
    "timeline",
    "trace_log_path",
    "trace_vars",
]
