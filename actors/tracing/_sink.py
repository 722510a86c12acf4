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
from collections.abc import MutableMapping
from typing import Any

from actors.tracing._writer import (
    LINES,
    HandledRecord,
    IsoUTC,
    TraceFile,
    clock_offset,
    frame,
    frames,
    handled_events,
    json_line,
    json_lines,
    records_frame,
    render_frames,
)
from actors.tracing._writer_process import WriterGone, WriterProcess

# The pid, kept by a fork hook: os.getpid() is a system call every time (glibc no longer
# caches it), which showed up in profiles of a busy server logging at INFO.
_PID = os.getpid()


def _after_fork() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


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
    hands them over as events (`gather`) or as records (`gather_handled`), rendered
    together when written. Every other event is written at once, after what was
    gathered, so the file keeps the order of events and a crash loses at most
    `flush_seconds` of `envelope.handled` lines. `flush_seconds=0` writes every event at
    once.

    `writer_process=True` (what `configure_logging(console=False)` uses) hands the lines
    and records to a writer process of its own (`actors.tracing._writer`), which renders
    the records and appends everything to the file, in the order it was handed over: the
    server keeps only the cheap part of each event. Lines are then written a moment after
    they are logged - `flush_trace_logs()` waits until they are - and what was handed over
    is written even when this process is killed. A writer that cannot be started or dies
    is said once on stderr, and this process writes the file itself from then on (what
    the dead writer had taken and not written is lost; nothing after it).
    """

    BUFFERED = frozenset({"envelope.handled"})
    MAX_BUFFER = 64 * 1024
    #: Events gathered (`gather`, `gather_handled`) before they are rendered together.
    MAX_EVENTS = 256
    #: How long `flush` waits for the writer process to have written what it was handed.
    SYNC_SECONDS = 5.0

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        flush_seconds: float = 0.1,
        writer_process: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self.flush_seconds = flush_seconds
        self._file = TraceFile(self.path)  # when this process writes it itself
        # One growing bytearray, not a list of lines: freeing a few hundred small bytes
        # objects at each write hands pymalloc's pools back and forth, and cost more than
        # serialising the lines did. With a writer process it holds frames for it.
        self._buffer = bytearray()
        # Gathered, rendered when written: event dicts and `HandledRecord` tuples.
        self._events: list[Any] = []
        self._owner = _PID  # the process whose lines the buffer holds
        self._lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._start_writer = writer_process and flush_seconds > 0  # not tried yet
        self._writer: WriterProcess | None = None
        self._stamp = IsoUTC()
        atexit.register(self.close)
        _SINKS.add(self)

    @property
    def writer_pid(self) -> int | None:
        """The pid of this sink's writer process while it has one."""
        writer = self._writer
        return writer.pid if writer is not None else None

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
            if self._target() is not None:
                buffer += frame(LINES, data)
            else:
                buffer += data
            if not later or len(buffer) >= self.MAX_BUFFER:
                self._write_buffer()
        if later and self._flusher is None:
            self._start_flusher()

    def gather(self, event_dict: dict[str, Any] | HandledRecord) -> None:
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

    #: Keep an `envelope.handled` record (`actors.tracing._writer.HandledRecord`): its
    #: line is made from it when written - by the writer process when there is one.
    gather_handled = gather

    def _target(self) -> WriterProcess | None:
        """The writer process the buffer's frames go to, or None when this process writes
        the file (under the lock). Started when first wanted, and tried once: one that
        cannot be started leaves this process writing the file."""
        if self._start_writer:
            self._start_writer = False
            if self._buffer:  # lines of before (not expected): written first, by us
                self._write_buffer()
            try:
                self._writer = WriterProcess(self.path)
            except OSError as exc:
                _say(
                    f"envelope: cannot start the trace log writer for {self.path}: {exc}; "
                    "this process writes the file itself"
                )
        return self._writer

    def _render(self) -> None:
        """Render what is gathered into the buffer (under the lock): as lines, or as
        frames for the writer process (records as they are)."""
        events = self._events
        count = len(events)
        batch = events[:count]  # appended meanwhile: left for the next one
        del events[:count]
        writer = self._target()
        buffer = self._buffer
        offset = clock_offset()  # the records' wall-clock time, from their `now`
        for records, run in itertools.groupby(batch, _is_record):
            items = list(run)
            if records:
                if writer is not None:
                    try:
                        buffer += records_frame(_PID, offset, items)
                        continue
                    except ValueError:  # a value marshal cannot write: rendered here
                        pass
                lines = json_lines(handled_events(items, _PID, offset, self._stamp))
            else:
                lines = json_lines(items)
            buffer += frame(LINES, lines) if writer is not None else lines

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
        writer = self._writer
        if writer is not None:
            try:
                writer.send(buffer)
            except WriterGone as gone:
                self._writer_died(gone)  # the buffer now holds the lines left to write
            else:
                buffer.clear()
                return
        try:
            # A trace log that cannot be written (a full disk, a removed directory) must
            # not fail the envelope being logged: `TraceFile` drops the lines, said once.
            self._file.write(buffer)
        finally:
            buffer.clear()

    def _writer_died(self, gone: WriterGone) -> None:
        """From now on this process writes the file: the frames of the buffer the writer
        did not take whole become lines (under the lock)."""
        writer = self._writer
        self._writer = None
        if writer is not None:
            writer.close(wait=0)
        _say(
            f"envelope: the trace log writer for {self.path} ended ({gone.reason}); this "
            "process writes the file itself from now on (what it had taken and not "
            "written is lost)"
        )
        buffer = self._buffer
        start = 0
        for _kind, payload, end in frames(buffer):
            payload.release()
            if end > gone.written:
                break
            start = end
        lines = render_frames(buffer[start:], self._stamp)
        buffer.clear()
        buffer += lines

    def _forked(self) -> None:
        # A forked child (an RQ work horse) must not write its parent's gathered lines
        # (the parent does), nor wait on a lock, a thread or a writer process it did not
        # inherit: it writes the file itself (the fork hook closed its copy of the pipe).
        self._owner = _PID
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._events = []
        self._flusher = None
        self._writer = None
        self._start_writer = False
        self._file = TraceFile(self.path)  # a descriptor of its own

    def flush(self) -> None:
        """Write what is gathered now (also done at exit); with a writer process, wait
        (at most `SYNC_SECONDS`) until it has written everything handed to it."""
        if _PID != self._owner:
            return
        with self._lock:
            self._write_buffer()
            writer = self._writer
            if writer is None:
                return
            try:
                writer.sync(self.SYNC_SECONDS)
            except WriterGone as gone:
                self._writer_died(gone)
                self._write_buffer()

    def close(self) -> None:
        """Flush, stop the writer process (it writes what it holds and exits) and close
        the file (also done at exit)."""
        self.flush()
        if _PID != self._owner:
            return
        with self._lock:
            writer, self._writer = self._writer, None
            self._start_writer = False
        if writer is not None:
            writer.close(wait=self.SYNC_SECONDS)
        self._file.close()


def _is_record(item: Any) -> bool:
    return type(item) is tuple


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _format_exc(exc: Any) -> str:
    if exc is True:
        exc = sys.exc_info()
    if isinstance(exc, BaseException):
        exc = (type(exc), exc, exc.__traceback__)
    if isinstance(exc, tuple) and exc[0] is not None:
        return "".join(traceback.format_exception(*exc))
    return ""
