"""The example's websocket routes: one `EnvelopeConsumer` at `/ws/`."""

from __future__ import annotations

from typing import Any

from django.urls import path

from actors import EnvelopeConsumer
from example.handlers import router
from handlers import HandlerSpec

#: The ASGI app of the consumer; its config (routes, settings) is built once, here.
consumer = EnvelopeConsumer.as_asgi(routers=[router])

websocket_urlpatterns = [path("ws/", consumer)]


def served_routes() -> dict[str, HandlerSpec]:
    """Message name -> handler spec, exactly as the consumer at `/ws/` serves them."""
    config: Any = consumer.consumer_initkwargs["config"]
    return dict(config.routes)
