"""Deferred (plain `def`) handlers: the backend protocol, choosing a backend, RQ and the
in-process thread pool, running one job on a worker, and the RQ worker classes."""

from actors.deferred._backends import (
    DeferredBackend,
    backend_from_settings,
    backend_kind,
    get_backend,
)
from actors.deferred._lookup import dotted_name
from actors.deferred._rq import EnvelopeWorker, RQBackend, reclaim_abandoned
from actors.deferred._rq_job import EnvelopeJob
from actors.deferred._rq_reclaim import reclaim_jobs_of_dead_workers
from actors.deferred._rq_simple import EnvelopeSimpleWorker
from actors.deferred._thread import ThreadBackend

__all__ = [
    "DeferredBackend",
    "EnvelopeJob",
    "EnvelopeSimpleWorker",
    "EnvelopeWorker",
    "RQBackend",
    "ThreadBackend",
    "backend_from_settings",
    "backend_kind",
    "dotted_name",
    "get_backend",
    "reclaim_abandoned",
    "reclaim_jobs_of_dead_workers",
]
