"""ASGI application of the multi-server test's daphne servers."""

import django
from django.core.asgi import get_asgi_application

django.setup()
http = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from tests.multinode.app import router  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AuthMiddlewareStack(
            URLRouter([path("ws/", EnvelopeConsumer.as_asgi(routers=[router]))])
        ),
    }
)
