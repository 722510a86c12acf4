"""Deferred (plain `def`) handlers: choosing the backend that runs them.

`ENVELOPE_DEFERRED = "rq"` runs them on RQ workers (django-rq's `RQ_QUEUES`);
`"thread"` in an in-process thread pool; unset, "rq" when `RQ_QUEUES` is configured,
else "thread". One backend object of each kind per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from actors._settings import EnvelopeSettings, configured_queues
from actors.deferred._rq import RQBackend, check_queues
from actors.deferred._thread import ThreadBackend
from actors.request import Queued, RequestContext
from handlers import HandlerSpec


class DeferredBackend(Protocol):
    """Runs deferred (`def`) handlers off the event loop and reports their states.

    Implemented by `RQBackend` and `ThreadBackend`.
    """

    async def submit(
        self,
        ctx: RequestContext,
        *,
        target: Callable[..., Any] | None = None,
        queue: str | None = None,
    ) -> Queued:
        """Hand the request to a worker and say so (`Queued`: the actor answers `q`);
        raise a `Failure` if it cannot be enqueued. `target=` runs that module-level
        `fn(msg, job_ctx)` instead of the handler."""

    async def aenqueue_call(
        self, queue: str | None, fn: str | Callable[..., Any], *args: Any
    ) -> None:
        """Run `fn(*args)` on a worker, fire and forget (no replies)."""

    def jobs_in_flight(self, address: str | None) -> int:
        """Jobs of connection `address` running in this process, whose replies a
        shutdown drain waits for (0 when jobs run in other processes)."""


_backends: dict[str, Any] = {}
_lock = threading.Lock()


def backend_kind(settings: EnvelopeSettings) -> str:
    """ "rq" or "thread", from `ENVELOPE_DEFERRED` and whether `RQ_QUEUES` is set."""
    if settings.deferred is not None:
        return settings.deferred
    return "rq" if configured_queues() else "thread"


def get_backend(settings: EnvelopeSettings, kind: str | None = None) -> Any:
    """The process's backend of `kind` (default: the one the settings choose)."""
    kind = kind or backend_kind(settings)
    with _lock:
        backend = _backends.get(kind)
        if backend is None:
            if kind == "rq":
                if not configured_queues():
                    raise ImproperlyConfigured(
                        'ENVELOPE_DEFERRED = "rq" needs django-rq\'s RQ_QUEUES, e.g. '
                        'RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/0"}}'
                    )
                backend = RQBackend()
            else:
                backend = ThreadBackend(settings.thread_workers)
            _backends[kind] = backend
    return backend


def backend_from_settings(settings: EnvelopeSettings, routes: dict[str, HandlerSpec]) -> Any:
    """The backend for a consumer serving `routes`; with RQ, every deferred handler's
    queue must be in `RQ_QUEUES` (`ImproperlyConfigured` naming handler and queue)."""
    kind = backend_kind(settings)
    backend = get_backend(settings, kind)
    if kind == "rq":
        check_queues(routes)
        check_layer_crosses_processes()
    return backend


def check_layer_crosses_processes() -> None:
    """RQ workers answer over the channel layer: it must reach other processes."""
    layers = getattr(django_settings, "CHANNEL_LAYERS", None) or {}
    backend = str((layers.get("default") or {}).get("BACKEND", ""))
    if not backend or backend.endswith("InMemoryChannelLayer"):
        raise ImproperlyConfigured(
            "deferred handlers on RQ answer over the channel layer, from the worker's "
            f"process: CHANNEL_LAYERS['default'] is {backend or 'missing'}; use one that "
            "crosses processes (channels_redis), or ENVELOPE_DEFERRED = 'thread'"
        )
