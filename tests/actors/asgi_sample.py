"""ASGI app serving the sample router, for tests that run a real daphne process."""

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from tests.actors.sample import router  # noqa: E402

application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/", EnvelopeConsumer.as_asgi(routers=[router]))])}
)
