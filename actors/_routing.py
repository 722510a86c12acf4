"""`websocket_router`: URL routing for websockets that refuses unknown paths cleanly.

Channels' `URLRouter` raises `ValueError` for a path no route matches; under daphne
every such handshake is then answered HTTP 500, with a traceback in the log. A scanner
probing paths fills the log with them. Routed through `websocket_router`, a path with
no route is refused (daphne answers 403) and logged once per handshake at INFO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels.routing import URLRouter
from django.urls import re_path

from actors.tracing import logger


async def refuse_unrouted(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that refuses a websocket handshake: no route serves its path."""
    if scope["type"] != "websocket":
        raise ValueError(f"refuse_unrouted serves websockets, not {scope['type']!r}")
    message = await receive()
    if message["type"] == "websocket.connect":
        logger.info("connection.refused", path=scope.get("path"), reason="no_route")
        await send({"type": "websocket.close", "code": 1000})


def websocket_router(patterns: Sequence[Any]) -> URLRouter:
    """`URLRouter(patterns)`, with handshakes to any other path refused (403), not 500.

    application = ProtocolTypeRouter({
        "websocket": AuthMiddlewareStack(websocket_router(websocket_urlpatterns)),
    })
    """
    # Channels routes take ASGI apps where Django's stubs expect views.
    return URLRouter([*patterns, re_path(r"", refuse_unrouted)])  # type: ignore[arg-type]
