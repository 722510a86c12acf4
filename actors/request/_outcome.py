"""What became of a request, as a value.

The pipeline and the backends do not write replies: they return (or leave in
`ctx.outcome`) what became of the request, or raise a `Failure`, and one writer - the
actor's `answer(ctx, outcome)` - turns that into the frame, the `envelope.handled` event
and the counters:

    None            the handler ran here: `s` with `ctx.result` (nothing for `reply=False`)
    Failure         `f` with its code and payload (an unexpected exception is `Internal`)
    Queued(...)     handed to a worker, which sends `r` and the terminal reply itself:
                    `q` now (unless the job's own replies are all the client gets)
    Later(...)      handed to a task of this connection (a `concurrent=True` handler, a
                    subscription check in a thread), which answers through the same
                    writer when it ends; `first`: a state to answer now (`q`), `then`:
                    the task to start once it is sent
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from envelope import State


@dataclass(frozen=True, slots=True)
class Queued:
    """Handed to a worker (a backend's `submit`, a subscription check on RQ)."""

    #: False when the request's handler is `reply=False`: only an `f` is ever sent.
    reply: bool = True


@dataclass(frozen=True, slots=True)
class Later:
    """Handed to a task of this connection, which answers when it ends."""

    first: State | None = None
    then: Callable[[], Awaitable[None]] | None = None


#: A `concurrent=True` handler's task (already started) answers; nothing is sent now.
LATER = Later()

Outcome = Queued | Later | None
