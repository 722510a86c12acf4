"""`LayerInbox`: a server process's connections' channel-layer messages, read in batches
by one task. A real Redis; the layer is channels_redis' `RedisChannelLayer` itself, and
the messages are written by its own `send` and `group_send` and by `DirectSender` (what a
worker sends). Through daphne and a real worker: the deferred tests
(`test_deferred_rq_simple*.py`) and the outage faults (`tests/faults/test_redis_outage.py`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from structlog.testing import capture_logs

from actors.publishing import LayerInbox, direct_sender, inbox_for
from tests.actors.rq_support import wait_until


@pytest.fixture
async def layer(redis_url: str) -> AsyncIterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"inbox-{uuid.uuid4().hex[:8]}")
    yield layer
    await layer.flush()
    await layer.close_pools()


def _send_now(layer: RedisChannelLayer, channel: str, n: int) -> None:
    """Send without giving the event loop a turn (a worker's `DirectSender`, blocking):
    what is sent here waits in Redis until the test awaits."""
    sender = direct_sender(layer, 2.0)
    assert sender is not None
    sender.send(channel, {"type": "envelope.push", "text": str(n)})


async def _texts(queue: asyncio.Queue[dict[str, Any]], count: int) -> list[str]:
    with anyio.fail_after(5):
        return [(await queue.get())["text"] for _ in range(count)]


async def _nothing_more(queue: asyncio.Queue[dict[str, Any]]) -> None:
    await anyio.sleep(0.2)
    assert queue.empty()


async def test_each_channel_gets_its_messages_in_the_order_they_were_sent(
    layer: RedisChannelLayer,
) -> None:
    inbox = inbox_for(layer, 2.0)
    assert inbox is not None
    opened = [inbox.open() for _ in range(3)]
    try:
        for n in range(30):  # interleaved: the layer's own send and a worker's
            name = opened[n % 3][0]
            if n % 2:
                await layer.send(name, {"type": "envelope.push", "text": str(n)})
            else:
                await anyio.to_thread.run_sync(_send_now, layer, name, n)
        for k, (_, queue) in enumerate(opened):
            assert await _texts(queue, 10) == [str(n) for n in range(k, 30, 3)]
            await _nothing_more(queue)
    finally:
        for name, _ in opened:
            inbox.close(name)


async def test_a_group_send_reaches_each_member_once_without_the_layers_routing_key(
    layer: RedisChannelLayer,
) -> None:
    inbox = inbox_for(layer, 2.0)
    assert inbox is not None
    (a, qa), (b, qb), (c, qc) = (inbox.open() for _ in range(3))
    try:
        await layer.group_add("room", a)
        await layer.group_add("room", b)
        await layer.group_send("room", {"type": "envelope.push", "text": "hi"})
        assert await _texts(qa, 1) == ["hi"]
        assert await _texts(qb, 1) == ["hi"]
        await _nothing_more(qc)
        await layer.send(a, {"type": "envelope.push", "text": "again"})
        assert await _texts(qa, 1) == ["again"]  # the first one was not changed by b's copy
    finally:
        for name in (a, b, c):
            inbox.close(name)


async def test_a_backlog_is_read_in_one_round_trip(layer: RedisChannelLayer) -> None:
    inbox = inbox_for(layer, 2.0)
    assert inbox is not None
    name, queue = inbox.open()  # the reading task starts at the loop's next turn
    try:
        client = redis.Redis.from_url(layer.hosts[0]["address"])
        before = client.info("commandstats")
        for n in range(60):
            _send_now(layer, name, n)
        assert await _texts(queue, 60) == [str(n) for n in range(60)]
        after = client.info("commandstats")
        client.close()

        def calls(stats: dict[str, Any], command: str) -> int:
            return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

        # One script for the 60 messages; channels_redis would have run 60 blocking pops,
        # 60 scripts and 120 more commands.
        assert (
            calls(after, "evalsha")
            + calls(after, "eval")
            - calls(before, "evalsha")
            - calls(before, "eval")
            <= 2 + 60
        )  # the senders' 60 scripts, the reader's 1-2
        assert calls(after, "bzpopmin") - calls(before, "bzpopmin") <= 1
    finally:
        inbox.close(name)


async def test_what_a_reader_took_without_reading_the_answer_is_read_again_first(
    layer: RedisChannelLayer,
) -> None:
    # A reader whose connection dropped after Redis ran its script, before the answer
    # came back, left its batch "in flight"; the next reading puts it back, in order.
    inbox = LayerInbox(layer, 2.0)
    name, queue = inbox.open()  # nothing is read until the test awaits
    try:
        for n in range(5):
            _send_now(layer, name, n)
        client = redis.Redis.from_url(layer.hosts[0]["address"])
        for member, score in client.zpopmin(inbox.key, 3):  # as the script takes them
            client.zadd(inbox.in_flight, {member: score})
        client.close()
        assert await _texts(queue, 5) == ["0", "1", "2", "3", "4"]
        await _nothing_more(queue)
    finally:
        inbox.close(name)


async def test_past_the_layers_capacity_the_oldest_message_is_dropped_and_logged(
    redis_url: str,
) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"inbox-{uuid.uuid4().hex[:8]}", capacity=2)
    inbox = LayerInbox(layer, 2.0)
    name, queue = inbox.open()
    try:
        for n in range(2):
            _send_now(layer, name, n)
        with capture_logs() as logs:
            await anyio.sleep(0.2)  # read: the queue is full, its consumer does not read
            for n in range(2, 4):
                _send_now(layer, name, n)
            await anyio.sleep(0.2)
        assert await _texts(queue, 2) == ["2", "3"]
        dropped = [e for e in logs if e["event"] == "layer.message_dropped"]
        assert [e["conn"] for e in dropped] == [name, name]
    finally:
        inbox.close(name)
        await layer.flush()
        await layer.close_pools()


async def test_reading_stops_with_the_last_channel_and_frees_its_redis_connection(
    layer: RedisChannelLayer,
) -> None:
    client = redis.Redis.from_url(layer.hosts[0]["address"])

    def readers() -> int:
        return sum(1 for c in client.client_list() if c["name"] == "envelope-inbox")

    inbox = LayerInbox(layer, 2.0)
    (a, _), (b, qb) = inbox.open(), inbox.open()
    await layer.send(b, {"type": "envelope.push", "text": "read"})
    assert await _texts(qb, 1) == ["read"]
    assert readers() == 1  # one reader for both channels
    inbox.close(a)
    await layer.send(b, {"type": "envelope.push", "text": "still"})
    assert await _texts(qb, 1) == ["still"]
    inbox.close(b)
    await wait_until(lambda: readers() == 0, 5, 0.02)
    client.close()


def test_other_layers_are_read_by_their_own_receive(redis_url: str) -> None:
    several = RedisChannelLayer(hosts=[redis_url, redis_url])

    async def found(layer: Any) -> Any:
        return inbox_for(layer, 2.0)

    assert asyncio.run(found(InMemoryChannelLayer())) is None
    assert asyncio.run(found(several)) is None
