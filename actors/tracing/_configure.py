"""Trace logging: structlog, configured here only when the application has not done it.

The processor chain (`default_processors`), in order:

1. `merge_contextvars` (structlog's, reading only its own variables) - what is bound
   for the current envelope (`i`, `t`) or job comes first, so every line of a request
   carries its trace id;
2. `add_log_level` - `level`;
3. `UTCTimeStamper()` - `timestamp`, ISO 8601 UTC (`2026-01-01T10:00:00.123456Z`);
4. `add_process` - `process` (pid), so that `envelope trace` can merge several
   processes' files;
5. `TraceLogSink` when `ENVELOPE_TRACE_LOG` is set - the JSON-lines file sink;
6. exception info, then the renderer: JSON lines when stderr is not a terminal
   (production, workers), a readable console renderer when it is (development).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from django.conf import settings as django_settings

from actors.tracing import _sink as _trace_sink
from actors.tracing._processors import UTCTimeStamper, add_process, merge_contextvars
from actors.tracing._sink import TraceLogSink, json_line

#: The library's logger; every event carries the envelope's `i` when there is one.
logger: Any = structlog.get_logger("envelope")

_now = datetime.now

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


def _json_text(obj: Any, **_kw: Any) -> str:
    """The JSON renderer's serializer: `json_line` (orjson, several times faster than the
    standard library's json) without its newline."""
    return json_line(obj)[:-1].decode()


def _silent(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    # With a `ReturnLoggerFactory`, the event ends here: cheaper than raising DropEvent.
    return ""


def default_processors(
    json: bool, trace_log: str | os.PathLike[str] | None = None, *, console: bool = True
) -> list[Any]:
    """The documented chain (see the module docstring), ending in a JSON or console renderer.

    `console=False` writes to the trace log only: the chain then ends in a processor
    returning "", to be used with `structlog.ReturnLoggerFactory()`.
    """
    processors: list[Any] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        UTCTimeStamper(),
        add_process,
    ]
    if trace_log:
        processors.append(TraceLogSink(trace_log))
    if not console:
        processors.append(_silent)
    elif json:
        processors += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json_text),
        ]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    return processors


class _OwnConfiguration:
    """The configuration `configure_logging` gave structlog, kept to know it again.

    `envelope.handled` is logged once per envelope, the one event on the hot path. Through
    structlog, an event costs its call machinery (the level method, the keywords' dict,
    the context copy, the processor loop, handing the result to the output logger) and
    one call per processor; together more than the work itself. While this configuration
    is in force, `info_writer` does that work in one function: the same steps as the
    chain (contextvars merge, level, timestamp, pid, the JSON line for the trace log and
    the JSON console), giving the same line, for about half the cost. It falls back to
    running the processors one by one when the chain's list is changed in place
    (`capture_trace` does), for the console renderer, and for an event with `exc_info`.
    Under any other configuration (the application's own) events go through structlog.
    """

    __slots__ = (
        "factory",
        "fused",
        "json_console",
        "level",
        "output",
        "processors",
        "sink",
        "wrapper",
    )

    def __init__(
        self,
        level: int,
        processors: list[Any],
        factory: Any,
        wrapper: Any,
        *,
        json: bool,
        console: bool,
    ) -> None:
        self.level = level
        self.processors = processors
        self.factory = factory
        self.wrapper = wrapper
        self.output = factory()
        sinks = [p for p in processors if isinstance(p, TraceLogSink)]
        self.sink = sinks[0] if sinks else None
        self.json_console = console and json
        # Fused for the trace log and JSON lines; the console renderer is for people.
        self.fused = json or not console

    def in_force(self) -> bool:
        config = structlog.get_config()
        return (
            config["processors"] is self.processors
            and config["logger_factory"] is self.factory
            and config["wrapper_class"] is self.wrapper
        )

    def stepwise(self) -> Callable[[dict[str, Any]], None]:
        """`write(event_dict)` running the chain's processors one by one, as structlog does."""
        processors, output = self.processors, self.output
        silent = isinstance(output, structlog.ReturnLogger)

        def write(event_dict: dict[str, Any]) -> None:
            result: Any = event_dict
            try:
                for processor in processors:
                    result = processor(output, "info", result)
            except structlog.DropEvent:
                return
            if not silent:
                output.info(result)  # the chain ends in a renderer: a str

        return write

    def writer(self, *, later: bool = False) -> Callable[[dict[str, Any]], None]:
        """`write(event_dict)` at INFO, `event_dict` holding what a bound logger's context
        and keywords would give, then `event`; `later`: the trace log may gather it (see
        `TraceLogSink`)."""
        stepwise = self.stepwise()
        if not self.fused:
            return stepwise
        sink, output, json_console = self.sink, self.output, self.json_console
        later = later and sink is not None and sink.flush_seconds > 0
        # To the trace log only, and allowed to wait: gathered, rendered with others.
        gather = sink.gather if sink is not None and later and not json_console else None

        def write(event_dict: dict[str, Any]) -> None:
            if _chain_changes or "exc_info" in event_dict:
                stepwise(event_dict)  # the list is changed in place (`capture_trace`)
                return
            merge_contextvars(None, "info", event_dict)
            event_dict["level"] = "info"
            # UTCTimeStamper's ISO 8601, written by orjson from a datetime (a third of the
            # cost; it leaves out the fraction in the one case of 0 µs, as RFC 3339 may).
            event_dict["timestamp"] = _now(UTC)
            if "process" not in event_dict:
                event_dict["process"] = _trace_sink._PID
            if gather is not None:
                gather(event_dict)
                return
            line = json_line(event_dict)
            if sink is not None:
                sink.add(line, later)
            if json_console:
                output.info(line[:-1].decode())

        return write


#: How many `capture_trace` blocks are open: while one is, the chain's list holds other
#: processors and the fused writers run the list instead.
_chain_changes = 0


def chain_changed(delta: int) -> None:
    global _chain_changes
    _chain_changes += delta


_own: _OwnConfiguration | None = None


def info_writer(*, later: bool = False) -> Callable[[dict[str, Any]], None]:
    """`write(event_dict)`: the library's logger at INFO for an event logged very often,
    `event_dict` holding the event's context and keywords and its `event` name. Made
    once, called often. While the configuration `configure_logging` made is in force it
    writes without structlog's call machinery (see `_OwnConfiguration`), through that
    configuration even after another replaces it (as a bound logger keeps the processors
    it was bound with); otherwise through structlog. `later=True`: a trace log may gather
    the line for up to its `flush_seconds` (as it does `envelope.handled`).
    """
    own = _own
    if own is not None and own.in_force():
        return own.writer(later=later) if own.level <= logging.INFO else _ignore
    log = logger.bind()

    def write(event_dict: dict[str, Any]) -> None:
        log.info(event_dict.pop("event"), **event_dict)

    return write


def _ignore(_event_dict: dict[str, Any]) -> None:
    return None


def configure_logging(
    level: int | str = logging.INFO,
    *,
    json: bool | None = None,
    trace_log: str | os.PathLike[str] | None = None,
    stream: TextIO | None = None,
    console: bool = True,
    force: bool = False,
) -> bool:
    """Configure structlog for Envelope Router, unless the application already has.

    Returns True when it configured structlog, False when it left the application's
    configuration alone. `json=None` picks JSON lines when the stream is not a terminal
    (production, workers) and console lines when it is. `trace_log` defaults to
    `ENVELOPE_TRACE_LOG`; `console=False` writes events to it only. `force=True` replaces
    an existing configuration (benchmarks, the command line).
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
    global _own
    processors = default_processors(json, trace_log, console=console)
    wrapper = structlog.make_filtering_bound_logger(level)
    factory = structlog.PrintLoggerFactory(stream) if console else structlog.ReturnLoggerFactory()
    _own = _OwnConfiguration(level, processors, factory, wrapper, json=json, console=console)
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper,
        logger_factory=factory,
        # Not cached: loggers are bound once per connection or job, never per message, and
        # an uncached proxy follows a later configuration (level, stream) instead of
        # keeping the first one for the life of the process.
        cache_logger_on_first_use=False,
    )
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
