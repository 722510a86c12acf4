"""`RQBackend`: deferred handlers on RQ workers. With its `_rq_*` helpers, the only
modules that import `rq` (and `django_rq`).

Server side, `submit` enqueues a job request (see `actors.deferred._jobs`) on the handler's
queue and answers `q`. Worker side, `perform` runs it and sends `r`, then `s` or `f`,
to the connection over the channel layer (`envelope.push`), so they pass through the
actor's mailbox in order. Run workers with

    python manage.py rqworker default --worker-class actors.workers.EnvelopeWorker

What answers when a worker dies in the middle of a job:
- the work horse is killed (OOM killer, `kill -9` of the horse) while its worker lives:
  `EnvelopeWorker` answers `f` / `job_failed` at once (plain `rq.Worker` does not call
  failure callbacks for that case: the job only moves to the failed registry);
- the whole worker is killed: the job stays in RQ's StartedJobRegistry until its
  heartbeat expires (min(job timeout, 30 s) + 60 s after the last heartbeat) and a live
  worker of that queue runs its maintenance (at its start and every 10 minutes by
  default); RQ then calls the job's failure callback with `AbandonedJobError`, which
  answers `f` / `job_failed` (or retries it first when `retries=` are left).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import anyio
from django.core.exceptions import ImproperlyConfigured
from rq import Callback, Worker, get_current_job, worker_registration
from rq import Retry as JobRetry
from rq.job import Job
from rq.timeouts import JobTimeoutException

from actors._blocking import run_blocking
from actors._settings import EnvelopeSettings, configured_queues, current_settings
from actors.deferred._hold import hold_timer
from actors.deferred._jobs import execute, make_request, queued
from actors.deferred._rq_enqueue import _queue, enqueue
from actors.deferred._rq_outbox import (
    ANSWERED,
    GONE_KEY,
    UNREACHABLE,
    LayerOutbox,
    mark_answered,
)
from actors.metrics import share_with_work_horses
from actors.publishing import worker_loop
from actors.request import Queued, RequestContext
from actors.tracing import configure_logging, flush_spans, logger
from envelope import JobFailed, QueueUnavailable, State, encode
from handlers import HandlerSpec

GONE_SECONDS = 24 * 3600
_DOWN_SECONDS = 1.0


def check_queues(routes: dict[str, HandlerSpec]) -> None:
    """Every deferred handler's queue is in `RQ_QUEUES`, else `ImproperlyConfigured`."""
    queues = configured_queues()
    for spec in routes.values():
        if not spec.deferred:
            continue
        name = spec.queue or "default"
        if name not in queues:
            known = ", ".join(sorted(queues)) or "none"
            raise ImproperlyConfigured(
                f"handler {spec.qualname} runs on RQ queue {name!r}, which is not in "
                f"RQ_QUEUES (configured: {known}); add it to RQ_QUEUES or give the handler "
                f"queue= one of those"
            )


class RQBackend:
    """Enqueues deferred requests on django-rq queues (`RQ_QUEUES`)."""

    kind = "rq"

    def __init__(self) -> None:
        # Addresses with jobs submitted from this process -> the queue's name, so that
        # their close can be marked for the workers (GONE_KEY).
        self._open: dict[str, str] = {}
        self._timeout = EnvelopeSettings.from_django().queue_timeout
        # Queue name -> time.monotonic() until which it is taken to be unreachable: after
        # a failure, requests are answered `queue_unavailable` at once for a second
        # instead of each waiting for its own timeout on a Redis that hangs.
        self._down_until: dict[str, float] = {}

    async def submit(
        self,
        ctx: RequestContext,
        *,
        target: Callable[..., Any] | None = None,
        queue: str | None = None,
    ) -> Queued:
        """Enqueue; `Queued`, or `QueueUnavailable` when Redis cannot be reached."""
        spec = ctx.spec
        req = make_request(ctx, target)
        name = req["queue"] = queue or spec.queue or "default"
        retries = spec.retries if target is None else 0
        options: dict[str, Any] = {
            "on_failure": _ON_FAILURE,
            "job_id": req["job"],
            "description": describe(req),
        }
        if retries:
            options["retry"] = JobRetry(max=retries)
        if spec.result_ttl is not None:  # else the queue's RESULT_TTL / RQ's default
            options["result_ttl"] = spec.result_ttl
        if req["timeout"]:
            options["job_timeout"] = math.ceil(req["timeout"])
        if time.monotonic() < self._down_until.get(name, 0.0):
            ctx.log.error("job.queue_unavailable", queue=name, error="recent failure")
            raise QueueUnavailable()
        try:
            # The deadline answers the client even when the enqueue cannot be interrupted
            # (a connection without socket timeouts, in a thread: it is left to finish).
            with anyio.fail_after(self._timeout):
                await enqueue(_queue(name), perform, req, options)
        except UNREACHABLE as exc:
            self._down_until[name] = time.monotonic() + _DOWN_SECONDS
            ctx.log.error("job.queue_unavailable", queue=name, error=type(exc).__name__)
            raise QueueUnavailable() from None
        self._down_until.pop(name, None)
        if req["conn"] is not None:
            self._open[req["conn"]] = name
        return queued(ctx, req, backend=self.kind, queue=name)

    def enqueue_call(self, queue: str | None, fn: str | Callable[..., Any], *args: Any) -> None:
        """Enqueue `fn(*args)` (fire and forget). Blocking: call it from sync code.
        `QueueUnavailable` when Redis cannot be reached."""
        try:
            _queue(queue or "default").enqueue(fn, *args)
        except UNREACHABLE:
            logger.error("job.queue_unavailable", queue=queue or "default", fn=str(fn))
            raise QueueUnavailable() from None

    async def aenqueue_call(
        self, queue: str | None, fn: str | Callable[..., Any], *args: Any
    ) -> None:
        await run_blocking(self.enqueue_call, queue, fn, *args)

    def jobs_in_flight(self, address: str | None) -> int:
        """0: jobs run on workers, which answer whenever the connection is (a drain does
        not wait for them; a job finishing after its socket closed logs
        `job.connection_gone` under its `i`)."""
        return 0

    async def connection_closed(self, address: str | None) -> None:
        """Mark `address` gone for the workers, if it has jobs from this process."""
        name = self._open.pop(address, None) if address is not None else None
        if name is None:
            return

        def mark() -> None:
            _queue(name).connection.set(GONE_KEY.format(address), 1, ex=GONE_SECONDS)

        try:
            await run_blocking(mark)
        except UNREACHABLE:
            logger.warning("job.gone_mark_failed", conn=address)


def perform(req: dict[str, Any]) -> Any:
    """The RQ job function: run one deferred request (see `actors.deferred._jobs.execute`)."""
    configure_logging()
    job = get_current_job()
    last = job is None or not job.retries_left
    settings = current_settings()
    connection = job.connection if job is not None else None
    outbox = LayerOutbox(req["conn"], connection, settings, job)
    # A worker that runs its jobs itself (it has a WorkerLoop: EnvelopeSimpleWorker) holds
    # a fast job's `r`; a work horse lives for one job and sends it at once.
    hold = None
    if worker_loop() is not None and settings.running_hold:
        hold = (settings.running_hold, hold_timer().call_later)
    return execute(
        req,
        outbox,
        last_attempt=last,
        reraise_final=True,
        timeout_errors=(JobTimeoutException,),
        hold=hold,
    )


def answer_lost_job(job: Job, reason: str) -> None:
    """Answer `f` / `job_failed` for a job that ended without answering (worker died)."""
    try:
        job.refresh()
        req = job.args[0]
    except Exception:
        logger.warning("job.lost_unreadable", job=job.id, reason=reason)
        return
    if job.meta.get(ANSWERED) or not isinstance(req, dict):
        return
    if job.retries_left:
        return  # RQ runs it again; that attempt answers
    outbox = LayerOutbox(req.get("conn"), job.connection, EnvelopeSettings.from_django(), job)
    logger.error("job.lost", i=req.get("i"), t=req.get("t"), job=job.id, reason=reason)
    failed = encode(req["t"], req["i"], JobFailed().payload(), State.FAILED)
    if not outbox.deliver((failed,), last=True):
        mark_answered(job)  # the connection is gone: nothing more to answer


def on_job_failure(job: Job, connection: Any, exc_type: Any, exc: Any, tb: Any) -> None:
    """RQ failure callback: after `perform` raised (already answered), or when RQ finds
    the job abandoned by a dead worker (`AbandonedJobError`, not answered yet)."""
    answer_lost_job(job, getattr(exc_type, "__name__", "failure"))


# Made once: every job of this backend has it.
_ON_FAILURE = Callback(on_job_failure)
_PERFORM = f"{perform.__module__}.{perform.__qualname__}"


def describe(req: dict[str, Any]) -> str:
    """RQ's `description` of the job of `req`, what `rq info`, rq-dashboard and django-rq's
    admin show: the function, the request's type and its trace id, e.g.
    `actors.deferred._rq.perform(chat.send, i=42)`. RQ's own (`get_call_string`: the
    repr of the whole request, cut at 75 characters) cost the server about 48 k
    instructions per job and said less: the cut often fell before the `i`."""
    return f"{_PERFORM}({req['t']}, i={req['i']})"


class EnvelopeWorker(Worker):
    """`rq.Worker` that
    - answers `f` when its work horse dies in the middle of a job;
    - outlives Redis going away (a restart, a failover, a hang): plain `rq.Worker` quits
      with "found an unhandled exception" when a heartbeat or its maintenance cannot reach
      Redis. This one logs `worker.redis_unavailable`, keeps the running job going (its
      answer waits for Redis, see `LayerOutbox`), waits for Redis with backoff, registers
      itself again (a restarted Redis may have come back empty) and takes jobs again;
    - logs through the library's structlog set-up (`ENVELOPE_TRACE_LOG` included);
    - exports the job's OpenTelemetry spans before its work horse exits."""

    # Waits between attempts to reach Redis double up to 5 s (RQ's default: 60 s), so
    # that the worker is back within seconds of Redis.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        configure_logging()
        share_with_work_horses()
        super().__init__(*args, **kwargs)

    def perform_job(self, job: Job, queue: Any, execution: Any) -> bool:
        try:
            return bool(super().perform_job(job, queue, execution))
        finally:
            if self._is_horse:  # it exits next, with os._exit
                flush_spans()

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        try:
            answer_lost_job(job, f"work horse ended with {ret_val}")
        except Exception:
            logger.exception("job.lost_answer_failed", job=job.id)

    # -- Redis going away ------------------------------------------------------------------

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:  # part of a pipeline: its execute() raises
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout)
        except UNREACHABLE as exc:
            # Dequeueing notices too and backs off; a running job goes on meanwhile.
            logger.warning("worker.redis_unavailable", worker=self.name, error=type(exc).__name__)

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        try:
            super().maintain_heartbeats(job, execution)
        except UNREACHABLE as exc:
            logger.warning(
                "worker.redis_unavailable", worker=self.name, job=job.id, error=type(exc).__name__
            )

    def check_for_suspension(self, burst: bool) -> None:
        self._until_redis_answers(lambda: super(EnvelopeWorker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        self._until_redis_answers(super().run_maintenance_tasks)

    def execute_job(self, job: Job, queue: Any) -> None:
        try:
            super().execute_job(job, queue)
        except UNREACHABLE as exc:
            req = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
            logger.error(
                "job.lost",
                i=req.get("i"),
                t=req.get("t"),
                job=job.id,
                reason=f"Redis unreachable: {type(exc).__name__}",
            )
            self._until_redis_answers(self.connection.ping)

    def _until_redis_answers(self, step: Callable[[], Any]) -> None:
        """Run `step`; while Redis cannot be reached, wait with backoff (1 s doubling up
        to `max_connection_wait_time`) and try again, unless asked to stop."""
        delay = 1.0
        lost = False
        while True:
            try:
                step()
                if lost:
                    worker_registration.register(self)
                    logger.info("worker.redis_available", worker=self.name)
                return
            except UNREACHABLE as exc:
                if self._stop_requested:
                    raise
                if not lost:
                    logger.warning(
                        "worker.redis_unavailable", worker=self.name, error=type(exc).__name__
                    )
                lost = True
                time.sleep(delay)
                delay = min(delay * 2, self.max_connection_wait_time)


def reclaim_abandoned(queue: str, *, timestamp: float | None = None) -> int:
    """Run RQ's clean-up of `queue`'s abandoned jobs now, as a worker's maintenance does
    at its start and every 10 minutes: each job left STARTED by a dead worker, whose
    heartbeat expired before `timestamp` (default: now), is answered `f` / `job_failed`
    (or retried when it has `retries=` left). Returns how many jobs it found."""
    registry = _queue(queue).started_job_registry
    when = timestamp if timestamp is not None else time.time()
    found = len(registry.get_expired_job_ids(when))
    registry.cleanup(when)
    return found
