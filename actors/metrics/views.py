"""`metrics_view`: the Prometheus scrape endpoint, ready to put in a project's urls.

    from actors.metrics.views import metrics_view

    urlpatterns = [path("metrics", metrics_view)]

It serves prometheus-client's default registry (the library's metrics, the process's,
and whatever else the application registered) or, when `PROMETHEUS_MULTIPROC_DIR` is
set, every process's values summed from that directory (daphne processes and workers
alike). It speaks OpenMetrics to a scraper that asks for it (exemplars are only shown
there) and the text format otherwise. Protect it like any internal page: it is not
authenticated by itself.

Importing this module without prometheus-client installed raises `ImproperlyConfigured`
(at start-up, when the project's urls are loaded).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from actors.metrics._registry import multiprocess_dir

try:
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder
except ImportError as exc:
    raise ImproperlyConfigured(
        "actors.metrics.views needs prometheus-client: pip install 'envelope-router[metrics]'"
    ) from exc


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The current values, in the format the scraper's Accept header asks for."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(encode(registry), content_type=content_type)
