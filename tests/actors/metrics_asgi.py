"""ASGI app of the metrics tests' daphne servers: the metrics and deferred test handlers
at /ws/, and `metrics_view` at /metrics (tests.actors.metrics_urls)."""

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from tests.actors.deferred_app import jobs  # noqa: E402
from tests.actors.metrics_app import router  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([path("ws/", EnvelopeConsumer.as_asgi(routers=[router, jobs]))]),
    }
)
