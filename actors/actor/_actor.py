"""`ConnectionActor`: one per connection; owns the mailbox and processes it serially."""

from __future__ import annotations

import logging
import math
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
from actors.actor._in_flight import InFlight, could_be_terminal, is_push
from actors.actor._mailbox import (
    CloseConnection,
    Deliver,
    Mailbox,
    MailboxClosed,
    MailboxFull,
    MailboxStatistics,
    QueuedPush,
    Settled,
)
from actors.actor._membership import TopicMembership
from actors.actor._outbound import OutboundBudget, ServerTransport
from actors.actor._session import CHECK_SESSION, SIGNAL_GRACE, VERIFY
from actors.publishing import CLOSE, PUSH, SETTLE, TOPICS, gate_for, push_message
from actors.request import RequestContext, Route
from actors.topics import TopicCommand
from actors.tracing import is_enabled, logger
from envelope import (
    Overloaded,
    State,
    TopicsUnavailable,
    Unauthenticated,
    encode,
    new_trace_id,
    peek_envelope,
)
from handlers import RateLimiter

SendText = Callable[[str], Awaitable[None]]
_perf = time.perf_counter
_NEVER = math.inf
_monotonic = time.monotonic
_last_push = [QueuedPush("")]  # the item of the push being handed out (see push_nowait)


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    handled: int  # envelopes answered (s or f)
    failed: int  # of which answered f, plus frames refused as overloaded
    topics: int  # subscriptions now
    opened: float
    last_received: float | None
    last_sent: float | None
    mailbox: MailboxStatistics


class ConnectionActor(TopicMembership, OutcomeWriter):
    """Processes one connection's envelopes, pushes and job updates, in arrival order.

    The actor does not know Channels: it is given a `send_text` coroutine, an optional
    `close(code)` coroutine and, for topics, a channel layer and its own address.
    """

    __slots__ = (
        "__weakref__",
        "_chain",
        "_close",
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
        "language",
        "last_received",
        "layer",
        "mailbox",
        "opened",
        "queued_chars",
        "routing",
        "scope",
        "topics",
        "user",
    )

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
            self.opened + interval if self.authenticated and interval is not None else _NEVER
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

    # -- incoming ----------------------------------------------------------------------

    async def receive(self, frame: str | bytes) -> None:
        """A frame from the socket: into the mailbox, or answered `overloaded` at once."""
        now = self.last_received = _monotonic()
        if self._draining:  # the server is stopping: the client reconnects and retries
            return
        if now >= self._session_due:
            self._check_session_first()
        try:
            self.mailbox.post_nowait(frame)
            if self._metrics is not None:
                self._metrics.posted(len(self.mailbox))
        except MailboxFull:
            t, i = peek_envelope(frame, self.routing.max_frame_bytes)
            i = i or new_trace_id()
            self.failed_count += 1
            if self._metrics is not None:
                self._metrics.refused()
            self.log.warning(
                "envelope.overloaded",
                i=i,
                t=t,
                queued=self.mailbox.size,
                rejected=self.mailbox.statistics().rejected,
            )
            await self.send_text(encode(t or "error", i, Overloaded().payload(), State.FAILED))
        except MailboxClosed:
            pass

    async def deliver(self, text: str) -> None:
        """An encoded push or job update from outside: queued behind what came before it."""
        in_flight = self._in_flight
        if in_flight is not None and in_flight.count and could_be_terminal(text):
            in_flight.settle(text)
        if self._metrics is not None and is_push(text):
            self._metrics.delivered()
        try:
            await self.mailbox.post(Deliver(text))
        except MailboxClosed:
            pass

    def push_nowait(self, text: str) -> None:
        """A topic's push (see `actors.publishing.FanoutHub`): queued behind what came
        before it, never waiting for room. A connection whose queued pushes come to more
        than `ENVELOPE_MAX_OUTBOUND_BYTES` characters is too slow: closed with 4008."""
        queued = self.queued_chars + len(text)
        if queued > self._max_queued:
            self._pushes_overflowed(queued)
            return
        # The hub hands one text to each member in turn: they share one item (an
        # allocation per recipient is what makes the garbage collector run).
        item = _last_push[0]
        if item.text is not text:
            item = _last_push[0] = QueuedPush(text)
        try:
            self.mailbox.force(item)
        except MailboxClosed:
            return
        self.queued_chars = queued
        if self._metrics is not None:
            self._metrics.delivered()

    def message_nowait(self, message: dict[str, Any]) -> None:
        """A channel-layer message sent to a topic's members (`close_group`, topic
        commands), queued like a push."""
        kind = message.get("type")
        if kind == PUSH:
            self.push_nowait(message["text"])
            return
        if kind == CLOSE:
            item: Any = CloseConnection(int(message.get("code", 1000)))
        elif kind == TOPICS:
            item = TopicCommand(message)
        elif kind == VERIFY:
            self.session_changed()
            return
        else:
            self.log.warning("topic.unknown_message", type=kind)
            return
        try:
            self.mailbox.force(item)
        except MailboxClosed:
            pass

    def _pushes_overflowed(self, queued: int) -> None:
        if self._closed or self._tg is None:
            return
        self.mailbox.close_reader()  # what it holds will never be sent
        self.queued_chars = 0
        self._mark_slow("over_budget", queued_chars=queued, max_outbound_bytes=self._max_queued)
        self._tg.start_soon(self._guarded, self._close_now, (self._budget,), True)

    async def post_close(self, code: int) -> None:
        try:
            await self.mailbox.post(CloseConnection(code))
        except MailboxClosed:
            pass

    async def post(self, item: Callable[[ConnectionActor], Awaitable[None]]) -> None:
        """Queue `item(actor)` behind what came before it (dropped once the actor stopped)."""
        try:
            await self.mailbox.post(item)
        except MailboxClosed:
            pass

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

    # -- used by the stages ----------------------------------------------------------

    def hold_deferred(self, ctx: RequestContext) -> None:
        """Before a deferred request is handed to its backend: refuse it when the
        connection is anonymous and the handler is not `public=True`
        (`Route.login_required`: `authorize` says so first, this holds in a pipeline
        without it), or when `ENVELOPE_MAX_DEFERRED` requests of the connection are in
        flight (`too_many_jobs`); else hold its place until its terminal reply arrives."""
        route = ctx.route
        if route.login_required and not self.authenticated:
            raise Unauthenticated()
        if not route.spec.reply:  # no `s` is ever sent: its end is not seen, not counted
            return
        in_flight = self._in_flight
        if in_flight is None:
            in_flight = self._in_flight = InFlight(self._max_deferred)
        in_flight.hold(ctx.envelope.i or "")  # `parse` gave it one

    def release_deferred(self, ctx: RequestContext) -> None:
        """The request held by `hold_deferred` was not enqueued after all."""
        if self._in_flight is not None and ctx.route.spec.reply:
            self._in_flight.release(ctx.envelope.i or "")

    def limiter(self, route: Route) -> RateLimiter:
        """This connection's rate limiter of `route` (made when first needed)."""
        if self._limiters is None:
            self._limiters = {}
        limiter = self._limiters.get(route.name)
        if limiter is None:
            assert route.limiter is not None
            limiter = self._limiters[route.name] = route.limiter()
        return limiter

    async def start_concurrent(
        self, fn: Callable[[RequestContext], Awaitable[None]], ctx: RequestContext
    ) -> None:
        """Run `fn(ctx)` (a `concurrent=True` handler and its reply) beside the mailbox, at
        most `ENVELOPE_MAX_CONCURRENT` at once: beyond that the mailbox waits."""
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max_concurrent)
        await self._slots.acquire()
        self.start_soon(self._release_after, fn, ctx)

    def hand_offs(self) -> anyio.Lock:
        """Held while one deferred request is handed to its backend and answered `q`.

        Hand-offs run beside the mailbox (a hung queue must not hold up a ping), each in
        its own task; taking this (FIFO) lock in the order the mailbox started them keeps
        one connection's requests in the queue, and their `q`, in the order they came."""
        if self._hand_offs is None:
            self._hand_offs = anyio.Lock()
        return self._hand_offs

    async def _release_after(
        self, fn: Callable[[RequestContext], Awaitable[None]], ctx: RequestContext
    ) -> None:
        try:
            await fn(ctx)
        finally:
            assert self._slots is not None
            self._slots.release()

    # -- the user's session (see actors.actor._session) ------------------------------

    def _check_session_first(self) -> None:
        """Queue a session check ahead of the frame about to be posted."""
        self._session_due = _NEVER
        try:
            self.mailbox.post_nowait(CHECK_SESSION)
        except MailboxFull:
            self._session_due = 0.0  # the frame is refused too; check before the next one
        except MailboxClosed:
            pass

    def check_session_soon(self) -> None:
        """Check the user's session before the next frame."""
        if self.authenticated:
            self._session_due = 0.0

    def session_changed(self) -> None:
        """A signal said the user changed: check before the next frame, and in any case
        `SIGNAL_GRACE` seconds from now."""
        if not self.authenticated or self._closed:
            return
        self._session_due = 0.0
        self.start_soon(self._check_session_later)

    async def _check_session_later(self) -> None:
        await anyio.sleep(SIGNAL_GRACE)
        if self._session_due == 0.0:  # no frame has asked for the check meanwhile
            self._session_due = _NEVER
            await self.post(CHECK_SESSION)

    def session_checked(self) -> None:
        """The session holds: the next check is due after the interval."""
        interval = self._session_interval
        self._session_due = _monotonic() + interval if interval is not None else _NEVER
