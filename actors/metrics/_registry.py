"""`recorder()`: the process's one recorder of the library's metrics, or None when off.

Every metric lives in prometheus-client's default registry (so an application's own
`/metrics` endpoint, django-prometheus or `generate_latest()`, shows them), and the
call sites hold the recorder or None: with metrics off, or without prometheus-client,
the hot path pays one `is not None` test.

A process on its own records into plain numbers that a collector reads at each scrape
(`InMemoryMetrics`); with `PROMETHEUS_MULTIPROC_DIR` set (before prometheus-client is
imported) it records into prometheus-client's own metrics, whose values go to files in
that directory (`MultiProcessMetrics`), the gauges summed over live processes; a process
marks itself dead when it exits normally (`mark_dead`, at exit), and
`actors.metrics.views` sums the files for a scrape.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

try:
    from prometheus_client import REGISTRY, multiprocess, values

    from actors.metrics._files import MultiProcessMetrics
    from actors.metrics._memory import InMemoryMetrics
except ImportError:  # the `metrics` extra is not installed: metrics are off
    REGISTRY = multiprocess = values = None  # type: ignore[assignment]
    InMemoryMetrics = MultiProcessMetrics = None  # type: ignore[assignment, misc]

if TYPE_CHECKING:
    from typing import TypeAlias

    Metrics: TypeAlias = "InMemoryMetrics | MultiProcessMetrics"
else:
    Metrics = Any

METRICS_SETTING = "ENVELOPE_METRICS"

_made: Any = None
_making = threading.Lock()


def recorder(enabled: bool | None = None) -> Metrics | None:
    """The process's recorder, or None when metrics are off.

    `enabled` is `ENVELOPE_METRICS` (read from Django's settings when not given): None
    (the default) counts when prometheus-client is importable, False never, True
    insists (`ImproperlyConfigured` without prometheus-client)."""
    global _made
    if enabled is None:
        enabled = getattr(django_settings, METRICS_SETTING, None)
    if enabled is False:
        return None
    if InMemoryMetrics is None:
        if enabled:
            raise ImproperlyConfigured(
                f"{METRICS_SETTING} = True needs prometheus-client: "
                "pip install 'envelope-router[metrics]'"
            )
        return None
    if _made is None:
        with _making:
            if _made is None:
                if multiprocess_dir() is not None:
                    _made = MultiProcessMetrics(REGISTRY)
                    atexit.register(mark_dead)
                else:
                    _made = InMemoryMetrics(REGISTRY)
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
