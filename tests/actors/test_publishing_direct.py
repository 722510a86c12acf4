"""`direct_sender`: one channel-layer message from sync code in one round trip, read back
by channels_redis' own `receive`, with the layer's capacity, prefix and encryption. A
real Redis; the layer is channels_redis' `RedisChannelLayer` itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis
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


async def test_nothing_is_sent_while_the_unless_key_exists(
    layer: RedisChannelLayer, redis_url: str
) -> None:
    sender = direct_sender(layer, 2.0)
    assert sender is not None
    client = redis.Redis.from_url(redis_url)
    gone, answered = f"{layer.prefix}:gone", f"{layer.prefix}:job"
    try:
        channel = await layer.new_channel()
        client.set(gone, 1)
        mark = (answered, "meta", b"answered")
        assert not sender.send(channel, {"type": "t", "n": 1}, unless=gone, mark=mark)
        assert client.hget(answered, "meta") is None  # not marked either
        client.delete(gone)
        assert sender.send(channel, {"type": "t", "n": 2}, unless=gone, mark=mark)
        assert client.hget(answered, "meta") == b"answered"
        assert (await _received(layer, channel))["n"] == 2
    finally:
        client.delete(gone, answered)
        client.close()


async def test_a_full_channel_is_not_marked(layer: RedisChannelLayer, redis_url: str) -> None:
    sender = direct_sender(layer, 2.0)
    assert sender is not None
    client = redis.Redis.from_url(redis_url)
    answered = f"{layer.prefix}:job"
    try:
        channel = await layer.new_channel()
        sender.send(channel, {"type": "t"})
        sender.send(channel, {"type": "t"})
        with pytest.raises(ChannelFull):
            sender.send(channel, {"type": "t"}, mark=(answered, "meta", b"answered"))
        assert client.hget(answered, "meta") is None
    finally:
        client.delete(answered)
        client.close()


def test_same_redis_compares_server_and_database(layer: RedisChannelLayer, redis_url: str) -> None:
    sender = direct_sender(layer, 2.0)
    assert sender is not None
    same = redis.Redis.from_url(redis_url)
    kwargs = same.connection_pool.connection_kwargs
    other_db = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0) + 1)
    other_port = redis.Redis(host=kwargs["host"], port=kwargs["port"] + 1)
    assert sender.same_redis("jobs", same)
    assert not sender.same_redis("jobs", other_db)
    assert not sender.same_redis("jobs", other_port)
    assert not sender.same_redis("jobs", object())


async def test_in_a_worker_sends_keep_one_connection_never_left_with_an_answer(
    layer: RedisChannelLayer, redis_url: str
) -> None:
    # A worker process's sender keeps one connection per host (no check for unread
    # answers, as the pool makes when it hands one out): a send interrupted while its
    # answer is read (a job's timeout, raised by SIGALRM's handler) must not leave that
    # answer for the next send.
    sender = direct_sender(layer, 2.0)  # this layer's own
    assert sender is not None
    sender._keep = True  # as in a process with a worker loop
    channel = await layer.new_channel()
    await anyio.to_thread.run_sync(sender.send, channel, {"type": "envelope.push", "text": "1"})
    (kept,) = sender._kept.values()
    connection = kept.connection
    assert connection is not None
    real = connection.read_response

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # sent, its answer not read

    connection.read_response = interrupted  # type: ignore[method-assign]

    def send_interrupted() -> None:
        with pytest.raises(KeyboardInterrupt):
            sender.send(channel, {"type": "envelope.push", "text": "2"})

    await anyio.to_thread.run_sync(send_interrupted)
    connection.read_response = real  # type: ignore[method-assign]
    # The next send's own answer (-1: not sent, the `unless` key exists), not the one
    # left unread (1: sent).
    gone = f"gone-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    client.set(gone, 1, ex=30)
    client.close()
    unless = {"unless": gone}
    assert sender.send(channel, {"type": "envelope.push", "text": "3"}, **unless) is False
    assert [(await _received(layer, channel))["text"] for _ in range(2)] == ["1", "2"]
    assert kept.connection is connection  # the same client, a new socket
    kept.close()
