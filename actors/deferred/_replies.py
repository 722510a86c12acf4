"""The replies of one job, and where they go (`Outbox`): the actor, or the channel layer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from actors.tracing import JobSpan
from envelope import State, Timeout, encode


class Outbox(Protocol):
    """Where a job's replies go: the connection's actor, or the channel layer.

    `via_layer`: replies go through the channel layer to the connection's address, so
    the job's pushes (`actors.publishing._publish`, on commit) go the same way and keep their order.
    """

    via_layer: bool

    def connection_gone(self) -> bool: ...

    def to_connection(self, text: str) -> None: ...


class JobReplies:
    """The replies of one job: at most one terminal, nothing after it, nothing to a gone
    connection; thread-safe, since a timeout may answer from a timer thread."""

    def __init__(
        self,
        req: dict[str, Any],
        outbox: Outbox,
        log: Any,
        on_terminal: Callable[[], None] | None = None,
        span: JobSpan | None = None,
    ) -> None:
        self.t, self.i = req["t"], req["i"]
        self.outbox = outbox
        self.log = log
        self.quiet = not req.get("reply", True)
        self.finished = False
        self.timed_out = False
        self.claimed = False
        self._lock = threading.Lock()
        self._on_terminal = on_terminal
        self.span = span  # the job's OpenTelemetry span: its replies are events on it

    def send(self, state: State, payload: Any = None) -> bool:
        with self._lock:
            if self.finished:
                return False
            if state.terminal:
                self.finished = True
        if self.span is not None:  # what became of the job, sent or not
            self.span.reply(state, payload)
        if self.quiet and state is not State.FAILED:
            return False
        if self.outbox.connection_gone():
            self.log.info("job.connection_gone", state=state.value)
            return False
        self.outbox.to_connection(encode(self.t, self.i, payload, state))
        if state.terminal and self._on_terminal is not None:
            self._on_terminal()
        return True

    def claim(self) -> bool:
        """The handler is done: from now on the watchdog may not answer. False when it
        already has (the transaction must then roll back)."""
        with self._lock:
            if self.timed_out:
                return False
            self.claimed = True
            return True

    def time_out(self, seconds: float, *, force: bool = False) -> None:
        """Answer `timeout` now (the watchdog, or RQ's job timeout with `force`, since the
        transaction is being rolled back then); the late result is rolled back."""
        with self._lock:
            if self.finished or (self.claimed and not force):
                return
            self.timed_out = True
        self.log.warning("job.timeout", timeout=seconds)
        self.send(
            State.FAILED,
            Timeout(f"The job took longer than {seconds:g} s.", timeout=seconds).payload(),
        )
