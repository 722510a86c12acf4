"""The example's websocket routes: one `EnvelopeConsumer` at `/ws/`."""

from __future__ import annotations

from django.urls import path

from actors import EnvelopeConsumer
from example.handlers import router

#: The ASGI app of the consumer; its config (routes, settings) is built once, here.
consumer = EnvelopeConsumer.as_asgi(routers=[router])

websocket_urlpatterns = [path("ws/", consumer)]
