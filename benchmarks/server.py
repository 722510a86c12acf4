"""The ASGI app the socket benchmarks run under daphne (loopback only).

    /envelope/  EnvelopeConsumer serving `benchmarks._messages.router` (ping, echo, fan-out)
    /plain/     a stock AsyncJsonWebsocketConsumer echo: sends back what it receives

Environment: `BENCH_LOG` = `off` (WARNING, the default) or `info` (INFO events to the
JSON-lines file `ENVELOPE_TRACE_LOG`, nothing on the console).

    DJANGO_SETTINGS_MODULE=benchmarks.settings daphne -b 127.0.0.1 benchmarks.server:application
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from actors import EnvelopeConsumer  # noqa: E402
from actors._logging import configure_logging, trace_log_path  # noqa: E402
from benchmarks._messages import FAN_GROUP, router  # noqa: E402

if os.environ.get("BENCH_LOG", "off") == "info":
    configure_logging(
        logging.INFO, json=True, trace_log=trace_log_path(), console=False, force=True
    )
else:
    configure_logging(logging.WARNING, json=True, trace_log="", stream=sys.stderr, force=True)


class PlainEcho(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """The baseline: Channels' own JSON consumer, echoing each frame, in the fan-out group."""

    async def connect(self) -> None:
        await self.accept()
        if self.scope.get("query_string") == b"fan" and self.channel_layer is not None:
            await self.channel_layer.group_add(FAN_GROUP, self.channel_name)
            await self.send_json({"t": "joined"})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)

    async def bench_push(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


application = URLRouter(
    [
        path("envelope/", EnvelopeConsumer.as_asgi(routers=[router])),
        path("plain/", PlainEcho.as_asgi()),
    ]
)
