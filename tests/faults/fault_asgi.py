"""ASGI app of the fault tests' servers (daphne or uvicorn): `/ws/` with session
authentication; the lifespan scope drains connections under uvicorn.

`FAULT_BRPOP_TIMEOUT`: the seconds of one blocking read of the Redis layer (channels_redis'
`brpop_timeout`, 5 s), which the server's reader of the layer waits as well.
"""

import os

import django

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer, EnvelopeLifespan  # noqa: E402
from tests.actors.deferred_app import jobs  # noqa: E402
from tests.faults.fault_app import faults  # noqa: E402

if os.environ.get("FAULT_BRPOP_TIMEOUT"):
    layer = get_channel_layer()
    assert layer is not None
    layer.brpop_timeout = float(os.environ["FAULT_BRPOP_TIMEOUT"])  # type: ignore[attr-defined]

application = ProtocolTypeRouter(
    {
        "websocket": AuthMiddlewareStack(
            URLRouter([path("ws/", EnvelopeConsumer.as_asgi(routers=[jobs, faults]))])
        ),
        "lifespan": EnvelopeLifespan(),
    }
)
