"""`Metrics`: the library's Prometheus metrics, and `recorder()`, the process's one.

Every metric is made once per process, in prometheus-client's default registry (so an
application's own `/metrics` endpoint, django-prometheus or `generate_latest()`, shows
them), and the call sites hold the `Metrics` or None: with metrics off, or without
prometheus-client, the hot path pays one `is not None` test.

Label values stay bounded: `type` is a served message type, `_unknown` for a frame whose
`t` no handler serves and `_invalid` for a frame with no readable envelope; `code` is a
stable error code (the library's, or an application's `Failure.code`); `queue` a
configured RQ queue. Label children are looked up once and kept in a dict, since
`.labels()` costs more than the observation itself.

Under several processes (`PROMETHEUS_MULTIPROC_DIR` set before prometheus-client is
imported), values go to files in that directory; gauges are summed over live processes
(`livesum`) and a process marks itself dead when it exits (see `actors.metrics.views`).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

try:
    import prometheus_client
    from prometheus_client import multiprocess, values
except ImportError:  # the `metrics` extra is not installed: metrics are off
    prometheus_client = None  # type: ignore[assignment]
    multiprocess = values = None  # type: ignore[assignment]

METRICS_SETTING = "ENVELOPE_METRICS"
UNKNOWN_TYPE = "_unknown"  # a frame whose `t` no handler of the consumer serves
INVALID_TYPE = "_invalid"  # a frame with no readable envelope (bad_json, too_large, ...)
#: Seconds: a request that took at least this long carries its `i` as an exemplar of
#: `envelope_handler_duration_seconds` (OpenMetrics scrapes; fast ones pay nothing).
EXEMPLAR_SECONDS = 0.1

_perf = time.perf_counter

# Handlers in the actor take µs to ms; the top buckets catch hung ones.
HANDLER_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Items waiting in a mailbox (default size 64) just after a frame was posted.
DEPTH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)
# A deferred job's wait in its queue and its run on a worker: ms to minutes.
JOB_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10, 30, 60, 300)


class Metrics:
    """The library's metrics; `registry` is prometheus-client's default one unless given
    (tests give their own)."""

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

    def __init__(self, registry: Any = None) -> None:
        assert prometheus_client is not None, "prometheus-client is not installed"
        pc = prometheus_client
        kw: dict[str, Any] = {"registry": registry if registry is not None else pc.REGISTRY}
        self.connections = pc.Gauge(
            "envelope_connections_open",
            "Websocket connections open (their actors running).",
            multiprocess_mode="livesum",
            **kw,
        )
        self.frames = pc.Counter(
            "envelope_frames",
            "Requests answered, by message type, state (s, f, q) and error code.",
            ["type", "state", "code"],
            **kw,
        )
        self.handler_duration = pc.Histogram(
            "envelope_handler_duration_seconds",
            "From a frame's arrival to its reply (q for a deferred request), by type.",
            ["type"],
            buckets=HANDLER_BUCKETS,
            **kw,
        )
        self.depth = pc.Histogram(
            "envelope_mailbox_depth",
            "Items waiting in the connection's mailbox just after a frame was posted.",
            buckets=DEPTH_BUCKETS,
            **kw,
        )
        self.overloaded = pc.Counter(
            "envelope_overload_refusals",
            "Frames answered overloaded because their connection's mailbox was full.",
            **kw,
        )
        self.slow_closes = pc.Counter(
            "envelope_slow_reader_closes",
            "Connections closed with 4008 because the client did not read its frames.",
            ["cause"],
            **kw,
        )
        self.job_wait = pc.Histogram(
            "envelope_deferred_queue_wait_seconds",
            "From a deferred request's hand-off to its start on a worker.",
            ["type", "queue"],
            buckets=JOB_BUCKETS,
            **kw,
        )
        self.job_run = pc.Histogram(
            "envelope_deferred_run_seconds",
            "A deferred handler's run on its worker, by outcome (s or f).",
            ["type", "queue", "outcome"],
            buckets=JOB_BUCKETS,
            **kw,
        )
        self.deliveries = pc.Counter(
            "envelope_topic_deliveries",
            "Pushes (topic publishes and tells) that reached a connection, to be sent.",
            **kw,
        )
        self.subscribers = pc.Gauge(
            "envelope_topic_subscribers",
            "Topic subscriptions held by the open connections.",
            multiprocess_mode="livesum",
            **kw,
        )
        self._frames: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._job_waits: dict[tuple[str, str], Any] = {}
        self._job_runs: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()  # jobs are observed from worker threads

    # -- the actor (one event loop) ----------------------------------------------------

    def handled(self, ctx: Any, state: str, code: str | None) -> None:
        """Request `ctx` (an `actors.request.RequestContext`) was answered `state`."""
        env = ctx.envelope
        if ctx.route is not None:
            t = env.t
        else:
            t = UNKNOWN_TYPE if env is not None else INVALID_TYPE
        key = (t, state, code or "")
        frames = self._frames.get(key)
        if frames is None:
            frames = self._frames[key] = self.frames.labels(*key)
        frames.inc()
        duration = self._durations.get(t)
        if duration is None:
            duration = self._durations[t] = self.handler_duration.labels(t)
        seconds = _perf() - ctx.started
        if seconds >= EXEMPLAR_SECONDS and env is not None and env.i is not None:
            duration.observe(seconds, {"i": env.i})
        else:
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

    # -- a worker ----------------------------------------------------------------------

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


_made: Metrics | None = None
_making = threading.Lock()


def recorder(enabled: bool | None = None) -> Metrics | None:
    """The process's `Metrics`, or None when metrics are off.

    `enabled` is `ENVELOPE_METRICS` (read from Django's settings when not given): None
    (the default) counts when prometheus-client is importable, False never, True
    insists (`ImproperlyConfigured` without prometheus-client)."""
    global _made
    if enabled is None:
        enabled = getattr(django_settings, METRICS_SETTING, None)
    if enabled is False:
        return None
    if prometheus_client is None:
        if enabled:
            raise ImproperlyConfigured(
                f"{METRICS_SETTING} = True needs prometheus-client: "
                "pip install 'envelope-router[metrics]'"
            )
        return None
    if _made is None:
        with _making:
            if _made is None:
                _made = Metrics()
                if multiprocess_dir() is not None:
                    atexit.register(mark_dead)
    return _made


def multiprocess_dir() -> str | None:
    """`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's older lower-case name too)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


def share_with_work_horses() -> None:
    """In a forking RQ worker (`EnvelopeWorker`), before any metric is made: its work
    horses, one at a time, write into the worker's own files instead of a set per horse
    (one per job otherwise, which every scrape would read), and the worker's live gauges
    go when it exits."""
    if values is None or multiprocess_dir() is None or _made is not None:
        return
    worker = os.getpid()
    values.ValueClass = values.MultiProcessValue(lambda: worker)
    atexit.register(mark_dead, worker)


def mark_dead(pid: int | None = None) -> None:
    """Drop process `pid`'s (default: this one's) live gauges from the multi-process
    directory, so that a scrape no longer sums them; its counters stay."""
    if multiprocess is None or multiprocess_dir() is None:
        return
    multiprocess.mark_process_dead(pid if pid is not None else os.getpid())
