"""`EnvelopeSimpleWorker`: deferred handlers run in the worker process itself, one job
after the other, without a fork per job (RQ's `SimpleWorker`).

A forking worker spends tens of milliseconds of CPU forking a work horse for every job;
this one spends about a millisecond per job. What each job gets is the same as on
`EnvelopeWorker` (`actors.deferred._jobs.execute`): `r`, then `s`, the handler's `Failure`,
`job_failed` or `timeout`; the connection's language; one transaction; old database
connections closed before and after; trace events under the request's `i`.

What differs, since there is no work horse between a job and the worker:

- *Timeouts* are RQ's `SIGALRM` death penalty in the worker's main thread (a timer
  thread raising into it when the worker runs in another thread). A job stuck in C code
  that never returns to Python is not interrupted; the forking worker kills its horse
  60 s after the timeout, this one cannot.
- *A crash takes the worker down* (segfault, OOM killer, `kill -9`, `os._exit`). The job
  it was running is answered `f` / `job_failed` as soon as a worker of the same queue
  starts on the same host (a supervisor restarting it, or `rqworker-pool` respawning it):
  at start, and at each maintenance run, the worker looks for jobs left STARTED by a
  dead `EnvelopeSimpleWorker` of this host and fails them through RQ's clean-up, which
  calls the job's failure callback (or retries it when it has `retries=` left). Without
  a restart, RQ's own clean-up answers it once its heartbeat has expired.
- *Database connections*: closed around every job (a deferred request's around its
  handler, by `execute`; other jobs by the worker, around the job),
  as Django does around a request; kept across jobs with `CONN_MAX_AGE`.
- *Memory and state carry over* from job to job: module globals, caches, leaks. Bound
  them with `--max-jobs N` and a supervisor that restarts the worker.
- *The channel layer's connections are kept*: pushes go through one event loop of the
  process (`actors.publishing._worker_loop`) instead of a new loop and connection each,
  and a fast job's `r` goes with its terminal reply (`ENVELOPE_RUNNING_HOLD`).
- *RQ's bookkeeping takes fewer round trips* (`FewerTripsSimpleWorker` in
  `_rq_simple_trips`, its base class); what it leaves in Redis is
  unchanged (a success writes the job hash's changed fields only, not all again).
- *What start-up made is frozen* (`gc.freeze()` after a `gc.collect()`, once the
  worker has registered and before its first job; `ENVELOPE_WORKER_GC_FREEZE = False`
  turns it off): the cyclic garbage collector's full collections, which walked every
  object of Django and the libraries (tens of millions of instructions each), walk only
  what the jobs made. Cycles among the frozen objects are never collected; the process
  outlives its jobs, not its start-up.
- *RQ logs one INFO line per job* ("Job OK"): its "Successfully completed job" line and,
  for a job taken from a backlog, its "Worker ...: <queue>: <job>" line are DEBUG here
  (the trace log's `job.finished` and `job.started` say the same).
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import close_old_connections
from rq import Queue
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from actors._gc import freeze_start_up
from actors._settings import EnvelopeSettings
from actors.deferred._rq import perform
from actors.deferred._rq_job import EnvelopeJob
from actors.deferred._rq_reclaim import INLINE_FIELD, reclaim_jobs_of_dead_workers
from actors.deferred._rq_simple_trips import FewerTripsSimpleWorker
from actors.publishing import install_worker_loop
from actors.tracing import configure_logging, logger

#: How RQ's own job class is given to a worker (django-rq's `rqworker` gives it by value).
_RQ_JOB = (None, Job, "rq.job.Job", "rq.Job")

#: RQ's name of the job function of deferred requests.
_PERFORM = f"{perform.__module__}.{perform.__qualname__}"


class EnvelopeSimpleWorker(FewerTripsSimpleWorker):
    """`rq.SimpleWorker` for deferred handlers: no fork per job, the channel layer's
    connections kept across jobs, and the jobs of a crashed worker answered when a
    worker of the same queue starts again on the same host.

        python manage.py rqworker default --worker-class actors.workers.EnvelopeSimpleWorker
        python manage.py rqworker-pool default --num-workers 4 \\
            --worker-class actors.workers.EnvelopeSimpleWorker
    """

    # The job's description is the repr of its whole request: not worth a log line per job.
    log_result_lifespan = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        configure_logging()
        install_worker_loop()
        kwargs.setdefault("log_job_description", False)
        if kwargs.get("job_class") in _RQ_JOB:  # RQ's own: the same, with less CPU
            kwargs["job_class"] = EnvelopeJob
        super().__init__(*args, **kwargs)
        if threading.current_thread() is not threading.main_thread():
            # SIGALRM can only be handled in the main thread.
            self.death_penalty_class = TimerDeathPenalty

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if EnvelopeSettings.from_django().worker_gc_freeze:
            # Start-up's garbage collected, then the rest kept out of every later
            # collection (Django, the handlers, the libraries: a full collection walked
            # them all, 55-60 M instructions, about once per few hundred jobs).
            logger.info("worker.gc_frozen", worker=self.name, objects=freeze_start_up())

    def execute_job(self, job: Job, queue: Queue) -> None:
        # Around every job, as Django does around a request. A deferred request does it
        # in `execute`, around its handler (twice more would cost a few percent of a
        # fast job); other jobs on the queue (connection tracking, plain RQ jobs) do
        # not, and this process outlives them.
        if _deferred_request(job):
            super().execute_job(job, queue)
            return
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), INLINE_FIELD: 1}

    def clean_registries(self) -> None:
        """RQ's maintenance (at start and every `maintenance_interval`), after failing
        the jobs that dead simple workers of this host left behind."""
        try:
            reclaim_jobs_of_dead_workers(self)
        except Exception:
            logger.exception("job.reclaim_failed", worker=self.name)
        super().clean_registries()


def _deferred_request(job: Job) -> bool:
    """Is `job` a deferred request (`actors.deferred._rq.perform`)?"""
    try:
        return job.func_name == _PERFORM
    except Exception:  # unreadable: RQ fails it, around closed connections
        return False
