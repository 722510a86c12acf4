"""The JSON-lines trace log: `TraceLogSink`, safe with several processes appending.

Also the pid of this process (`_PID`, kept by a fork hook), which every line carries.
"""

from __future__ import annotations

import atexit
import itertools
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson

# The pid, kept by a fork hook: os.getpid() is a system call every time (glibc no longer
# caches it), which showed up in profiles of a busy server logging at INFO.
_PID = os.getpid()


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def _json_default(obj: Any) -> Any:
    return repr(obj)


_LINE = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_REPR = itertools.repeat(_json_default)  # json_line's arguments, for `map`
_LINES = itertools.repeat(_LINE)
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
        # No lock to append (a list's append is atomic); whoever renders takes the lock
        # and removes only what it rendered.
        events = self._events
        events.append(event_dict)
        if len(events) >= self.MAX_EVENTS or self.flush_seconds <= 0:
            with self._lock:
                self._render()
                if self.flush_seconds <= 0 or len(self._buffer) >= self.MAX_BUFFER:
                    self._write_buffer()
        elif self._flusher is None:
            self._start_flusher()

    def _render(self) -> None:
        """Render what is gathered into the buffer (under the lock)."""
        events = self._events
        count = len(events)
        batch = events[:count]  # appended meanwhile: left for the next one
        del events[:count]
        try:  # all in one C loop: a few hundred events cost less than a call each
            self._buffer += b"".join(map(orjson.dumps, batch, _REPR, _LINES))
        except TypeError:  # one that orjson cannot write as it is: each on its own
            buffer = self._buffer
            for event in batch:
                buffer += json_line(event)

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
    if exc is True:
        exc = sys.exc_info()
    if isinstance(exc, BaseException):
        exc = (type(exc), exc, exc.__traceback__)
    if isinstance(exc, tuple) and exc[0] is not None:
        return "".join(traceback.format_exception(*exc))
    return ""
