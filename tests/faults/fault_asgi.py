"""ASGI app of the fault tests' servers (daphne or uvicorn): `/ws/` with session
authentication; the lifespan scope drains connections under uvicorn."""

import django

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer, EnvelopeLifespan  # noqa: E402
from tests.actors.deferred_app import jobs  # noqa: E402
from tests.faults.fault_app import faults  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": AuthMiddlewareStack(
            URLRouter([path("ws/", EnvelopeConsumer.as_asgi(routers=[jobs, faults]))])
        ),
        "lifespan": EnvelopeLifespan(),
    }
)
