"""The server's side of the trace log's writer process (`actors.tracing._writer`):
`WriterProcess` starts it and talks to it through two pipes of its own - frames to it,
sync answers back - and `WriterGone` says it is gone. Used by `TraceLogSink`.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
import weakref

from actors.tracing import _writer
from actors.tracing._writer import SYNC, frame


class WriterGone(Exception):
    """The writer process is gone: `written` bytes of the last send reached it."""

    def __init__(self, reason: str, written: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.written = written


class WriterProcess:
    """A running `actors.tracing._writer`: frames go to it on a pipe, sync answers come
    back on another. The pipes' descriptors are this object's own (not a `Popen`'s file
    objects), so that a forked child can close its copies at once (`_close_in_child`)
    and the writer sees its input end when the last process holding it goes."""

    def __init__(self, path: str) -> None:
        data_r, data_w = os.pipe()
        reply_r, reply_w = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-P", _writer.__file__, path],
                stdin=data_r,
                stdout=reply_w,
                close_fds=True,
            )
        except BaseException:
            os.close(data_w)
            os.close(reply_r)
            raise
        finally:
            os.close(data_r)
            os.close(reply_w)
        self.pid = self._proc.pid
        self._fd: int | None = data_w
        self._reply: int | None = reply_r
        self._unanswered = 0
        _WRITERS.add(self)

    def send(self, data: bytes | bytearray) -> None:
        fd = self._fd
        if fd is None:
            raise WriterGone("closed")
        written = 0
        try:
            with memoryview(data) as view:
                while written < len(view):
                    written += os.write(fd, view[written:])
        except OSError as exc:
            raise WriterGone(str(exc) or type(exc).__name__, written) from exc

    def sync(self, timeout: float) -> bool:
        """True once the writer has written everything sent before; False after
        `timeout` (it is still writing: its answer is counted when it comes)."""
        self.send(frame(SYNC))
        self._unanswered += 1
        deadline = time.monotonic() + timeout
        reply = self._reply
        assert reply is not None
        while self._unanswered > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([reply], [], [], left)
            if ready:
                got = os.read(reply, 64)
                if not got:
                    raise WriterGone("its output ended")
                self._unanswered -= len(got)
        return True

    def close(self, wait: float) -> None:
        """End the writer's input (it writes what it holds, then exits); wait for it up
        to `wait` seconds."""
        self._close_in_child()
        _WRITERS.discard(self)
        if wait > 0:
            try:
                self._proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass  # still writing: it exits by itself when done
        else:
            self._proc.poll()

    def _close_in_child(self) -> None:
        fd, reply = self._fd, self._reply
        self._fd = self._reply = None
        for one in (fd, reply):
            if one is not None:
                with contextlib.suppress(OSError):
                    os.close(one)


_WRITERS: weakref.WeakSet[WriterProcess] = weakref.WeakSet()


def _close_writer_pipes() -> None:
    # In a forked child: the parent's writers are not this process's; holding their
    # input open would keep them from seeing it end when the parent goes.
    for writer in list(_WRITERS):
        writer._close_in_child()
    _WRITERS.clear()


os.register_at_fork(after_in_child=_close_writer_pipes)
