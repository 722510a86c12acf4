"""The baseline consumers: Channels' own `AsyncJsonWebsocketConsumer` echoing each frame,
and the same echo without the per-frame thread hop."""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from benchmarks._messages import FAN_GROUP


class PlainEcho(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Sends back what it receives. Connected with `?fan`, it joins the fan-out group and
    forwards its `bench.push` messages. Like every stock consumer since channels 4.2, its
    `dispatch()` awaits `aclose_old_connections()` for each message."""

    async def connect(self) -> None:
        await self.accept()
        if self.scope.get("query_string") == b"fan" and self.channel_layer is not None:
            await self.channel_layer.group_add(FAN_GROUP, self.channel_name)
            await self.send_json({"t": "joined"})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)

    async def bench_push(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class PlainNoHop(PlainEcho):
    """`PlainEcho` whose `dispatch()` calls the handler directly, skipping the
    `aclose_old_connections()` thread hop (fine for an app that never touches the database
    per frame): the fastest a plain Channels consumer gets on a server, and the baseline
    the router must stay ahead of."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
