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
from collections.abc import MutableMapping
from contextvars import ContextVar
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
    process that walk costs 2-3 µs per event, this a fraction of it."""
    known = _STRUCTLOG_VARS
    if known is None:  # a structlog without its registry: the stock processor
        return structlog.contextvars.merge_contextvars(logger, name, event_dict)
    for key, var in tuple(known.items()):
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event_dict.setdefault(key[_PREFIX_LEN:], value)
    return event_dict


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
    `TimeStamper(fmt="iso", utc=True)` writes it, at a quarter of its cost (the
    date and time are formatted once per second; this runs for every event)."""

    def __init__(self) -> None:
        self._cache: tuple[int, str] = (-1, "")

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        now = time.time()
        second = int(now)
        cached, prefix = self._cache
        if cached != second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cache = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def _json_default(obj: Any) -> Any:
    return repr(obj)


class TraceLogSink:
    """A processor that appends each event as one JSON line to a file, then passes it on.

    The file is opened with `O_APPEND` and lines are written whole, each `os.write`
    holding one or more complete lines, so several processes (servers, workers) can share
    one file without interleaving lines. Add it to your own chain when you configure
    structlog yourself: `TraceLogSink("trace.jsonl")`, before the renderer.

    `envelope.handled` events at INFO - one per envelope, the bulk of a busy server's
    lines - are gathered and written together at most `flush_seconds` later (a write per
    event would cost more than the rest of the event). Every other event is written at
    once, after what was gathered, so the file keeps the order of events and a crash
    loses at most `flush_seconds` of `envelope.handled` lines. `flush_seconds=0` writes
    every event at once.
    """

    BUFFERED = frozenset({"envelope.handled"})
    MAX_BUFFER = 64 * 1024

    def __init__(self, path: str | os.PathLike[str], *, flush_seconds: float = 0.1) -> None:
        self.path = os.fspath(path)
        self.flush_seconds = flush_seconds
        self._fd: int | None = None
        self._pid = -1
        self._buffer: list[bytes] = []
        self._size = 0
        self._owner = _PID  # the process whose lines the buffer holds
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        atexit.register(self.flush)

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
        try:
            data = orjson.dumps(line, default=_json_default) + b"\n"
        except TypeError:  # a key that is not a string (rare, and slower to allow)
            data = orjson.dumps(line, default=_json_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        if _PID != self._owner:
            self._forked()
        with self._lock:
            self._buffer.append(data)
            self._size += len(data)
            if (
                self.flush_seconds <= 0
                or name != "info"
                or event_dict.get("event") not in self.BUFFERED
                or self._size >= self.MAX_BUFFER
            ):
                self._write_buffer()
            elif self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_later, name="envelope-trace-log", daemon=True
                )
                self._flusher.start()
        return event_dict

    def _flush_later(self) -> None:
        while True:
            time.sleep(self.flush_seconds)
            with self._lock:
                self._write_buffer()

    def _write_buffer(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            os.write(self._open(), data)

    def _forked(self) -> None:
        # A forked child (an RQ work horse) must not write its parent's gathered lines
        # (the parent does), nor wait on a lock or a thread it did not inherit.
        self._owner = _PID
        self._lock = threading.Lock()
        self._buffer = []
        self._size = 0
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
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
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
    structlog.configure(
        processors=default_processors(json, trace_log, console=console),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=(
            structlog.PrintLoggerFactory(stream) if console else structlog.ReturnLoggerFactory()
        ),
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
