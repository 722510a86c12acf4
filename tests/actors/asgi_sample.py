"""ASGI app serving the sample router, for tests that run a real server process (daphne or
uvicorn; the lifespan scope is what drains connections under uvicorn)."""

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer, EnvelopeLifespan  # noqa: E402
from tests.actors.sample import router  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/", EnvelopeConsumer.as_asgi(routers=[router])),
                path(
                    "ws/short-drain/",
                    EnvelopeConsumer.as_asgi(routers=[router], drain_seconds=1),
                ),
            ]
        ),
        "lifespan": EnvelopeLifespan(),
    }
)
