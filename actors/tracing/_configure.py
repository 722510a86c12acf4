"""Trace logging: structlog, configured here only when the application has not done it.

The processor chain (`default_processors`), in order:

1. `structlog.contextvars.merge_contextvars` - what is bound for the current envelope
   (`i`, `t`) or job, so every line of a request carries its trace id;
2. `add_log_level` - `level`;
3. `UTCTimeStamper()` - `timestamp`, ISO 8601 UTC (`2026-01-01T10:00:00.123456Z`);
4. `add_process` - `process` (pid), so that `envelope trace` can merge several
   processes' files;
5. `TraceLogSink` when `ENVELOPE_TRACE_LOG` is set - the JSON-lines file sink;
6. exception info, then the renderer: JSON lines (`render_json_line`) when stderr is not
   a terminal (production, workers), a readable console renderer when it is
   (development); or, when events go to the trace log only, `rendered_nowhere`.

A plain chain of processors, run by structlog. `actors.tracing._fast` writes the one
event logged per envelope without structlog's call machinery while this chain is in
force, byte for byte as the chain would.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from django.conf import settings as django_settings

from actors.tracing._processors import UTCTimeStamper, add_process
from actors.tracing._sink import TraceLogSink, json_line

#: The library's logger; every event carries the envelope's `i` when there is one.
logger: Any = structlog.get_logger("envelope")

#: The environment variable (and Django setting) naming the JSON-lines trace file.
TRACE_LOG_SETTING = "ENVELOPE_TRACE_LOG"


def trace_log_path() -> str | None:
    """`ENVELOPE_TRACE_LOG` from the environment, else from Django settings, else None."""
    path = os.environ.get(TRACE_LOG_SETTING)
    if path:
        return path
    if django_settings.configured:
        return getattr(django_settings, TRACE_LOG_SETTING, None) or None
    return None


def render_json_line(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    """The renderer of JSON lines: the trace log's line (orjson, several times faster than
    the standard library's json), without its newline."""
    return json_line(event_dict)[:-1].decode()


def rendered_nowhere(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """The end of a chain that writes to the trace log only (with a `ReturnLoggerFactory`,
    the event ends here: cheaper than raising DropEvent)."""
    return ""


def default_processors(
    json: bool,
    trace_log: str | os.PathLike[str] | None = None,
    *,
    console: bool = True,
    writer_process: bool | None = None,
) -> list[Any]:
    """The documented chain (see the module docstring), ending in a JSON or console renderer.

    `console=False` writes to the trace log only: the chain then ends in a processor
    returning "", to be used with `structlog.ReturnLoggerFactory()`. `writer_process`:
    whether the trace log's lines are written by a writer process of its own (see
    `TraceLogSink`); by default when `console=False`.
    """
    if writer_process is None:
        writer_process = not console
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        UTCTimeStamper(),
        add_process,
    ]
    if trace_log:
        processors.append(TraceLogSink(trace_log, writer_process=writer_process))
    if not console:
        processors.append(rendered_nowhere)
    elif json:
        processors += [structlog.processors.format_exc_info, render_json_line]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    return processors


def configure_logging(
    level: int | str = logging.INFO,
    *,
    json: bool | None = None,
    trace_log: str | os.PathLike[str] | None = None,
    stream: TextIO | None = None,
    console: bool = True,
    writer_process: bool | None = None,
    force: bool = False,
) -> bool:
    """Configure structlog for Envelope Router, unless the application already has.

    Returns True when it configured structlog, False when it left the application's
    configuration alone. `json=None` picks JSON lines when the stream is not a terminal
    (production, workers) and console lines when it is. `trace_log` defaults to
    `ENVELOPE_TRACE_LOG`; `console=False` writes events to it only, through a writer
    process of its own unless `writer_process=False` (see `TraceLogSink`). `force=True`
    replaces an existing configuration (benchmarks, the command line).
    """
    if structlog.is_configured() and not force:
        return False
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    stream = stream if stream is not None else sys.stderr
    if json is None:
        json = not stream.isatty()
    if trace_log is None:
        trace_log = trace_log_path()
    replaced = structlog.get_config()["processors"] if structlog.is_configured() else []
    structlog.configure(
        processors=default_processors(
            json, trace_log, console=console, writer_process=writer_process
        ),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # A line in one write (`print` writes the line, then its newline: a system call
        # each on an unbuffered stderr).
        logger_factory=(
            structlog.WriteLoggerFactory(stream) if console else structlog.ReturnLoggerFactory()
        ),
        # Not cached: loggers are bound once per connection or job, never per message, and
        # an uncached proxy follows a later configuration (level, stream) instead of
        # keeping the first one for the life of the process.
        cache_logger_on_first_use=False,
    )
    # The sinks of the configuration replaced: written out, their writer processes
    # stopped (one that is still used - a logger bound before - writes the file itself).
    for processor in replaced:
        if isinstance(processor, TraceLogSink):
            processor.close()
    return True


def is_enabled(level: int, log: Any = None) -> bool:
    """Would `log` (default: the library's logger) emit an event at `level`?

    Works with structlog's filtering loggers and with stdlib-backed ones; an unknown
    logger class is assumed to emit everything.
    """
    log = log if log is not None else logger
    if hasattr(log, "bind") and type(log).__name__ == "BoundLoggerLazyProxy":
        log = log.bind()
    check = getattr(log, "is_enabled_for", None)
    if check is not None:
        return bool(check(level))
    check = getattr(log, "isEnabledFor", None)
    if check is not None:
        return bool(check(level))
    return True
