"""Deferred (plain `def`) handlers: choosing the backend that runs them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from handlers import HandlerSpec

if TYPE_CHECKING:
    from actors._config import DeferredBackend
    from actors._settings import EnvelopeSettings


def backend_from_settings(
    settings: EnvelopeSettings, routes: dict[str, HandlerSpec]
) -> DeferredBackend:
    deferred = sorted(spec.qualname for spec in routes.values() if spec.deferred)
    raise ImproperlyConfigured(
        f"deferred handlers ({', '.join(deferred)}) need a deferred backend; "
        "none is available yet"
    )
