"""`MultiProcessMetrics`: the metrics of a process among several, in prometheus-client's
own counters, gauges and histograms, whose values it keeps in files of
`PROMETHEUS_MULTIPROC_DIR` for `MultiProcessCollector` to sum (see `actors.metrics.views`).

Their label children are looked up once and kept in a dict, since `.labels()` costs
more than the observation itself; the two gauges are summed over live processes.
"""

from __future__ import annotations

import threading
from typing import Any

import prometheus_client

from actors.metrics import _specs as specs


def _made(spec: specs.Spec, registry: Any) -> Any:
    kw: dict[str, Any] = {"registry": registry}
    if spec.kind == "histogram":
        kw["buckets"] = spec.buckets
        make: Any = prometheus_client.Histogram
    elif spec.kind == "gauge":
        kw["multiprocess_mode"] = "livesum"
        make = prometheus_client.Gauge
    else:
        make = prometheus_client.Counter
    return make(spec.name, spec.doc, spec.labels, **kw)


class MultiProcessMetrics:
    """The recorder of a process among several (see `actors.metrics.recorder`)."""

    __slots__ = (
        "_durations",
        "_frames",
        "_job_runs",
        "_job_waits",
        "_lock",
        "connections",
        "deliveries",
        "depth",
        "frames",
        "handler_duration",
        "job_run",
        "job_wait",
        "overloaded",
        "slow_closes",
        "subscribers",
    )

    def __init__(self, registry: Any) -> None:
        self.connections = _made(specs.CONNECTIONS, registry)
        self.frames = _made(specs.FRAMES, registry)
        self.handler_duration = _made(specs.HANDLER_DURATION, registry)
        self.depth = _made(specs.MAILBOX_DEPTH, registry)
        self.overloaded = _made(specs.OVERLOADED, registry)
        self.slow_closes = _made(specs.SLOW_CLOSES, registry)
        self.job_wait = _made(specs.JOB_WAIT, registry)
        self.job_run = _made(specs.JOB_RUN, registry)
        self.deliveries = _made(specs.DELIVERIES, registry)
        self.subscribers = _made(specs.SUBSCRIBERS, registry)
        self._frames: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._job_waits: dict[tuple[str, str], Any] = {}
        self._job_runs: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()  # jobs are observed from worker threads

    # -- the actor (one event loop) ----------------------------------------------------

    def handled(self, ctx: Any, state: Any, code: str | None, seconds: float) -> None:
        """Request `ctx` (an `actors.request.RequestContext`) was answered `state`,
        `seconds` after it arrived."""
        t = specs.request_type(ctx)
        key = (t, state._value_, code or "")
        frames = self._frames.get(key)
        if frames is None:
            frames = self._frames[key] = self.frames.labels(*key)
        frames.inc()
        duration = self._durations.get(t)
        if duration is None:
            duration = self._durations[t] = self.handler_duration.labels(t)
        # No exemplar: prometheus-client keeps none in multi-process mode.
        duration.observe(seconds)

    def posted(self, depth: int) -> None:
        self.depth.observe(depth)

    def refused(self) -> None:
        self.overloaded.inc()

    def closed_slow(self, cause: str) -> None:
        self.slow_closes.labels(cause).inc()

    def opened(self) -> None:
        self.connections.inc()

    def closed(self) -> None:
        self.connections.dec()

    def delivered(self) -> None:
        self.deliveries.inc()

    def subscribed(self, count: int = 1) -> None:
        self.subscribers.inc(count)

    def left(self, count: int = 1) -> None:
        self.subscribers.dec(count)

    # -- jobs (worker threads) ---------------------------------------------------------

    def job_started(self, t: str, queue: str | None, waited: float) -> None:
        key = (t, queue or "")
        with self._lock:
            child = self._job_waits.get(key)
            if child is None:
                child = self._job_waits[key] = self.job_wait.labels(*key)
        child.observe(waited)

    def job_finished(self, t: str, queue: str | None, outcome: str, seconds: float) -> None:
        key = (t, queue or "", outcome)
        with self._lock:
            child = self._job_runs.get(key)
            if child is None:
                child = self._job_runs[key] = self.job_run.labels(*key)
        child.observe(seconds)
