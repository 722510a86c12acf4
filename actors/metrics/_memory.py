"""`InMemoryMetrics`: the metrics of a process on its own, kept as plain numbers.

The actor adds to ints and lists (no lock, no metric object per observation: one event
loop writes them), and a collector in prometheus-client's registry turns them into
metric families when a scrape asks. A request then costs about a tenth of what
prometheus-client's own counters and histograms cost (their values take a lock per
increment). Deferred jobs, which run in threads, go through a lock.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from actors.metrics import _specs as specs

_BOUNDS = specs.HANDLER_BUCKETS
_FIRST_BOUND = _BOUNDS[0]
_EXEMPLAR_SECONDS = specs.EXEMPLAR_SECONDS


def _depth_index(depth: int) -> int:
    """The bucket of a mailbox depth: the first bound at least `depth` (+Inf's last)."""
    return bisect_left(specs.DEPTH_BUCKETS, depth)


#: `_depth_index` of the depths up to the last bound, looked up (an int searched among
#: float bounds costs a float comparison each step).
_DEPTHS_TABLED = int(specs.DEPTH_BUCKETS[-1]) + 1
_DEPTH_INDEX = tuple(_depth_index(depth) for depth in range(_DEPTHS_TABLED))


class Histogram:
    """Counts per bucket (the last one is +Inf), their sum, and the latest exemplar of a
    bucket when one was given."""

    __slots__ = ("bounds", "counts", "exemplars", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        # An int until a float is added: a mailbox's whole depths add as ints, faster.
        self.sum: float = 0
        self.exemplars: dict[int, Exemplar] | None = None

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def mark(self, value: float, labels: dict[str, str]) -> None:
        """Keep `labels` as the exemplar of `value`'s bucket (observed separately)."""
        if self.exemplars is None:
            self.exemplars = {}
        self.exemplars[bisect_left(self.bounds, value)] = Exemplar(labels, value, time.time())

    def buckets(self) -> list[Any]:
        """Cumulative, as the exposition wants them."""
        out: list[Any] = []
        total = 0
        exemplars = self.exemplars or {}
        for index, count in enumerate(list(self.counts)):
            total += count
            le = floatToGoString(self.bounds[index]) if index < len(self.bounds) else "+Inf"
            exemplar = exemplars.get(index)
            out.append((le, total, exemplar) if exemplar is not None else (le, total))
        return out


class InMemoryMetrics:
    """The recorder of a single process (see `actors.metrics.recorder`)."""

    __slots__ = (
        "_depth",
        "_durations",
        "_job_runs",
        "_job_waits",
        "_lock",
        "_requests",
        "_slow",
        "connections",
        "deliveries",
        "refusals",
        "subscribers",
    )

    def __init__(self, registry: Any) -> None:
        self.connections = 0
        self.subscribers = 0
        self.deliveries = 0
        self.refusals = 0
        # By (type, state, code): [frames counted, the type's duration histogram], so that
        # a request costs one dictionary lookup.
        self._requests: dict[tuple[str, str, str | None], list[Any]] = {}
        self._durations: dict[str, Histogram] = {}
        self._depth = Histogram(specs.DEPTH_BUCKETS)
        self._slow: dict[str, int] = {}
        self._job_waits: dict[tuple[str, str], Histogram] = {}
        self._job_runs: dict[tuple[str, str, str], Histogram] = {}
        self._lock = threading.Lock()
        registry.register(_Collector(self))

    # -- the actor (one event loop) ----------------------------------------------------

    def handled(self, ctx: Any, state: Any, code: str | None, seconds: float) -> None:
        """Request `ctx` (an `actors.request.RequestContext`) was answered `state`,
        `seconds` after it arrived."""
        env = ctx.envelope
        t = env.t if ctx.route is not None else specs.request_type(ctx)
        key = (t, state._value_, code)  # a State's value: hashing the member costs more
        entry = self._requests.get(key)
        if entry is None:
            entry = self._request(key)
        entry[0] += 1
        duration = entry[1]
        # Most requests land in the first bucket: one comparison instead of a search.
        duration.counts[0 if seconds <= _FIRST_BOUND else bisect_left(_BOUNDS, seconds)] += 1
        duration.sum += seconds
        if seconds >= _EXEMPLAR_SECONDS and env is not None and env.i:
            duration.mark(seconds, {"i": env.i})

    def _request(self, key: tuple[str, str, str | None]) -> list[Any]:
        t = key[0]
        duration = self._durations.get(t)
        if duration is None:
            duration = self._durations[t] = Histogram(specs.HANDLER_BUCKETS)
        entry = self._requests[key] = [0, duration]
        return entry

    def posted(self, depth: int) -> None:
        depth_ = self._depth
        depth_.counts[_DEPTH_INDEX[depth] if depth < _DEPTHS_TABLED else _depth_index(depth)] += 1
        depth_.sum += depth

    def refused(self) -> None:
        self.refusals += 1

    def closed_slow(self, cause: str) -> None:
        self._slow[cause] = self._slow.get(cause, 0) + 1

    def opened(self) -> None:
        self.connections += 1

    def closed(self) -> None:
        self.connections -= 1

    def delivered(self) -> None:
        self.deliveries += 1

    def subscribed(self, count: int = 1) -> None:
        self.subscribers += count

    def left(self, count: int = 1) -> None:
        self.subscribers -= count

    # -- jobs (worker threads) ---------------------------------------------------------

    def job_started(self, t: str, queue: str | None, waited: float) -> None:
        with self._lock:
            key = (t, queue or "")
            waits = self._job_waits.get(key)
            if waits is None:
                waits = self._job_waits[key] = Histogram(specs.JOB_BUCKETS)
            waits.observe(waited)

    def job_finished(self, t: str, queue: str | None, outcome: str, seconds: float) -> None:
        with self._lock:
            key = (t, queue or "", outcome)
            runs = self._job_runs.get(key)
            if runs is None:
                runs = self._job_runs[key] = Histogram(specs.JOB_BUCKETS)
            runs.observe(seconds)

    # -- a scrape ----------------------------------------------------------------------

    def families(self) -> Iterator[Metric]:
        yield _gauge(specs.CONNECTIONS, self.connections)
        frames = CounterMetricFamily(
            specs.FRAMES.name, specs.FRAMES.doc, labels=specs.FRAMES.labels
        )
        for (t, state, code), (count, _duration) in list(self._requests.items()):
            frames.add_metric([t, state, code or ""], count)
        yield frames
        yield _histograms(
            specs.HANDLER_DURATION, {(t,): h for t, h in list(self._durations.items())}
        )
        yield _histograms(specs.MAILBOX_DEPTH, {(): self._depth})
        yield CounterMetricFamily(specs.OVERLOADED.name, specs.OVERLOADED.doc, value=self.refusals)
        slow = CounterMetricFamily(
            specs.SLOW_CLOSES.name, specs.SLOW_CLOSES.doc, labels=specs.SLOW_CLOSES.labels
        )
        for cause, count in list(self._slow.items()):
            slow.add_metric([cause], count)
        yield slow
        with self._lock:  # copied, not yielded, under the lock
            waits, runs = (
                _histograms(specs.JOB_WAIT, self._job_waits),
                _histograms(specs.JOB_RUN, self._job_runs),
            )
        yield waits
        yield runs
        yield CounterMetricFamily(
            specs.DELIVERIES.name, specs.DELIVERIES.doc, value=self.deliveries
        )
        yield _gauge(specs.SUBSCRIBERS, self.subscribers)


def _gauge(spec: specs.Spec, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.doc, value=value)


def _histograms(spec: specs.Spec, by_labels: dict[Any, Histogram]) -> Metric:
    family = HistogramMetricFamily(spec.name, spec.doc, labels=spec.labels)
    for labels, histogram in list(by_labels.items()):
        family.add_metric(list(labels), histogram.buckets(), histogram.sum)
    return family


class _Collector:
    """What prometheus-client's registry asks at each scrape."""

    def __init__(self, metrics: InMemoryMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.families()

    def describe(self) -> list[Metric]:
        # Nothing checked at registration: the names are the library's own.
        return []
