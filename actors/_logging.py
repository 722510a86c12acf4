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

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

#: The library's logger; every event carries the envelope's `i` when there is one.
logger: Any = structlog.get_logger("envelope")

#: The environment variable (and Django setting) naming the JSON-lines trace file.
TRACE_LOG_SETTING = "ENVELOPE_TRACE_LOG"


_STRUCTLOG_VARS: dict[str, Any] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_PREFIX_LEN = len(structlog.contextvars.STRUCTLOG_KEY_PREFIX)


def merge_contextvars(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog's `merge_contextvars`, reading only the context variables structlog made
    (`bind_contextvars`) instead of walking every variable of the context: in a Django
    process that walk costs 2-3 µs per event, this a fraction of it (nothing at all when
    the event already has every name ever bound, as `envelope.handled` usually does)."""
    known = _STRUCTLOG_VARS
    if known is None:  # a structlog without its registry: the stock processor
        return structlog.contextvars.merge_contextvars(logger, name, event_dict)
    names = _bound_names(known)
    if names <= event_dict.keys():
        return event_dict  # setdefault would change nothing
    for key, var in tuple(known.items()):
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(key[_PREFIX_LEN:], value)
    return event_dict


_names: tuple[int, frozenset[str]] = (-1, frozenset())


def _bound_names(known: dict[str, Any]) -> frozenset[str]:
    """Every name ever bound with `bind_contextvars` (structlog's registry only grows)."""
    global _names
    count, names = _names
    if count != len(known):
        names = frozenset(key[_PREFIX_LEN:] for key in tuple(known))
        _names = (len(known), names)
    return names


def trace_vars() -> tuple[ContextVar[Any], ContextVar[Any]]:
    """The very context variables `bind_contextvars(i=..., t=...)` sets, found through
    its public tokens: setting them directly costs a third of a `bind_contextvars` call
    (the `parse` stage does it for every envelope)."""
    tokens = structlog.contextvars.bind_contextvars(i=None, t=None)
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["i"].var, tokens["t"].var


def add_process(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Add `process`: the pid, so that lines of several processes can be told apart."""
    event_dict.setdefault("process", _PID)
    return event_dict


# The pid, kept by a fork hook: os.getpid() is a system call every time (glibc no longer
# caches it), which showed up in profiles of a busy server logging at INFO.
_PID = os.getpid()


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


class UTCTimeStamper:
    """`timestamp`: ISO 8601 UTC with microseconds and a `Z`, as structlog's
    `TimeStamper(fmt="iso", utc=True)` writes it, at a fifth of its cost (the date and
    time are formatted once per second; this runs for every event)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self) -> str:
        us = _time_ns() // 1000
        second = us // 1_000_000
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._second = second
        return f"{self._prefix}{us % 1_000_000:06d}Z"

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["timestamp"] = self.stamp()
        return event_dict


_time_ns = time.time_ns
_now = datetime.now


def _json_default(obj: Any) -> Any:
    return repr(obj)


_LINE = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
_SINKS: weakref.WeakSet[TraceLogSink] = weakref.WeakSet()


def flush_trace_logs() -> None:
    """Write what every trace log sink of this process has gathered, now (it is also done
    every `flush_seconds` and at exit): before reading the file in the same process."""
    for sink in list(_SINKS):
        sink.flush()


class TraceLogSink:
    """A processor that appends each event as one JSON line to a file, then passes it on.

    The file is opened with `O_APPEND` and lines are written whole, each `os.write`
    holding one or more complete lines, so several processes (servers, workers) can share
    one file without interleaving lines. Add it to your own chain when you configure
    structlog yourself: `TraceLogSink("trace.jsonl")`, before the renderer.

    `envelope.handled` events at INFO - one per envelope, the bulk of a busy server's
    lines - are gathered and written together at most `flush_seconds` later (a write per
    event would cost more than the rest of the event); the library's own configuration
    hands them over as events (`gather`), rendered together when written. Every other
    event is written at once, after what was gathered, so the file keeps the order of
    events and a crash loses at most `flush_seconds` of `envelope.handled` lines.
    `flush_seconds=0` writes every event at once.
    """

    BUFFERED = frozenset({"envelope.handled"})
    MAX_BUFFER = 64 * 1024
    #: Events gathered (`gather`) before they are rendered together.
    MAX_EVENTS = 256

    def __init__(self, path: str | os.PathLike[str], *, flush_seconds: float = 0.1) -> None:
        self.path = os.fspath(path)
        self.flush_seconds = flush_seconds
        self._fd: int | None = None
        self._pid = -1
        # One growing bytearray, not a list of lines: freeing a few hundred small bytes
        # objects at each write hands pymalloc's pools back and forth, and cost more than
        # serialising the lines did.
        self._buffer = bytearray()
        self._events: list[dict[str, Any]] = []  # gathered, rendered when written
        self._failing = False
        self._owner = _PID  # the process whose lines the buffer holds
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        atexit.register(self.flush)
        _SINKS.add(self)

    def _open(self) -> int:
        # Reopened after a fork: the child writes through its own descriptor.
        pid = _PID
        if self._fd is None or self._pid != pid:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = pid
        return self._fd

    def __call__(self, _logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> Any:
        line = event_dict
        if "exc_info" in event_dict:
            # A copy: the renderer after this one formats the exception its own way.
            line = dict(event_dict)
            exc = line.pop("exc_info")
            if exc:
                line["exception"] = _format_exc(exc)
        self.add(json_line(line), name == "info" and event_dict.get("event") in self.BUFFERED)
        return event_dict

    def add(self, data: bytes, later: bool = False) -> None:
        """Append `data` (whole lines): now, or - `later=True` - within `flush_seconds`."""
        if _PID != self._owner:
            self._forked()
        later = later and self.flush_seconds > 0
        with self._lock:
            if self._events:
                self._render()  # gathered before: their lines come first
            buffer = self._buffer
            buffer += data
            if not later or len(buffer) >= self.MAX_BUFFER:
                self._write_buffer()
        if later and self._flusher is None:
            self._start_flusher()

    def gather(self, event_dict: dict[str, Any]) -> None:
        """Keep a finished event (its `timestamp` may be a UTC datetime) to be rendered
        with others when the lines are written, within `flush_seconds`.

        Rendering a few hundred events in a row costs a server less than one at a time
        between its other work: measured at 3-5% of a busy server's throughput. The event
        must not change after this (an `envelope.handled` event does not).
        """
        if _PID != self._owner:
            self._forked()
        at_once = self.flush_seconds <= 0
        with self._lock:
            events = self._events
            events.append(event_dict)
            if at_once or len(events) >= self.MAX_EVENTS:
                self._render()
                if at_once or len(self._buffer) >= self.MAX_BUFFER:
                    self._write_buffer()
        if not at_once and self._flusher is None:
            self._start_flusher()

    def _render(self) -> None:
        buffer = self._buffer
        for event in self._events:
            buffer += json_line(event)
        self._events.clear()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_later, name="envelope-trace-log", daemon=True
                )
                self._flusher.start()

    def _flush_later(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            with self._lock:
                self._write_buffer()

    def _write_buffer(self) -> None:
        if self._events:
            self._render()
        buffer = self._buffer
        if not buffer:
            return
        try:
            fd = self._open()
            with memoryview(buffer) as view:
                written = os.write(fd, view)
                while written < len(view):  # a short write (a signal): the rest
                    written += os.write(fd, view[written:])
        except OSError as exc:
            # A trace log that cannot be written (a full disk, a removed directory) must not
            # fail the envelope being logged: the lines are dropped, and said so once.
            if not self._failing:
                self._failing = True
                print(
                    f"envelope: cannot write the trace log {self.path}: {exc}; "
                    "its lines are dropped until it can be written again",
                    file=sys.stderr,
                )
        else:
            self._failing = False
        finally:
            buffer.clear()

    def _forked(self) -> None:
        # A forked child (an RQ work horse) must not write its parent's gathered lines
        # (the parent does), nor wait on a lock or a thread it did not inherit.
        self._owner = _PID
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._events = []
        self._flusher = None

    def flush(self) -> None:
        """Write what is gathered now (also done at exit)."""
        if _PID != self._owner:
            return
        with self._lock:
            self._write_buffer()

    def close(self) -> None:
        self.flush()
        if self._fd is not None and self._pid == _PID:
            os.close(self._fd)
        self._fd = None


def json_line(event: Mapping[str, Any]) -> bytes:
    """`event` as one JSON line (orjson; a UTC datetime as ISO 8601 with `Z`; what orjson
    cannot serialise as its `repr`). Never raises: it runs in the flusher thread too."""
    try:
        return orjson.dumps(event, default=_json_default, option=_LINE)
    except TypeError:
        pass
    try:  # a key that is not a string (rare, and slower to allow)
        return orjson.dumps(event, default=_json_default, option=_LINE | _NON_STR_KEYS)
    except TypeError as exc:  # nested too deep, say: the line says so instead
        keep = {k: event.get(k) for k in ("event", "i", "t", "level", "timestamp", "process")}
        keep["render_error"] = str(exc)
        return orjson.dumps(keep, default=_json_default, option=_LINE)


def _format_exc(exc: Any) -> str:
    import traceback

    if exc is True:
        exc = sys.exc_info()
    if isinstance(exc, BaseException):
        exc = (type(exc), exc, exc.__traceback__)
    if isinstance(exc, tuple) and exc[0] is not None:
        return "".join(traceback.format_exception(*exc))
    return ""


def trace_log_path() -> str | None:
    """`ENVELOPE_TRACE_LOG` from the environment, else from Django settings, else None."""
    path = os.environ.get(TRACE_LOG_SETTING)
    if path:
        return path
    try:
        from django.conf import settings

        if settings.configured:
            return getattr(settings, TRACE_LOG_SETTING, None) or None
    except ImportError:  # pragma: no cover - Django is a dependency
        pass
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
        "snapshot",
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
        self.snapshot = tuple(processors)
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
                event_dict["process"] = _PID
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
