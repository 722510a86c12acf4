"""The trace log's writer process, and the rendering it shares with the server.

A server logging every envelope at INFO spends most of that event's cost on work that
need not happen in the server: the stage durations, the timestamp's text, the event's
dict and its JSON. With the library's production set-up (`configure_logging(console=False)`)
the server only notes a record per envelope - a tuple of what it knows (ids, state, the
stage marks, the clock) - and hands a batch of them to this process, which computes the
rest and appends the lines to the file (`TraceLogSink(..., writer_process=True)`; see
`_sink`). Every other line the server logs goes through the same pipe, after what came
before it, so the file keeps the order in which things were logged.

Run as `python -P _writer.py PATH`: standalone (the standard library and orjson only), so
that it starts in a few tens of milliseconds and never imports the server's packages.
It ignores SIGINT and SIGTERM (a Ctrl-C reaches the whole process group; the server's own
shutdown decides) and exits when its input ends: when the server exits or is killed, the
pipe's contents are read to the end and written - a crash loses nothing handed over.

The frames on the pipe: one kind byte and a 4-byte little-endian length, then
- `L`: whole JSON lines, rendered by the server;
- `R`: `marshal.dumps((pid, offset, records))`, `records` a list of `HandledRecord`
  tuples and `offset` what `time_ns()` was ahead of `perf_counter_ns()` when the batch
  was framed (a record's line is stamped `now + offset`: no wall-clock read per record);
- `S`: a sync: once everything before it is written, the writer answers one byte `S` on
  its stdout (`flush_trace_logs()` waits for it).

The functions here are also the server's own rendering, when it writes the file itself
(no writer process, or a writer that died): one piece of code for both.
"""

from __future__ import annotations

import itertools
import marshal
import os
import signal
import struct
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson


def _json_default(obj: Any) -> Any:
    return repr(obj)


_LINE = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_REPR = itertools.repeat(_json_default)  # json_line's arguments, for `map`
_LINES = itertools.repeat(_LINE)
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


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


def json_lines(events: Sequence[Mapping[str, Any]]) -> bytes:
    """`events` as JSON lines: all in one C loop (a few hundred events cost less than a
    call each), or each on its own when one of them needs `json_line`'s fallbacks."""
    try:
        return b"".join(map(orjson.dumps, events, _REPR, _LINES))
    except TypeError:
        return b"".join(map(json_line, events))


_DIGITS = tuple(f"{k:03d}" for k in range(1000))


class IsoUTC:
    """Nanoseconds since the epoch as ISO 8601 UTC text with microseconds and a `Z`, as
    structlog's `TimeStamper(fmt="iso", utc=True)` writes the time: the date and time
    are formatted once per second, the microseconds from a table."""

    def __init__(self) -> None:
        # (the current second's first ns, its text): one tuple, replaced whole, so that a
        # thread never reads one second's start with another's text.
        self._second: tuple[int, str] = (-(10**9), "")

    def text(self, ns: int) -> str:
        start, text = self._second
        if not start <= ns < start + 1_000_000_000:
            second = ns // 1_000_000_000
            start = second * 1_000_000_000
            text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._second = (start, text)
        us = (ns - start) // 1000  # < 10**6: small-integer arithmetic from here
        return f"{text}{_DIGITS[us // 1000]}{_DIGITS[us % 1000]}Z"


def stage_durations(
    names: Sequence[str], marks: Sequence[int], now: int
) -> tuple[int, dict[str, int]]:
    """`(duration_us, stages_us)` from a timed chain's marks (`perf_counter_ns` when each
    stage started, then when the innermost one called on; 0 for a stage never reached)
    and the clock `now`: whole µs since the first mark, and per stage.

    The time after the innermost stage called on - the reply being encoded and sent, what
    the stages do on the way back - goes to the outermost stage. When a stage did not
    call on (it raised, or handed the request over), it gets the time until `now`, and
    the stages after it 0.
    """
    if marks[-1] and len(names) == 5:  # the default pipeline, every stage called on:
        # unrolled, a third cheaper than the loop below
        a, b, c, d, e, f = marks
        n0, n1, n2, n3, n4 = names
        out = {
            n0: (b - a + now - f) // 1000,
            n1: (c - b) // 1000,
            n2: (d - c) // 1000,
            n3: (e - d) // 1000,
            n4: (f - e) // 1000,
        }
    elif marks[-1]:  # every stage called on
        out = {}
        if names:
            out[names[0]] = (marks[1] - marks[0] + now - marks[-1]) // 1000
            for k in range(1, len(names)):
                out[names[k]] = (marks[k + 1] - marks[k]) // 1000
    else:
        out = {}
        previous = marks[0]
        stopped = False
        for name, mark in zip(names, marks[1:], strict=True):
            if stopped:
                out[name] = 0
            elif mark:
                out[name] = (mark - previous) // 1000
                previous = mark
            else:
                out[name] = (now - previous) // 1000
                stopped = True
    return (now - marks[0]) // 1000, out


#: What a server notes per envelope for `envelope.handled`: `(conn, user, i, t, state,
#: code, marks, names, now)` - `state` as its text, `marks` and `now` from
#: `perf_counter_ns`, `names` the stages'. The line's timestamp is `now` on the wall
#: clock, told by the offset between the clocks when the batch is rendered or framed
#: (`clock_offset`).
HandledRecord = tuple[Any, Any, Any, Any, Any, Any, Sequence[int], Sequence[str], int]


def clock_offset() -> int:
    """What `time_ns()` is ahead of `perf_counter_ns()` now: a `HandledRecord`'s `now`
    plus this is the wall-clock time of its line."""
    return time.time_ns() - time.perf_counter_ns()


def handled_event(
    conn: Any,
    user: Any,
    i: Any,
    t: Any,
    state: Any,
    code: Any,
    duration: Any,
    stages: Any,
    timestamp: Any,
    pid: Any,
) -> dict[str, Any]:
    """An `envelope.handled` event: the keys in the order the library's processor chain
    gives them (the event's own, then `event`, `level`, `timestamp`, `process`)."""
    return {
        "conn": conn,
        "user": user,
        "i": i,
        "t": t,
        "state": state,
        "code": code,
        "duration_us": duration,
        "stages_us": stages,
        "event": "envelope.handled",
        "level": "info",
        "timestamp": timestamp,
        "process": pid,
    }


def handled_events(
    records: Iterable[HandledRecord], pid: int, offset: int, stamp: IsoUTC
) -> list[dict[str, Any]]:
    """The `envelope.handled` events of `records` (`handled_event`), stamped with their
    `now` plus `offset` (`clock_offset`)."""
    text = stamp.text
    return [
        handled_event(
            conn,
            user,
            i,
            t,
            state,
            code,
            *stage_durations(names, marks, now),
            text(now + offset),
            pid,
        )
        for conn, user, i, t, state, code, marks, names, now in records
    ]


LINES = b"L"
RECORDS = b"R"
SYNC = b"S"
_HEAD = struct.Struct("<cI")
HEAD_SIZE = _HEAD.size
#: A frame's payload at most (a longer run of lines is sent as several frames).
MAX_PAYLOAD = 1 << 30


def frame(kind: bytes, payload: bytes | bytearray | memoryview = b"") -> bytes:
    return _HEAD.pack(kind, len(payload)) + payload


def records_frame(pid: int, offset: int, records: list[HandledRecord]) -> bytes:
    """An `R` frame of `records` (raises ValueError when one holds a value marshal cannot
    write: the caller renders those itself)."""
    return frame(RECORDS, marshal.dumps((pid, offset, records)))


def frames(data: bytes | bytearray, start: int = 0) -> Iterator[tuple[bytes, memoryview, int]]:
    """`(kind, payload, end)` of each whole frame of `data` from `start`; a frame not yet
    whole is left (the last `end` says where it starts)."""
    size = len(data)
    with memoryview(data) as view:  # released when done: `data` may then be resized
        while start + HEAD_SIZE <= size:
            kind, length = _HEAD.unpack_from(data, start)
            end = start + HEAD_SIZE + length
            if end > size:
                return
            yield kind, view[start + HEAD_SIZE : end], end
            start = end


def render_frame(kind: bytes, payload: memoryview, stamp: IsoUTC) -> bytes:
    """The lines of one `L` or `R` frame (b"" for a sync or an unknown kind)."""
    if kind == LINES:
        return bytes(payload)
    if kind == RECORDS:
        try:
            pid, offset, records = marshal.loads(payload)
            return json_lines(handled_events(records, pid, offset, stamp))
        except Exception as exc:  # a record this version cannot read: said, not fatal
            return json_line({"event": "trace_log.unreadable", "render_error": repr(exc)})
    return b""


def render_frames(data: bytes | bytearray, stamp: IsoUTC) -> bytes:
    """The lines of every whole frame of `data` (the server's own rendering of frames a
    writer process did not take, when it died)."""
    return b"".join(render_frame(kind, payload, stamp) for kind, payload, _ in frames(data))


class TraceFile:
    """The trace log, appended whole lines at a time (`O_APPEND`, each write whole
    lines), opened when first written (a failure to open is a failed write); a write
    that fails drops its lines and is said once on stderr until writes work again. The
    writer process's file, and a `TraceLogSink`'s when it writes the file itself."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._failing = False

    def write(self, data: bytes | bytearray) -> None:
        if not data:
            return
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            with memoryview(data) as view:
                written = os.write(self._fd, view)
                while written < len(view):
                    written += os.write(self._fd, view[written:])
        except OSError as exc:
            if not self._failing:
                self._failing = True
                print(
                    f"envelope: cannot write the trace log {self.path}: {exc}; "
                    "its lines are dropped until it can be written again",
                    file=sys.stderr,
                    flush=True,
                )
        else:
            self._failing = False

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def serve(path: str, read_fd: int = 0, reply_fd: int = 1) -> None:
    """Read frames from `read_fd` until it ends, append their lines to `path`; answer
    each sync on `reply_fd` once what came before it is written."""
    out = TraceFile(path)
    stamp = IsoUTC()
    pending = bytearray()
    while True:
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        pending += chunk
        lines = bytearray()
        taken = 0
        for kind, payload, end in frames(pending):
            taken = end
            if kind == SYNC:
                out.write(lines)
                lines.clear()
                os.write(reply_fd, SYNC)
            else:
                lines += render_frame(kind, payload, stamp)
            payload.release()
        out.write(lines)
        del pending[:taken]
    # The server is gone: a frame it did not finish writing cannot be read.


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if len(argv) != 2:
        print("usage: _writer.py TRACE_LOG_PATH", file=sys.stderr)
        return 2
    serve(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
