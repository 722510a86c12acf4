"""Prometheus metrics (the `metrics` extra): `recorder()` gives the process's recorder
(`InMemoryMetrics`, or `MultiProcessMetrics` under `PROMETHEUS_MULTIPROC_DIR`), or None
when they are off; `actors.metrics.views.metrics_view` serves them. See
docs/observability.md for every metric, its labels and the multi-process set-up."""

from actors.metrics._registry import (
    METRICS_SETTING,
    InMemoryMetrics,
    Metrics,
    MultiProcessMetrics,
    mark_dead,
    multiprocess_dir,
    recorder,
    share_with_work_horses,
)
from actors.metrics._specs import EXEMPLAR_SECONDS, INVALID_TYPE, SPECS, UNKNOWN_TYPE

__all__ = [
    "EXEMPLAR_SECONDS",
    "INVALID_TYPE",
    "METRICS_SETTING",
    "SPECS",
    "UNKNOWN_TYPE",
    "InMemoryMetrics",
    "Metrics",
    "MultiProcessMetrics",
    "mark_dead",
    "multiprocess_dir",
    "recorder",
    "share_with_work_horses",
]
