"""Recovery of the jobs a non-forking worker was running when its process died.

An `EnvelopeSimpleWorker` runs its job in its own process, so a crash (segfault, OOM
killer, `kill -9`) takes the job with it and no work horse is left to report it. The
worker's Redis hash carries `INLINE_FIELD`; a worker of the same queue starting on the
same host (and each of its maintenance runs) fails the jobs such a dead worker left
STARTED, through RQ's own clean-up (see `reclaim_jobs_of_dead_workers`).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from rq import SimpleWorker
from rq.executions import Execution

from actors.tracing import logger

#: Field of the worker's Redis hash marking a worker that runs its jobs in its own process.
INLINE_FIELD = "envelope_inline"
_RECLAIM_LOCK = "envelope:reclaim:{}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_jobs_of_dead_workers(worker: SimpleWorker) -> int:
    """Fail, through RQ's clean-up of the StartedJobRegistry (which calls the job's
    failure callback, so the client gets `f` / `job_failed`), every job of `worker`'s
    queues that an `EnvelopeSimpleWorker` of this host was running when its process
    died. Returns how many it found."""
    connection = worker.connection
    host = socket.gethostname()
    found = 0
    for queue in worker.queues:
        registry = queue.started_job_registry
        entries = registry.get_job_and_execution_ids(cleanup=False)
        if not entries:
            continue
        abandoned = {}
        for job_id, execution_id in entries:
            try:
                execution = Execution.fetch(execution_id, job_id, connection)
            except ValueError:
                continue  # expired: RQ's clean-up takes it
            name = execution.worker_name
            if not name or name == worker.name:
                continue
            key = worker.redis_worker_namespace_prefix + name
            fields: list[Any] = connection.hmget(key, ["hostname", "pid", INLINE_FIELD])  # type: ignore[assignment]
            hostname, pid, inline = fields
            if inline is None or hostname is None or hostname.decode() != host:
                continue
            if pid is not None and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            abandoned[f"{job_id}:{execution_id}"] = 0
            logger.warning("job.abandoned", job=job_id, worker=name, pid=pid and int(pid))
        if not abandoned:
            continue
        # Two workers starting at once must not both fail (and answer) the same jobs.
        if not connection.set(_RECLAIM_LOCK.format(queue.name), 1, nx=True, ex=10):
            continue
        try:
            connection.zadd(registry.key, abandoned, xx=True)  # expired now
            registry.cleanup(exception_handlers=worker._exc_handlers)
            found += len(abandoned)
        finally:
            connection.delete(_RECLAIM_LOCK.format(queue.name))
    return found
