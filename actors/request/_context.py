"""`RequestContext`: one per envelope, what the stages and the handler share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
from pydantic import BaseModel

from actors.request._outcome import Outcome
from actors.request._route import Route, Routing
from envelope import Envelope, State, encode, wire_name
from handlers import Context, HandlerSpec, RateLimiter, checked_progress


class RequestActor(Protocol):
    """What a request needs of its connection's actor (`actors.actor.ConnectionActor`):
    declared here, below the actor, so that the request layer never imports upwards.
    The stages need the connection's identity, its per-consumer `routing`, its rate
    limiters, its task group (`start_concurrent`), its bound on deferred requests
    in flight (`hold_deferred`) and the one writer of outcomes (`answer`); handlers need the rest
    of `Context`."""

    address: str | None
    authenticated: bool
    config: Any
    layer: Any
    routing: Routing
    scope: dict[str, Any]
    topics: set[str]
    user: Any
    _log_info: bool

    @property
    def log(self) -> Any: ...

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int = 1000) -> None: ...

    async def publish(self, topic: str, model: BaseModel, *, i: str | None = None) -> None: ...

    async def subscribe(self, topic: str) -> None: ...

    async def leave(self, topic: str) -> None: ...

    async def start_concurrent(
        self, fn: Callable[[RequestContext], Awaitable[None]], ctx: RequestContext
    ) -> None: ...

    def start_soon(self, fn: Callable[..., Any], *args: Any) -> None: ...

    def limiter(self, route: Route) -> RateLimiter: ...

    def hold_deferred(self, ctx: RequestContext) -> None: ...

    def release_deferred(self, ctx: RequestContext) -> None: ...

    def hand_offs(self) -> anyio.Lock: ...

    async def answer(self, ctx: RequestContext, outcome: Any = None) -> None: ...

    def unanswered(self, ctx: RequestContext) -> None: ...


class RequestContext(Context):
    """The `Context` of one request, and the pipeline's working state for it.

    Stages read and set: `frame` (raw text or bytes), `envelope` (after `parse`),
    `route`, `spec` and `message` (after `validate`), `result` (after `dispatch`), and
    `outcome` when the request went elsewhere (see `actors.request._outcome`: `Queued`
    by a backend, `Later` for a task of the connection); `respond` hands what became of
    the request to the actor's one writer of replies.
    """

    __slots__ = (
        "_log",
        "actor",
        "envelope",
        "frame",
        "message",
        "outcome",
        "result",
        "route",
        "span",
        "spec",
        "started",
        "timings",
    )

    def __init__(self, actor: RequestActor, frame: str | bytes, started: float) -> None:
        self.actor = actor
        self.frame = frame
        self.started = started
        self.envelope: Envelope = None  # type: ignore[assignment]  # set by `parse`
        self.message: BaseModel = None  # type: ignore[assignment]  # set by `validate`
        self.route: Route = None  # type: ignore[assignment]  # set by `validate`
        self.spec: HandlerSpec = None  # type: ignore[assignment]  # set by `validate`
        self.result: Any = None
        self.outcome: Outcome = None
        self._log: Any = None
        # Inclusive seconds per stage, when the chain is timed (actors.pipeline._timed).
        self.timings: list[int] | None = None  # perf_counter_ns when each stage started
        # `span`: the envelope's OpenTelemetry span, set (and read) only when the consumer
        # traces with OpenTelemetry (actors.tracing.RequestSpans): left unset otherwise.
        self.span: Any

    @property
    def user(self) -> Any:
        return self.actor.user

    @property
    def connection(self) -> str | None:
        return self.actor.address

    @property
    def scope(self) -> dict[str, Any]:
        return self.actor.scope

    @property
    def log(self) -> Any:
        if self._log is None:
            env = self.envelope
            self._log = self.actor.log.bind(
                i=env.i if env is not None else None, t=env.t if env is not None else None
            )
        return self._log

    async def reply(self, state: State, payload: Any = None) -> None:
        """Send a reply to this request (its `t` and `i`) with `state`."""
        env = self.envelope
        await self.actor.send_text(encode(env.t, env.i, payload, state))

    async def send(self, model: BaseModel) -> None:
        actor = self.actor
        t = wire_name(model)
        await actor.send_text(encode(t, self.envelope.i, model))
        if actor._log_info:
            actor.log.info("push.sent", i=self.envelope.i, t=t)

    async def progress(self, model: BaseModel) -> None:
        spec = self.spec
        await self.reply(State.RUNNING, checked_progress(spec.progress, model, spec.qualname))

    async def publish(self, topic: str, model: BaseModel) -> None:
        await self.actor.publish(topic, model, i=self.envelope.i)

    async def subscribe(self, topic: str) -> None:
        await self.actor.subscribe(topic)

    async def leave(self, topic: str) -> None:
        await self.actor.leave(topic)
