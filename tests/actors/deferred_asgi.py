"""ASGI app for the RQ tests' daphne servers: the deferred test handlers at /ws/."""

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from tests.actors.deferred_app import TARGET_PIPELINE, jobs  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/", EnvelopeConsumer.as_asgi(routers=[jobs])),
                path(
                    "ws/target/", EnvelopeConsumer.as_asgi(routers=[jobs], pipeline=TARGET_PIPELINE)
                ),
            ]
        )
    }
)
