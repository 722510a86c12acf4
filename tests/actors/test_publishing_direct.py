"""`direct_sender`: one channel-layer message from sync code in one round trip, read back
by channels_redis' own `receive`, with the layer's capacity, prefix and encryption. A
real Redis; the layer is channels_redis' `RedisChannelLayer` itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from actors.publishing import direct_sender


@pytest.fixture
async def layer(redis_url: str) -> AsyncIterator[RedisChannelLayer]:
    layer = RedisChannelLayer(
        hosts=[redis_url], prefix=f"direct-{uuid.uuid4().hex[:8]}", capacity=2
    )
    yield layer
    await layer.flush()
    await layer.close_pools()


async def _sent(layer: Any, channel: str, message: dict[str, Any]) -> None:
    sender = direct_sender(layer, 2.0)
    assert sender is not None
    await anyio.to_thread.run_sync(sender.send, channel, message)


async def _received(layer: Any, channel: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        return dict(await layer.receive(channel))


async def test_a_message_to_a_process_local_channel_is_received_as_sent(
    layer: RedisChannelLayer,
) -> None:
    channel = await layer.new_channel()
    await _sent(layer, channel, {"type": "envelope.pushes", "texts": ["a", "b"]})
    assert await _received(layer, channel) == {"type": "envelope.pushes", "texts": ["a", "b"]}


async def test_a_message_to_a_general_channel_is_received_as_sent(
    layer: RedisChannelLayer,
) -> None:
    await _sent(layer, "jobs", {"type": "envelope.push", "text": "hi"})
    assert await _received(layer, "jobs") == {"type": "envelope.push", "text": "hi"}


async def test_past_the_capacity_it_raises_channel_full_like_the_layer(
    layer: RedisChannelLayer,
) -> None:
    channel = await layer.new_channel()
    await _sent(layer, channel, {"type": "t", "n": 1})
    await _sent(layer, channel, {"type": "t", "n": 2})
    with pytest.raises(ChannelFull):
        await _sent(layer, channel, {"type": "t", "n": 3})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "t", "n": 3})
    assert [(await _received(layer, channel))["n"] for _ in range(2)] == [1, 2]


async def test_an_encrypted_layer_reads_what_it_sends(redis_url: str) -> None:
    layer = RedisChannelLayer(
        hosts=[redis_url],
        prefix=f"direct-{uuid.uuid4().hex[:8]}",
        symmetric_encryption_keys=["a secret of the test"],
    )
    try:
        channel = await layer.new_channel()
        await _sent(layer, channel, {"type": "envelope.push", "text": "secret"})
        assert (await _received(layer, channel))["text"] == "secret"
    finally:
        await layer.flush()
        await layer.close_pools()


@pytest.mark.parametrize(
    "layer",
    [
        None,
        InMemoryChannelLayer(),
        RedisChannelLayer(hosts=[{"sentinels": [("127.0.0.1", 9)], "master_name": "m"}]),
    ],
    ids=["none", "in_memory", "sentinel"],
)
def test_other_layers_have_no_direct_sender(layer: Any) -> None:
    assert direct_sender(layer, 2.0) is None
