"""One deferred request on a worker: what the RQ and the thread backend share.

A *job request* is a plain dict (picklable, no models) made by `make_request` on the
server and read by `execute` on the worker:

    t, i, p          the envelope (p as the client sent it; validated again on the worker)
    fn               "module:qualname" of the handler (or of a `target=` function)
    target           True when `fn` is a `target=` function rather than a handler
    user, conn       the user's pk (None when anonymous) and the connection's address
    trace            structlog contextvars of the request, bound again on the worker
    otel             the W3C trace context of the envelope's OpenTelemetry span (None
                     without one); the job's span on the worker is its child
    enqueued_at      time.time() at submit, for `start_timeout`
    start_timeout    seconds; a job that starts later answers f / timeout instead
    timeout          the handler's timeout in seconds (None: none), for the reply's text
    reply            False for `reply=False` handlers: only an `f` is ever sent
    job, queue       the job's id (also RQ's job id) and queue name, for the trace logs
    lang             the connection's language, active on the worker while the job runs

`execute` sends `r`, runs the permission and the handler inside `transaction.atomic()`
with old database connections closed around it, then `s` with the checked result, `f`
with a `Failure`'s code, or `f` / `job_failed` (never the exception's text).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.db import transaction
from django.utils import translation
from pydantic import BaseModel

from actors._database import database_work
from actors._users import load_user, user_pk
from actors.deferred._job_context import WorkerContext
from actors.deferred._lookup import Resolved, dotted_name, resolve
from actors.deferred._replies import Hold, JobReplies, Outbox
from actors.metrics import recorder
from actors.publishing import before_pushes
from actors.request import Queued, RequestContext
from actors.tracing import CARRIER_KEY, job_span, logger, trace_carrier
from envelope import Failure, Forbidden, JobFailed, State, Timeout, Unauthenticated
from handlers import checked_result


def make_request(ctx: RequestContext, target: Callable[..., Any] | None = None) -> dict[str, Any]:
    """The job request of `ctx` (to run its handler, or `target` instead)."""
    env = ctx.envelope
    spec = ctx.spec
    actor = ctx.actor
    return {
        "t": env.t,
        "i": env.i,
        "p": env.p,
        "fn": dotted_name(target if target is not None else spec.fn),
        "target": target is not None,
        "user": user_pk(actor.user),
        "conn": actor.address,
        "trace": dict(structlog.contextvars.get_contextvars()),
        CARRIER_KEY: trace_carrier(ctx),
        "enqueued_at": time.time(),
        "job": uuid.uuid4().hex,
        "queue": None,  # set by the backend
        "start_timeout": spec.start_timeout,
        "timeout": ctx.route.timeout,
        "reply": spec.reply or target is not None,
        "lang": getattr(actor, "language", None),
    }


def queued(ctx: RequestContext, req: dict[str, Any], *, backend: str, queue: str | None) -> Queued:
    """What every backend returns once a request is handed over, after logging
    `job.queued`: `q` now, unless the job's own replies are all the client gets (the
    actor's writer sends it and logs `envelope.handled`; the worker logs the rest)."""
    ctx.log.info(
        "job.queued",
        backend=backend,
        queue=queue,
        job=req["job"],
        conn=req["conn"],
        handler=req["fn"],
    )
    return Queued(reply=req["reply"])


def resolved_for(ctx: RequestContext, target: Callable[..., Any] | None = None) -> Resolved:
    """What the worker would import, taken directly (the thread backend needs no import)."""
    if target is not None:
        return target, None, ctx.spec.model
    return ctx.spec.call, ctx.spec, ctx.spec.model


class _LateResult(Exception):
    """The watchdog answered `timeout` first: roll the transaction back, send nothing."""


def execute(
    req: dict[str, Any],
    outbox: Outbox,
    *,
    resolved: Resolved | None = None,
    last_attempt: bool = True,
    reraise_final: bool = False,
    timeout_errors: tuple[type[BaseException], ...] = (),
    watchdog: float | None = None,
    on_terminal: Callable[[], None] | None = None,
    hold: tuple[float, Hold] | None = None,
) -> Any:
    """Run one job request; returns the result as a dict (or None), for the job's record.

    An unexpected exception is raised again when `last_attempt` is False (so that the
    backend retries it) and, after answering `job_failed`, when `reraise_final` is set.
    `hold`: keep the job's `r` back for a while, to go with its terminal reply (see
    `JobReplies`).
    """
    trace = dict(req.get("trace") or {})
    trace.update(i=req["i"], t=req["t"], job=req.get("job"))
    lang = req.get("lang")
    with (
        structlog.contextvars.bound_contextvars(**trace),
        translation.override(lang) if lang else contextlib.nullcontext(),
        job_span(req) as span,
    ):
        log = logger.bind(conn=req["conn"], user=req["user"])
        replies = JobReplies(req, outbox, log, on_terminal, hold, span)
        waited = time.time() - req["enqueued_at"]
        metrics = recorder()
        if metrics is not None:  # expired jobs too: their wait is what went wrong
            metrics.job_started(req["t"], req.get("queue"), waited)
        start_timeout = req.get("start_timeout")
        if start_timeout is not None and waited > start_timeout:
            log.warning("job.expired", waited_s=round(waited, 3), start_timeout=start_timeout)
            replies.send(
                State.FAILED,
                Timeout(
                    f"The job did not start within {start_timeout:g} s.",
                    start_timeout=start_timeout,
                ).payload(),
            )
            return None
        with (
            database_work(),
            before_pushes(replies.release) if hold is not None else contextlib.nullcontext(),
        ):
            return _run(
                req,
                replies,
                log,
                resolved,
                last_attempt,
                reraise_final,
                timeout_errors,
                watchdog,
                waited,
            )


def _run(
    req: dict[str, Any],
    replies: JobReplies,
    log: Any,
    resolved: Resolved | None,
    last_attempt: bool,
    reraise_final: bool,
    timeout_errors: tuple[type[BaseException], ...],
    watchdog: float | None,
    waited: float,
) -> Any:
    started = time.perf_counter()
    timer: threading.Timer | None = None
    metrics = recorder()
    t, queue = req["t"], req.get("queue")

    def finished(state: State, code: str | None = None, **extra: Any) -> None:
        seconds = time.perf_counter() - started
        duration_us = round(seconds * 1e6)
        log.info("job.finished", outcome=state.value, code=code, duration_us=duration_us, **extra)
        if metrics is not None:
            metrics.job_finished(t, queue, state.value, seconds)

    try:
        call, spec, model = resolved if resolved is not None else resolve(req)
        replies.send(State.RUNNING)
        log.info("job.started", queue=queue, wait_us=round(waited * 1e6), handler=req["fn"])
        user = load_user(req["user"])
        if req["user"] is not None and not user.is_authenticated:
            # Asked for by a user who has been deactivated or deleted since.
            raise Unauthenticated()
        msg = model.parse_obj(req["p"] if req["p"] is not None else {})
        ctx = WorkerContext(req, msg, user, replies, log, progress=spec.progress if spec else None)
        if watchdog is not None:
            timer = threading.Timer(watchdog, replies.time_out, args=(watchdog,))
            timer.daemon = True
            timer.start()
        with transaction.atomic():
            if spec is not None and spec.permission is not None and not spec.permission(msg, ctx):
                raise Forbidden()
            result = call(msg, ctx)
            if spec is not None:
                result = checked_result(spec, result)
            elif result is not None and not isinstance(result, BaseModel | dict):
                raise TypeError(f"{req['fn']} returned {type(result).__name__}, not a model")
            if not replies.claim():
                raise _LateResult()
    except _LateResult:
        finished(State.FAILED, "timeout", late=True)
        return None
    except Failure as exc:
        replies.send(State.FAILED, exc.payload())
        finished(State.FAILED, exc.code)
        return None
    except timeout_errors:
        seconds = float(req.get("timeout") or 0) or round(time.perf_counter() - started, 3)
        replies.time_out(seconds, force=True)
        finished(State.FAILED, "timeout")
        return None
    except Exception as exc:
        if not last_attempt and not replies.timed_out:
            log.warning("job.retrying", exc_info=exc)
            raise
        log.error("job.failed", exc_info=exc)
        if replies.span is not None:
            replies.span.failed(exc)
        replies.send(State.FAILED, JobFailed().payload())
        finished(State.FAILED, JobFailed.code)
        if reraise_final:
            raise
        return None
    finally:
        if timer is not None:
            timer.cancel()
    replies.send(State.SUCCESS, result)
    finished(State.SUCCESS)
    if isinstance(result, BaseModel):
        return result.dict()
    return result
