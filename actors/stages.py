"""The default pipeline's stages: `respond, parse, validate, authorize, dispatch`.

Each is `async def stage(ctx, call_next) -> None`, with `await call_next(ctx)` to go
on. A middleware of your own has the same shape and can go anywhere in
`ENVELOPE_PIPELINE`; raise a `Failure` to answer `f` with its code.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable

import anyio
from pydantic import ValidationError

from actors.request._context import RequestContext
from actors.tracing._processors import trace_vars
from envelope import (
    BadEnvelope,
    Failure,
    Forbidden,
    Internal,
    InvalidPayload,
    ProtocolError,
    RateLimited,
    State,
    Timeout,
    Unauthenticated,
    UnknownType,
    decode,
    encode,
    new_trace_id,
    peek_envelope,
)
from handlers import checked_result

Next = Callable[[RequestContext], Awaitable[None]]

_monotonic = time.monotonic
_I_VAR, _T_VAR = trace_vars()
_SUCCESS = State.SUCCESS


async def respond(ctx: RequestContext, call_next: Next, *, owns_reply: bool = False) -> None:
    """Outermost: result -> `s`; `Failure` -> `f` with its code; anything else -> `internal`.

    Unexpected exceptions are logged with their traceback under the envelope's `i` and
    answered `internal`, with nothing of the exception in the reply. A concurrent
    handler's task runs its handler through this too (`owns_reply=True`).
    """
    actor = ctx.actor
    try:
        await call_next(ctx)
    except Failure as exc:
        await _answer_failure(ctx, exc)
    except Exception as exc:
        env = ctx.envelope
        actor.log.error(
            "envelope.internal_error",
            i=env.i if env is not None else None,
            t=env.t if env is not None else None,
            handler=ctx.spec.qualname if ctx.spec is not None else None,
            exc_info=exc,
        )
        await _answer_failure(ctx, Internal())
    else:
        if owns_reply or not ctx.handed_off:
            spec = ctx.spec
            if spec is not None and spec.reply:
                env = ctx.envelope
                await actor.send_text(encode(env.t, env.i, ctx.result, _SUCCESS))
            actor.handled(ctx, _SUCCESS)


async def _answer_failure(ctx: RequestContext, exc: Failure) -> None:
    """`f` with the failure's payload, under the request's `t` and `i` when they are known
    (what could be read of a malformed frame otherwise, else `error` and a new `i`)."""
    env = ctx.envelope
    if env is not None:
        t, i = env.t, env.i
    elif isinstance(exc, ProtocolError):
        t, i = exc.t or "error", exc.i or new_trace_id()
    else:
        t, i = "error", new_trace_id()
    actor = ctx.actor
    await actor.send_text(encode(t, i, exc.payload(), State.FAILED))
    actor.failed_count += 1
    actor.handled(ctx, State.FAILED, exc.code, t=t, i=i)


async def parse(ctx: RequestContext, call_next: Next) -> None:
    """Enforce `ENVELOPE_MAX_FRAME_BYTES`, decode the frame, give it an `i` if it has none,
    and bind `i` and `t` for the log lines of the rest of the chain."""
    frame = ctx.frame
    if type(frame) is bytes:
        t, i = peek_envelope(frame, ctx.actor.max_frame_bytes)
        raise BadEnvelope(
            "Binary frames are not accepted; send the envelope as JSON text.", t=t, i=i
        )
    env = decode(frame, ctx.actor.max_frame_bytes)
    if env.i is None:
        env.i = new_trace_id()
    ctx.envelope = env
    # `i` and `t` in structlog's context for exactly as long as this envelope is handled:
    # every log line meanwhile (the application's too) carries them, the next does not.
    i_token = _I_VAR.set(env.i)
    t_token = _T_VAR.set(env.t)
    try:
        await call_next(ctx)
    finally:
        _T_VAR.reset(t_token)
        _I_VAR.reset(i_token)


async def validate(ctx: RequestContext, call_next: Next) -> None:
    """Find the handler of `t` and validate `p` into its message model."""
    env = ctx.envelope
    spec = ctx.actor.routes.get(env.t)
    if spec is None:
        raise UnknownType(f"There is no handler for message type {env.t!r}.", t=env.t, i=env.i)
    ctx.spec = spec
    p = env.p
    try:
        ctx.message = spec.model.parse_obj(p if p is not None else {})
    except ValidationError as exc:
        raise InvalidPayload(
            errors=[
                {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
                for err in exc.errors()
            ]
        ) from None
    await call_next(ctx)


async def authorize(ctx: RequestContext, call_next: Next) -> None:
    """Connection auth (`ENVELOPE_ALLOW_UNAUTHENTICATED`, `public=`), `rate=`, `permission=`."""
    spec = ctx.spec
    actor = ctx.actor
    if not spec.public and not actor.authenticated and not actor.allow_unauthenticated:
        raise Unauthenticated()
    if spec.unchecked:
        await call_next(ctx)
        return
    if spec.rate is not None:
        wait = actor.rate_limiter(spec).hit(_monotonic())
        if wait:
            raise RateLimited(
                f"Too many {spec.name!r} requests; retry in {wait:.2f} s.",
                retry_after=round(wait, 3),
            )
    if spec.permission is not None and spec.is_async:
        allowed = spec.permission(ctx.message, ctx)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            raise Forbidden()
    await call_next(ctx)


async def dispatch(ctx: RequestContext, call_next: Next) -> None:
    """Call the handler; or start it concurrently; or defer it to a worker and answer `q`."""
    spec = ctx.spec
    actor = ctx.actor
    if spec.deferred:
        await actor.defer(ctx)
        ctx.handed_off = True
    elif spec.concurrent:
        await actor.start_concurrent(_respond_concurrently, ctx)
        ctx.handed_off = True
    else:
        await run_handler(ctx)
    await call_next(ctx)


async def run_handler(ctx: RequestContext) -> None:
    """`a` first for `ack=True`; then await the handler within its timeout and keep what
    it returned, checked against its reply model, in `ctx.result`."""
    spec = ctx.spec
    if spec.ack:
        await ctx.reply(State.ACKNOWLEDGED)
    timeout = spec.timeout or ctx.actor.default_timeout
    if timeout is None:
        result = await spec.call(ctx.message, ctx)
    else:
        with anyio.move_on_after(timeout) as scope:
            result = await spec.call(ctx.message, ctx)
        if scope.cancelled_caught:
            raise Timeout(f"The request took longer than {timeout:g} s.", timeout=timeout)
    ctx.result = checked_result(spec, result)


async def _respond_concurrently(ctx: RequestContext) -> None:
    # A concurrent handler's own task: it runs the handler and sends the reply itself.
    await respond(ctx, run_handler, owns_reply=True)
