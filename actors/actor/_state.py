"""`ActorState`: what a `ConnectionActor` holds, in one place.

The actor is written as sides, each a class of its own over this state: sending
(`SlowReaderGuard`), answering (`OutcomeWriter`), receiving (`Inbound`), its topics
(`TopicMembership`), what it lends the stages (`RequestSupport`) and its user's session
(`SessionClock`). CPython lays out `__slots__` for one line of classes only, so every
slot is here and the sides add none: an actor has no `__dict__`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import anyio
    import anyio.abc

    from actors._config import ConsumerConfig
    from actors.actor._flag import Flag
    from actors.actor._in_flight import InFlight
    from actors.actor._mailbox import Mailbox
    from actors.pipeline import Chain, StageTimer
    from actors.request import Routing
    from actors.tracing import RequestSpans
    from handlers import RateLimiter


class ActorState:
    """The slots of a `ConnectionActor` (set in its `__init__`), typed."""

    __slots__ = (
        "__weakref__",
        "_budget",
        "_chain",
        "_close",
        "_closed",
        "_done",
        "_draining",
        "_hand_offs",
        "_in_flight",
        "_info",
        "_limiters",
        "_log",
        "_log_info",
        "_log_user",
        "_max_concurrent",
        "_max_deferred",
        "_max_queued",
        "_metrics",
        "_otel",
        "_record",
        "_scope",
        "_send",
        "_session_due",
        "_session_interval",
        "_settling",
        "_slots",
        "_tasks",
        "_tg",
        "_timer",
        "address",
        "authenticated",
        "config",
        "failed_count",
        "handled_count",
        "language",
        "last_received",
        "last_sent",
        "layer",
        "mailbox",
        "opened",
        "queued_chars",
        "routing",
        "scope",
        "topics",
        "user",
    )

    config: ConsumerConfig
    routing: Routing
    scope: dict[str, Any]
    user: Any
    authenticated: bool
    address: str | None
    language: str | None
    layer: Any
    mailbox: Mailbox
    topics: set[str]
    handled_count: int  # envelopes answered (s, f or q)
    failed_count: int  # envelopes answered f, plus frames refused as overloaded
    opened: float
    last_received: float | None
    last_sent: float | None
    queued_chars: int  # what the queued pushes hold (see `Inbound.push_nowait`)
    _chain: Chain
    _timer: StageTimer
    _otel: RequestSpans | None
    _send: Callable[[str], Awaitable[None]]
    _close: Callable[[int], Awaitable[None]] | None
    _budget: Any  # its `SlowReaderGuard`'s OutboundBudget (typed there), or None
    _closed: bool
    _limiters: dict[str, RateLimiter] | None
    _slots: anyio.Semaphore | None
    _hand_offs: anyio.Lock | None
    _max_concurrent: int
    _max_deferred: int
    _max_queued: int
    _in_flight: InFlight | None
    _session_interval: float | None
    _session_due: float
    _tg: anyio.abc.TaskGroup | None
    _scope: anyio.CancelScope | None
    _tasks: set[anyio.CancelScope]
    _done: Flag
    _draining: bool
    _settling: dict[str, anyio.Event] | None
    _log: Any
    _log_info: bool
    _info: Any
    _record: Any
    _log_user: Any
    _metrics: Any  # actors.metrics.Metrics, or None
