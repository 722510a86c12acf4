"""What a connection lends the stages of its requests: the hold on its deferred
requests in flight, its rate limiters, the slots of its concurrent handlers and the
order of its hand-offs, each made when first needed (most connections never use them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from actors.actor._in_flight import InFlight
from actors.actor._state import ActorState
from actors.request import RequestContext, Route
from envelope import Unauthenticated
from handlers import RateLimiter


class RequestSupport(ActorState):
    """The stages' side of `ConnectionActor` (its state: `ActorState`)."""

    __slots__ = ()

    start_soon: Callable[..., None]

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
