"""Prometheus metrics (the `metrics` extra): `recorder()` gives the process's `Metrics`, or
None when they are off; `actors.metrics.views.metrics_view` serves them. See
docs/observability.md for every metric, its labels and the multi-process set-up."""

from actors.metrics._registry import (
    EXEMPLAR_SECONDS,
    INVALID_TYPE,
    METRICS_SETTING,
    UNKNOWN_TYPE,
    Metrics,
    mark_dead,
    multiprocess_dir,
    recorder,
    share_with_work_horses,
)

__all__ = [
    "EXEMPLAR_SECONDS",
    "INVALID_TYPE",
    "METRICS_SETTING",
    "UNKNOWN_TYPE",
    "Metrics",
    "mark_dead",
    "multiprocess_dir",
    "recorder",
    "share_with_work_horses",
]
