"""The RQ worker class to run deferred handlers with:

    python manage.py rqworker default --worker-class actors.workers.EnvelopeWorker

or `RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}` in the settings. It is
`rq.Worker`, plus an `f` / `job_failed` answer when a work horse dies mid-job.
"""

from actors.deferred import EnvelopeWorker, reclaim_abandoned

__all__ = ["EnvelopeWorker", "reclaim_abandoned"]
