"""`ConnectionActor`: one per connection; owns the mailbox and processes it serially."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
from django.utils import translation
from pydantic import BaseModel
from structlog.contextvars import bind_contextvars

from actors._config import ConsumerConfig
from actors._users import user_pk
from actors.actor._answers import OutcomeWriter
from actors.actor._flag import Flag
from actors.actor._in_flight import InFlight
from actors.actor._inbound import Inbound
from actors.actor._mailbox import Mailbox, MailboxStatistics, Settled
from actors.actor._membership import TopicMembership
from actors.actor._outbound import OutboundBudget, ServerTransport
from actors.actor._requests import RequestSupport
from actors.actor._session import NEVER_DUE, SessionClock
from actors.publishing import SETTLE, gate_for, push_message
from actors.request import RequestContext
from actors.tracing import is_enabled, logger
from envelope import TopicsUnavailable, new_trace_id
from handlers import RateLimiter

SendText = Callable[[str], Awaitable[None]]
_perf = time.perf_counter
_monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    handled: int  # envelopes answered (s or f)
    failed: int  # of which answered f, plus frames refused as overloaded
    topics: int  # subscriptions now
    opened: float
    last_received: float | None
    last_sent: float | None
    mailbox: MailboxStatistics


class ConnectionActor(Inbound, SessionClock, RequestSupport, TopicMembership, OutcomeWriter):
    """Processes one connection's envelopes, pushes and job updates, in arrival order.

    The actor does not know Channels: it is given a `send_text` coroutine, an optional
    `close(code)` coroutine and, for topics, a channel layer and its own address. Its
    sides - receiving, sending, answering, topics, what it lends the stages, its user's
    session - are classes of their own over its state (`ActorState`).
    """

    __slots__ = ()

    def __init__(
        self,
        config: ConsumerConfig,
        send_text: SendText,
        *,
        scope: dict[str, Any] | None = None,
        user: Any = None,
        address: str | None = None,
        layer: Any = None,
        close: Callable[[int], Awaitable[None]] | None = None,
        language: str | None = None,
        transport: ServerTransport | None = None,
    ) -> None:
        settings = config.settings
        self.config = config
        self.routing = config.routing
        self._chain = config.chain
        self._timer = config.timer
        self._otel = config.otel
        self.scope = scope if scope is not None else {}
        self.user = user
        self.authenticated = bool(user is not None and getattr(user, "is_authenticated", False))
        self.address = address
        self.language = language
        self.layer = layer
        self.mailbox = Mailbox(settings.mailbox_size)
        self.topics: set[str] = set()
        self.handled_count = 0
        self.failed_count = 0
        self.opened = _monotonic()
        self.last_received: float | None = None
        self.last_sent: float | None = None
        self._send = send_text
        self._close = close
        # What the server holds unsent for the socket, when the server lets us know.
        self._budget = (
            OutboundBudget(transport, settings.max_outbound_bytes, settings.send_timeout)
            if transport is not None
            else None
        )
        self._closed = False
        # Made when first needed: most connections never use them.
        self._limiters: dict[str, RateLimiter] | None = None
        self._slots: anyio.Semaphore | None = None
        self._hand_offs: anyio.Lock | None = None
        self._max_concurrent = settings.max_concurrent
        self._max_deferred = settings.max_deferred
        # Topics' pushes never wait for room in the mailbox; what they hold there counts
        # against the outbound budget (see push_nowait).
        self.queued_chars = 0
        self._max_queued = settings.max_outbound_bytes
        self._in_flight: InFlight | None = None  # deferred requests awaiting their reply
        # When the user's session is next checked against the database (see _session).
        interval = settings.session_check_interval
        self._session_interval = interval
        self._session_due = (
            self.opened + interval if self.authenticated and interval is not None else NEVER_DUE
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._tasks: set[anyio.CancelScope] = set()
        self._done = Flag()  # the mailbox loop has ended
        self._draining = False  # the server is stopping: no more frames from the client
        self._settling: dict[str, anyio.Event] | None = None  # drain's markers in flight
        self._log: Any = None  # bound when first used (most connections never log)
        self._log_info = is_enabled(logging.INFO)
        self._info: Any = None  # the writer of `envelope.handled`, made when first used
        # Its record taker (`handled_recorder`): False until first used, None when the
        # configuration takes no records.
        self._record: Any = False
        self._log_user = user_pk(user)
        self._metrics = config.metrics

    # -- lifecycle -------------------------------------------------------------------

    async def run(
        self,
        *,
        task_group: anyio.abc.TaskGroup | None = None,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Process the mailbox until it is closed.

        Concurrent handlers and other work of the connection run in `task_group` (the
        consumer's, which lives as long as the connection: one task group per connection
        is enough), or in a task group of the actor's own when none is given.
        """
        if task_group is not None:
            await self._serve(task_group, task_status)
            return
        async with anyio.create_task_group() as tg:
            await self._serve(tg, task_status)

    async def _serve(
        self, tg: anyio.abc.TaskGroup, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        if self.language is not None:
            # Activated once, in the actor's own task (Django keeps it in a context
            # variable): every handler of the connection runs in its language.
            translation.activate(self.language)
        # Likewise bound once, in this task's own context: any log line of the connection
        # (an application's logger in a handler too) carries `conn` and `user`.
        bind_contextvars(conn=self.address, user=self._log_user)
        self._tg = tg
        mailbox = self.mailbox
        receive_nowait = mailbox.receive_nowait
        chain = self._chain
        metrics = self._metrics
        if metrics is not None:
            metrics.opened()
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                await self._join_user_topic()
                task_status.started()
                while True:
                    # What is already queued is taken without a checkpoint per item; the
                    # actor yields to the loop when the mailbox is empty (and in handlers).
                    try:
                        item = receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            item = await mailbox.receive()
                        except anyio.EndOfStream:
                            break
                    except anyio.EndOfStream:
                        break
                    if type(item) is str or type(item) is bytes:
                        await chain(RequestContext(self, item, _perf()))
                    else:
                        await item(self)
        finally:
            mailbox.close_reader()
            self._done.set()
            if metrics is not None:
                metrics.closed()

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run `fn(*args)` beside the mailbox; cancelled when the connection goes."""
        assert self._tg is not None, "the actor is not running"
        self._tg.start_soon(self._guarded, fn, args)

    async def _guarded(
        self, fn: Callable[..., Coroutine[Any, Any, Any]], args: Any, closed_too: bool = False
    ) -> None:
        # Its own cancel scope, which `stop()` cancels: the task then ends without a
        # CancelledError (one left in anyio's task_done would keep this actor alive in a
        # reference cycle until the cyclic collector runs).
        if self._closed and not closed_too:
            return
        with anyio.CancelScope() as scope:
            self._tasks.add(scope)
            try:
                await fn(*args)
            finally:
                self._tasks.discard(scope)

    async def stop(self) -> None:
        """The connection is gone: no more posts, running handlers cancelled, topics left."""
        self._closed = True
        self.mailbox.close()
        if self._scope is not None:
            self._scope.cancel()
        for scope in list(self._tasks):
            scope.cancel()
        await self._leave_all()

    @property
    def log(self) -> Any:
        """The library's logger bound to this connection and its user."""
        if self._log is None:
            self._log = logger.bind(conn=self.address, user=self._log_user)
        return self._log

    @property
    def closed(self) -> bool:
        """True once the connection is gone (nothing more is sent)."""
        return self._closed

    async def drain(self, seconds: float, jobs: Callable[[], int] = lambda: 0) -> bool:
        """The server is stopping: take no more frames from the client; finish what is
        queued and running, and wait for the connection's `jobs()` still running in this
        process, delivering what arrives meanwhile (job results, pushes): the socket is
        still open. At most `seconds`; True when everything finished in time."""
        self._draining = True
        finished = False
        with anyio.move_on_after(seconds):
            while True:
                # Idle before the marker too: a job that ends while the marker travels
                # sends its reply after it, so it takes one more round.
                idle = not self._tasks and not jobs()
                await self._settle()
                if idle and not self._tasks and not jobs():
                    finished = True
                    break
                await anyio.sleep(0.01)
        self.mailbox.close()
        return finished

    async def _settle(self) -> None:
        """Return once everything that reached this connection before now was handled:
        what its mailbox holds and, through the channel layer (in order with it), what
        was sent to its address."""
        token = new_trace_id()
        if self._settling is None:
            self._settling = {}
        done = self._settling[token] = anyio.Event()
        try:
            if self.layer is not None and self.address is not None:
                try:
                    message = {"type": SETTLE, "token": token}
                    await gate_for(self.layer).call("send", self.address, message)
                except TopicsUnavailable:
                    await self.post(Settled(token))
            else:
                await self.post(Settled(token))
            await done.wait()
        finally:
            self._settling.pop(token, None)

    def settled(self, token: str) -> None:
        """A `Settled` marker was reached in the mailbox."""
        done = self._settling.get(token) if self._settling is not None else None
        if done is not None:
            done.set()

    def statistics(self) -> ActorStatistics:
        """What the connection has done so far (times are `time.monotonic()` seconds)."""
        return ActorStatistics(
            handled=self.handled_count,
            failed=self.failed_count,
            topics=len(self.topics),
            opened=self.opened,
            last_received=self.last_received,
            last_sent=self.last_sent,
            mailbox=self.mailbox.statistics(),
        )

    async def close(self, code: int = 1000) -> None:
        if self._close is not None and not self._closed:
            await self._close(code)
            self._closed = True

    async def send_model(self, model: BaseModel, i: str | None = None) -> None:
        await self.send_text(push_message(model, i)["text"])
