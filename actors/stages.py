"""The default pipeline's stages: `respond, parse, validate, authorize, dispatch`.

Each is `async def stage(ctx, call_next) -> None`, with `await call_next(ctx)` to go
on. A middleware of your own has the same shape and can go anywhere in
`ENVELOPE_PIPELINE`; raise a `Failure` to answer `f` with its code.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
from pydantic import ValidationError

from actors.request import LATER, RequestContext
from actors.tracing import note_exception, trace_vars
from envelope import (
    BadEnvelope,
    Failure,
    Forbidden,
    Internal,
    InvalidPayload,
    RateLimited,
    State,
    Timeout,
    Unauthenticated,
    UnknownType,
    decode,
    new_trace_id,
    peek_envelope,
)
from handlers import checked_result

Next = Callable[[RequestContext], Awaitable[None]]

_monotonic = time.monotonic
_I_VAR, _T_VAR = trace_vars()


async def respond(ctx: RequestContext, call_next: Next) -> None:
    """Outermost: hand what became of the request to the actor's one writer of replies.

    What the rest of the chain left in `ctx.outcome` (the result by default: `s`), a
    `Failure` raised anywhere (`f` with its code), or, for any other exception, `internal`:
    logged with its traceback under the envelope's `i`, with nothing of it in the reply.
    """
    await _answer_after(ctx, call_next)


async def _answer_after(ctx: RequestContext, step: Next) -> None:
    try:
        await step(ctx)
    except Failure as exc:
        await ctx.actor.answer(ctx, exc)
    except Exception as exc:
        await ctx.actor.answer(ctx, internal_error(ctx, exc))
    except BaseException:
        ctx.actor.unanswered(ctx)  # cancelled: the connection is gone
        raise
    else:
        await ctx.actor.answer(ctx, ctx.outcome)


def internal_error(ctx: RequestContext, exc: BaseException) -> Internal:
    """Log an unexpected exception with its traceback under the request's `i`; the
    `internal` failure to answer instead (saying nothing of it)."""
    env = ctx.envelope
    ctx.actor.log.error(
        "envelope.internal_error",
        i=env.i if env is not None else None,
        t=env.t if env is not None else None,
        handler=ctx.spec.qualname if ctx.spec is not None else None,
        exc_info=exc,
    )
    note_exception(ctx, exc)  # on the envelope's span, when it has one
    return Internal()


async def parse(ctx: RequestContext, call_next: Next) -> None:
    """Enforce `ENVELOPE_MAX_FRAME_BYTES`, decode the frame, give it an `i` if it has none,
    and bind `i` and `t` for the log lines of the rest of the chain."""
    frame = ctx.frame
    limit = ctx.actor.routing.max_frame_bytes
    if type(frame) is bytes:
        t, i = peek_envelope(frame, limit)
        raise BadEnvelope(
            "Binary frames are not accepted; send the envelope as JSON text.", t=t, i=i
        )
    env = decode(frame, limit)
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
    """Find the route of `t` and validate `p` into its handler's message model."""
    env = ctx.envelope
    route = ctx.actor.routing.routes.get(env.t)
    if route is None:
        raise UnknownType(
            f"There is no handler for message type {env.t!r}. Check its name; a handler is "
            "served once its module is imported when the server starts (an installed "
            "app's handlers.py is).",
            t=env.t,
            i=env.i,
        )
    ctx.route = route
    spec = ctx.spec = route.spec
    p = env.p
    try:
        ctx.message = spec.model.parse_obj(p if p is not None else {})
    except ValidationError as exc:
        errors = exc.errors()
        raise InvalidPayload.from_errors(errors, len(errors)) from None
    await call_next(ctx)


async def authorize(ctx: RequestContext, call_next: Next) -> None:
    """Connection auth (`ENVELOPE_ALLOW_UNAUTHENTICATED`, `public=`), `rate=`, `permission=`."""
    route = ctx.route
    if route.login_required and not ctx.actor.authenticated:
        raise Unauthenticated()
    if route.limiter is not None:
        wait = ctx.actor.limiter(route).hit(_monotonic())
        if wait:
            raise RateLimited(
                f"Too many {route.name!r} requests; retry in {wait:.2f} s.",
                retry_after=round(wait, 3),
            )
    permission = route.permission
    if permission is not None:
        if route.permission_is_async:
            allowed = await permission(ctx.message, ctx)
        else:
            allowed = permission(ctx.message, ctx)
        if not allowed:
            raise Forbidden()
    await call_next(ctx)


async def dispatch(ctx: RequestContext, call_next: Next) -> None:
    """Call the handler; or start it concurrently; or defer it to a worker (`q`).

    Handing a request to a worker runs beside the mailbox, like a concurrent handler: a
    queue that is slow or hangs (its Redis frozen) never holds up the requests behind it,
    such as `connection.ping`. The hand-off answers `q`, or `f` (`queue_unavailable`)."""
    route = ctx.route
    spec = route.spec
    if spec.deferred:
        if route.backend is None:
            raise RuntimeError(f"no deferred backend configured for {spec.qualname}")
        # Refused here, in the mailbox, before any hand-off: anonymous work, or over
        # ENVELOPE_MAX_DEFERRED in flight (the place is held until its terminal reply).
        ctx.actor.hold_deferred(ctx)
        ctx.outcome = LATER
        await ctx.actor.start_concurrent(_hand_off, ctx)
    elif spec.concurrent:
        ctx.outcome = LATER
        await ctx.actor.start_concurrent(_answer_concurrently, ctx)
    else:
        await run_handler(ctx)
    await call_next(ctx)


async def run_handler(ctx: RequestContext) -> None:
    """`a` first for `ack=True`; then await the handler within its timeout and keep what
    it returned, checked against its reply model, in `ctx.result`."""
    route = ctx.route
    spec = route.spec
    if spec.ack:
        await ctx.reply(State.ACKNOWLEDGED)
    timeout = route.timeout
    if timeout is None:
        result = await spec.call(ctx.message, ctx)
    else:
        with anyio.move_on_after(timeout) as scope:
            result = await spec.call(ctx.message, ctx)
        if scope.cancelled_caught:
            raise Timeout(f"The request took longer than {timeout:g} s.", timeout=timeout)
    ctx.result = checked_result(spec, result)


async def _answer_concurrently(ctx: RequestContext) -> None:
    # A concurrent handler's own task.
    await run_and_answer(ctx, run_handler)


async def _hand_off(ctx: RequestContext) -> None:
    # A deferred request's own task: the backend's outcome (`q`), or its `Failure`; one
    # connection's hand-offs in the order they came (the lock is taken before any await).
    async with ctx.actor.hand_offs():
        await run_and_answer(ctx, _submit)


async def _submit(ctx: RequestContext) -> None:
    backend = ctx.route.backend
    assert backend is not None
    try:
        ctx.outcome = await backend.submit(ctx)
    except BaseException:
        ctx.actor.release_deferred(ctx)  # never enqueued: its place is free again
        raise


async def run_and_answer(ctx: RequestContext, step: Next) -> None:
    """In a task a request was handed to (`Later`): run `step(ctx)`, then answer as
    `respond` does (what `step` left in `ctx.outcome`, by default the result; its
    `Failure`; or `internal`)."""
    ctx.outcome = None  # the task's own outcome, no longer the `Later` that started it
    await _answer_after(ctx, step)
