"""`FewerTripsSimpleWorker`: RQ's `SimpleWorker` with its bookkeeping in Redis done in
fewer round trips; `EnvelopeSimpleWorker` (`_rq_simple`) is built on it.

A job of a few milliseconds spent more time in RQ's round trips to Redis than in its
handler. What RQ leaves in Redis is unchanged (registries, execution, job and worker
hashes, counters: `rq info` and django-rq's admin see the same); it goes in fewer round
trips, and the suspension check runs at most every 0.9 s:

- a job is taken with its hash by one script (`TAKE`), or, while the queue has a backlog,
  by the script that ended the job before it; a job taken and not started goes back to
  the front of its queue (`PUT_BACK`) when the loop stops, is suspended or cleans
  registries first;
- a job's start is one script of RQ's own commands (`RUN`); its end, for a job without
  dependents, another (`END`), which writes the job hash's changed fields only
  (`_saving_the_end_only`);
- heartbeats outside a job's own pipeline go at most once a second, the worker's state
  is not set again when unchanged, and `rq suspend` is checked at most every 0.9 s.

The scripts are in `_rq_scripts`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.rate_limit import release_slot
from rq.serializers import DefaultSerializer
from rq.utils import now
from rq.worker import WorkerStatus

from actors._scripts import forget_packing, remember_packing, run_script
from actors.deferred._rq_job import format_date
from actors.deferred._rq_scripts import END, PUT_BACK, RUN, TAKE, words
from actors.tracing import logger

#: Seconds between two checks for `rq suspend`, at least.
SUSPENSION_CHECK_SECONDS = 0.9


class FewerTripsSimpleWorker(SimpleWorker):
    """`rq.SimpleWorker` whose bookkeeping takes fewer round trips to Redis, with the
    same result in Redis (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared: Any = None
        self._backlog = False  # were jobs left in the queue when the last one started?
        self._taken: tuple[str, list[bytes]] | None = None  # taken, not yet started
        self._scripts: dict[str, Any] = {}
        self._own: redis.Redis | None = None  # the scripts' connection (`_run`)
        self._suspension_checked: float | None = None

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        # RQ takes a job in two round trips (BLMOVE of its id, HGETALL of its hash).
        # While the queue has a backlog (it had when the last job started), the last
        # job's end took the next job already (`handle_job_success`), or both go in one
        # script, a non-blocking LMOVE: the same moves, the same intermediate queue.
        # When it finds the queue empty, and without a backlog, RQ's blocking way.
        while self._backlog or self._taken is not None:
            queue = self._ordered_queues[0]
            if self._taken is None:
                taken = self._run(
                    TAKE,
                    keys=[queue.key, queue.intermediate_queue_key],
                    args=[self.job_class.redis_job_namespace_prefix],
                )
                if not taken:
                    self._backlog = False
                    break
                self._taken = taken[0].decode(), taken[1]
            job_id, fields = self._taken
            if not fields:  # deleted meanwhile: RQ passes over it too
                self._taken = None
                continue
            # RQ's default serializer is given as None: the same serializer, without RQ's
            # check of a serializer given by value (an isinstance of a runtime-checkable
            # Protocol: about 7 µs on Python 3.11).
            serializer = None if self.serializer is DefaultSerializer else self.serializer
            job = self.job_class(job_id, connection=self.connection, serializer=serializer)
            job.restore(dict(zip(fields[::2], fields[1::2], strict=True)))
            job.redis_server_version = self.get_redis_server_version()
            self.reorder_queues(reference_queue=queue)
            self.heartbeat()  # at most once a second (below)
            # DEBUG, not RQ's INFO: `job.started` in the trace log says the same.
            self.log.debug("Worker %s: %s: %s", self.name, queue.name, job.id)
            return job, queue
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def _put_back(self) -> None:
        """The job taken and not started (`self._taken`), back to the front of its queue:
        the loop stops (warm shutdown, `--max-jobs`, an error), is suspended or cleans
        registries before starting it."""
        taken, self._taken = self._taken, None
        if taken is None:
            return
        queue = self._ordered_queues[0]
        try:
            self._run(PUT_BACK, keys=[queue.intermediate_queue_key, queue.key], args=[taken[0]])
        except Exception:  # RQ's clean-up fails it after a minute in the intermediate queue
            logger.exception("job.put_back_failed", job=taken[0], worker=self.name)

    def prepare_execution(self, job: Job) -> Execution:
        # RQ's `prepare_execution` (the execution, the started registry, state busy),
        # kept for `prepare_job_execution` to send along with its own writes. Not in a
        # MULTI: no other client reads these keys between them (the job is this
        # worker's since its BLMOVE; clean-ups look only at expired entries), and each
        # queued command would cost a reply of its own to read.
        pipeline = self.connection.pipeline(transaction=False)
        execution = Execution.create(
            job, self.get_heartbeat_ttl(job), pipeline=pipeline, worker_name=self.name
        )
        self.executions[execution.id] = execution
        self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
        self._prepared = pipeline
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        pipeline, self._prepared = self._prepared, None
        if pipeline is None:
            pipeline = self.connection.pipeline(transaction=False)
        with pipeline:
            ttl = self.get_heartbeat_ttl(job)
            self.heartbeat(ttl, pipeline=pipeline)
            job.heartbeat(now(), ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)
            if remove_from_intermediate_queue:
                origin = Queue(job.origin, connection=self.connection)
                pipeline.lrem(origin.intermediate_queue_key, 1, job.id)
            # Is there a backlog? (see dequeue_job_and_maintain_ttl; RQ itself moves jobs
            # through an intermediate queue only from one queue, with Redis 6.2 or later).
            single = len(self._ordered_queues) == 1
            single = single and self.get_redis_server_version() >= (6, 2, 0)
            if single:
                pipeline.llen(self._ordered_queues[0].key)
            # The commands as one script (`_RUN`): one command to send and one reply to
            # read instead of some fifteen, each packed, parsed and answered on its own.
            try:
                last = self._run(RUN, keys=[], args=words(pipeline))
            finally:
                self._taken = None  # started, out of the intermediate queue (LREM)
            self._backlog = single and bool(last)
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: Any, execution: Execution
    ) -> None:
        # RQ WATCHes the job's dependents set, reads it, then writes the job's end in a
        # MULTI: three round trips. A job without dependents (all the library's own)
        # needs one: a script that writes the same commands only if the set is still
        # empty, atomically (a dependent added meanwhile by `enqueue(depends_on=)` sees
        # the job finished, as after RQ's EXEC). Jobs with dependents, and repeating
        # jobs, take RQ's path.
        if job.repeats_left:
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        pipeline = self.connection.pipeline()  # only records the commands
        try:
            self.increment_successful_job_count(pipeline=pipeline)
            assert job.ended_at is not None and job.started_at is not None
            self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
            result_ttl = job.get_result_ttl(self.default_result_ttl)
            if result_ttl != 0:
                with _saving_the_end_only(job):
                    job._handle_success(
                        result_ttl,
                        pipeline=pipeline,
                        worker_name=self.name,
                        execution_id=execution.id,
                        execution_started_at=execution.created_at,
                        execution_ended_at=job.ended_at,
                    )
            job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
            job._status = JobStatus.FINISHED
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            commands = words(pipeline)
        finally:
            pipeline.reset()
        # In a backlog, the same script takes the next job (a round trip less per job),
        # unless the loop is to stop, check for suspension or clean registries before
        # taking one (when it stops anyway, `teardown` puts the job back).
        keys = [job.dependents_key]
        if self._backlog and not self._stop_requested and self._taken is None:
            checked = self._suspension_checked
            if checked is not None and time.monotonic() - checked < SUSPENSION_CHECK_SECONDS:
                if not self.should_run_maintenance_tasks:
                    ahead = self._ordered_queues[0]
                    keys += [ahead.key, ahead.intermediate_queue_key]
        # Busy until the script's reply is read: a SIGTERM meanwhile asks for a stop
        # after this job (RQ raises StopRequested into an idle worker, which would lose
        # the reply, and with it the job taken).
        state, self._state = self._state, WorkerStatus.BUSY
        try:
            ended = self._run(
                END, keys=keys, args=[self.job_class.redis_job_namespace_prefix, *commands]
            )
            if isinstance(ended, list):
                self._taken = ended[0].decode(), ended[1]
            elif len(keys) > 1 and ended == 1:
                self._backlog = False  # nothing left to take
        finally:
            self._state = state
        if not ended:
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        release_slot(job)
        taken = job.ended_at - job.started_at
        # DEBUG, not RQ's INFO: `job.finished` in the trace log says the same.
        self.log.debug(
            "Successfully completed job %s in %ss on worker %s", job.id, taken, self.name
        )

    def _run(self, text: str, keys: list[Any], args: list[Any]) -> Any:
        """The script `text` run on `keys` and `args`, by its SHA (loaded when Redis
        does not know it: a restart)."""
        script = self._scripts.get(text)
        if script is None:
            if self._own is None:
                # One connection of the worker's pool kept for the scripts: redis-py's
                # pool checks a connection for unread data each time it hands it out
                # (a non-blocking read, two socket mode switches, an exception: about a
                # tenth of a script call's CPU), a connection kept is never handed out.
                self._own = redis.Redis(
                    connection_pool=self.connection.connection_pool,
                    single_connection_client=True,
                )
                # Its scripts' calls packed from the words packed before: most of
                # them are the same for every job (`actors._scripts`).
                remember_packing(self._own)
            script = self._scripts[text] = self._own.register_script(text)
        try:
            return run_script(self._own, script, keys, args)
        except BaseException:
            # Failed or interrupted (an exception raised by a signal's handler): an
            # answer may be left unread on the connection, which the next call would
            # take for its own. A new connection for the next one, as the pool would.
            if self._own is not None and self._own.connection is not None:
                self._own.connection.disconnect()
            raise

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        if job.get_status(refresh=False) == JobStatus.FAILED:
            super().handle_execution_ended(job, queue, heartbeat_ttl)
            return
        # A success saves the whole job hash (this heartbeat included) in RQ's next
        # pipeline, or deletes it (result_ttl=0): no write of its own needed.
        job.ended_at = job.last_heartbeat = now()

    def increment_successful_job_count(self, pipeline: Any = None) -> None:
        super().increment_successful_job_count(pipeline=pipeline)
        if pipeline is not None:  # idle in the same transaction that ends the job
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)

    def increment_failed_job_count(self, pipeline: Any = None) -> None:
        super().increment_failed_job_count(pipeline=pipeline)
        if pipeline is not None:
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        # RQ checks for `rq suspend` between every two jobs, a round trip each time; here
        # every `SUSPENSION_CHECK_SECONDS` at most (in a burst, jobs are taken with the
        # last one's end until it is due). The same bound as `handle_job_success`'s: with
        # a longer one here (it was 1 s against 0.9 there), a burst that fell between
        # the two had each job's end leave the check to the loop and the loop not make
        # it - a round trip more per job for up to a tenth of a second.
        checked = self._suspension_checked
        if checked is not None and time.monotonic() - checked < SUSPENSION_CHECK_SECONDS:
            return
        self._put_back()  # not held while suspended
        super().check_for_suspension(burst)
        self._suspension_checked = time.monotonic()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        # RQ sends a heartbeat (three commands, one by one) about five times per job. A
        # job of a few milliseconds needs none of them but the one in its own pipeline:
        # the worker's key lives `worker_ttl` + 60 s after the last one sent.
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        last = self.last_heartbeat
        if timeout is None and last is not None and (now() - last).total_seconds() < 1:
            return
        with self.connection.pipeline(transaction=False) as batch:
            super().heartbeat(timeout, pipeline=batch)
            batch.execute()

    def set_state(self, state: str, pipeline: Any = None) -> None:
        # The work loop sets IDLE twice between two jobs.
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline=pipeline)

    def run_maintenance_tasks(self) -> None:
        self._put_back()  # RQ's clean-up would find it in the intermediate queue
        super().run_maintenance_tasks()

    def teardown(self) -> None:
        self._put_back()
        try:
            super().teardown()
        finally:
            if self._own is not None:
                forget_packing(self._own)  # its connection's own packer back
                self._own.close()  # its connection back to the pool
                self._own = None
                self._scripts.clear()


@contextlib.contextmanager
def _saving_the_end_only(job: Job) -> Iterator[None]:
    """While RQ records a success, its save of the whole job hash (`Job.save`: some 20
    fields, the arguments compressed again, every date formatted again) writes the
    fields that changed only: the job's end and its status (and RQ's default serializer
    is given as None, below). The rest is what the hash
    holds already - the job was restored from it, and its start was written when it
    started (`prepare_for_execution`) - so the hash ends the same (the `meta` and the
    result RQ leaves out of this save anyway)."""

    def save(pipeline: Any = None, **_options: Any) -> None:
        assert job.ended_at is not None and job.last_heartbeat is not None
        (pipeline if pipeline is not None else job.connection).hset(
            job.key,
            mapping={
                "ended_at": format_date(job.ended_at),
                "last_heartbeat": format_date(job.last_heartbeat),
                "status": job.get_status(refresh=False),
            },
        )

    job.save = save  # type: ignore[method-assign,assignment]
    # RQ's default serializer as None, which RQ resolves to the same class: its Result
    # (and registry) would check the class against RQ's runtime-checkable `Serializer`
    # Protocol again (tens of µs on Python 3.11), as `EnvelopeJob`'s registries do not.
    default = job.serializer is DefaultSerializer
    if default:
        job.serializer = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del job.save
        if default:
            job.serializer = DefaultSerializer
