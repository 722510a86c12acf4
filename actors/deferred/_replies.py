"""The replies of one job, and where they go (`Outbox`): the actor, or the channel layer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from actors.tracing import JobSpan
from envelope import State, Timeout, encode

#: `hold(delay, release, needed)`: call the blocking `release()` in `delay` seconds, from
#: another thread, if `needed()` then still says so (`HoldTimer.call_later`).
Hold = Callable[[float, Callable[[], None], Callable[[], bool]], None]


class Outbox(Protocol):
    """Where a job's replies go: the connection's actor, or the channel layer.

    `via_layer`: replies go through the channel layer to the connection's address, so
    the job's pushes (`actors.publishing._publish`, on commit) go the same way and keep their order.
    `to_connection` sends its texts in this order, in one message where it can.
    """

    via_layer: bool

    def connection_gone(self) -> bool: ...

    def to_connection(self, *texts: str) -> None: ...


class JobReplies:
    """The replies of one job: at most one terminal, nothing after it, nothing to a gone
    connection; thread-safe, since a timeout may answer from a timer thread.

    With `hold=(seconds, schedule)`, the bare `r` sent when the job starts is held for up
    to `seconds`: a job that ends sooner sends it with its terminal reply, in one message
    (one channel-layer send instead of two, and one delivery to the server); otherwise it
    goes out when the time is up, or before anything else of the job's reaches the
    connection (progress, its own pushes: see `release`). The client sees the same frames
    in the same order either way.
    """

    def __init__(
        self,
        req: dict[str, Any],
        outbox: Outbox,
        log: Any,
        on_terminal: Callable[[], None] | None = None,
        hold: tuple[float, Hold] | None = None,
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
        self._hold = hold
        self._held: tuple[State, str] | None = None
        # Held while a reply is handed to the outbox: the job's thread, the hold's timer
        # and a watchdog send one after the other, in the order they took it.
        self._sending = threading.Lock()
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
        text = encode(self.t, self.i, payload, state)
        with self._sending:
            if self._hold is not None and state is State.RUNNING and payload is None:
                seconds, schedule = self._hold
                self._hold = None  # only the first `r`
                self._held = (state, text)
                schedule(seconds, self.release, self.holding)
                return True
            sent = self._deliver(state, text)
        if sent and state.terminal and self._on_terminal is not None:
            self._on_terminal()
        return sent

    def holding(self) -> bool:
        """Is an `r` waiting to be sent?"""
        return self._held is not None

    def release(self) -> None:
        """Send the held `r` now, if there is one (its time is up, or something else of
        the job's is about to reach the connection)."""
        with self._sending:
            if self._held is not None:
                self._deliver(*self._held)

    def _deliver(self, state: State, text: str) -> bool:
        held, self._held = self._held, None
        if self.outbox.connection_gone():
            self.log.info("job.connection_gone", state=state.value)
            return False
        if held is not None and held[1] is not text:
            self.outbox.to_connection(held[1], text)
        else:
            self.outbox.to_connection(text)
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
