"""Pushing to topics and connections over the channel layer, encoded once for all."""

from __future__ import annotations

import re
from typing import Any

from channels.layers import get_channel_layer
from pydantic import BaseModel

from envelope import encode, wire_name

#: Channel-layer message types a consumer understands.
PUSH = "envelope.push"
CLOSE = "envelope.close"

_TOPIC = re.compile(r"^[A-Za-z0-9._\-]{1,90}$")


def group_for(topic: str) -> str:
    """The channel-layer group of a topic (topics allow what group names allow)."""
    if not isinstance(topic, str) or not _TOPIC.match(topic):
        raise ValueError(
            f"topic {topic!r}: a topic is 1-90 chars of A-Za-z0-9._- (e.g. 'room.lobby', 'user.7')"
        )
    return f"tp.{topic}"


def push_message(model: BaseModel, i: str | None = None) -> dict[str, Any]:
    return {"type": PUSH, "text": encode(wire_name(model), i, model)}


async def publish(topic: str, model: BaseModel, *, i: str | None = None, layer: Any = None) -> None:
    """Push `model` to every connection subscribed to `topic`, on every server."""
    layer = layer or get_channel_layer()
    if layer is None:
        raise RuntimeError("publish() needs CHANNEL_LAYERS to be configured")
    await layer.group_send(group_for(topic), push_message(model, i))


async def tell(address: str, model: BaseModel, *, i: str | None = None, layer: Any = None) -> None:
    """Push `model` to one connection, by its address (channel name), from anywhere."""
    layer = layer or get_channel_layer()
    if layer is None:
        raise RuntimeError("tell() needs CHANNEL_LAYERS to be configured")
    await layer.send(address, push_message(model, i))
