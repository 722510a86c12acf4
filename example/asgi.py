"""ASGI entry point: Django for HTTP (with the static files), the consumer for `/ws/`.

Run it with `daphne -b 127.0.0.1 -p 8000 example.asgi:application` (what the demo does)
or `uvicorn --ws websockets-sansio example.asgi:application` (`make demo SERVER=uvicorn`).
The `lifespan` entry is what drains connections on SIGTERM under uvicorn; daphne ignores it.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

from django.core.asgi import get_asgi_application

# Django is set up before anything imports models (the session auth middleware does).
django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from actors import EnvelopeLifespan, websocket_router  # noqa: E402
from example.routing import websocket_urlpatterns  # noqa: E402

# The consumer checks the `Origin` of browsers' sockets against ALLOWED_HOSTS itself
# (ENVELOPE_CHECK_ORIGIN, on by default): no validator to wrap around it.
application: Any = ProtocolTypeRouter(
    {
        # The demo serves its own static files, so that no collectstatic step is needed.
        "http": ASGIStaticFilesHandler(django_app),
        "websocket": AuthMiddlewareStack(websocket_router(websocket_urlpatterns)),
        "lifespan": EnvelopeLifespan(),
    }
)
