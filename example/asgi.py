"""ASGI entry point: Django for HTTP (with the static files), the consumer for `/ws/`.

Run it with `daphne -b 127.0.0.1 -p 8000 example.asgi:application` (what the demo does)
or `uvicorn --ws websockets-sansio example.asgi:application` (`make demo SERVER=uvicorn`).
The `lifespan` entry is what drains connections on SIGTERM under uvicorn; daphne ignores it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import ParseResult

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

from django.core.asgi import get_asgi_application

# Django is set up before anything imports models (the session auth middleware does).
django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from actors import EnvelopeLifespan, websocket_router  # noqa: E402
from example.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Browsers always send `Origin` on a websocket: it must be one of ALLOWED_HOSTS, so
    another site cannot open a socket with the demo's session cookie. Clients that send
    no `Origin` (scripts, `websockets`, `websocat`) carry no browser cookie; they are let in.
    """

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))


application: Any = ProtocolTypeRouter(
    {
        # The demo serves its own static files, so that no collectstatic step is needed.
        "http": ASGIStaticFilesHandler(django_app),
        "websocket": BrowserOriginValidator(
            AuthMiddlewareStack(websocket_router(websocket_urlpatterns)), settings.ALLOWED_HOSTS
        ),
        "lifespan": EnvelopeLifespan(),
    }
)
