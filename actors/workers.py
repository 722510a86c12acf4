"""The RQ worker classes to run deferred handlers with.

    python manage.py rqworker default --worker-class actors.workers.EnvelopeWorker
    python manage.py rqworker default --worker-class actors.workers.EnvelopeSimpleWorker
    python manage.py rqworker-pool default --num-workers 4 \\
        --worker-class actors.workers.EnvelopeSimpleWorker

or `RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}` in the settings.
`EnvelopeWorker` is `rq.Worker` (a work horse forked per job), plus an `f` / `job_failed`
answer when a work horse dies mid-job. `EnvelopeSimpleWorker` is `rq.SimpleWorker`: jobs
run in the worker process, about 10-30 times as many per second; a crash takes the
worker down and its job is answered when a worker of the queue starts again.
`EnvelopeJob` is the job class `EnvelopeSimpleWorker` uses unless given one: RQ's `Job`,
restored and bookkept with less CPU (`--job-class actors.workers.EnvelopeJob` gives it
to another worker).
"""

from actors.deferred import (
    EnvelopeJob,
    EnvelopeSimpleWorker,
    EnvelopeWorker,
    reclaim_abandoned,
    reclaim_jobs_of_dead_workers,
)

__all__ = [
    "EnvelopeJob",
    "EnvelopeSimpleWorker",
    "EnvelopeWorker",
    "reclaim_abandoned",
    "reclaim_jobs_of_dead_workers",
]
