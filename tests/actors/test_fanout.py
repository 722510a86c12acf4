"""`FanoutHub`: a publish reaches each process once, then its local members.

In-process with Channels' in-memory layer, and over a real Redis (the suite's private
`redis-server`, and one of the test's own that is stopped and started again): two hubs
stand for two servers. The same behaviours with real server processes are in
tests/multinode/test_fanout.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from django.test import override_settings

from actors.publishing import FanoutHub, fanout_for
from actors.testing import ActorHarness, capture_trace
from benchmarks._redis import RedisServer
from envelope import TopicsUnavailable
from tests.actors import topics_app
from tests.actors.rq_support import wait_until


class Member:
    """A member that records what the hub hands it."""

    def __init__(self) -> None:
        self.pushes: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.arrived = anyio.Event()

    def push_nowait(self, text: str) -> None:
        self.pushes.append(text)
        self.arrived.set()

    def message_nowait(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def wait(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.pushes) + len(self.messages) < count:
                self.arrived = anyio.Event()
                await self.arrived.wait()


async def test_in_process_a_push_reaches_each_local_member_once() -> None:
    hub = fanout_for(InMemoryChannelLayer())
    one, two, other = Member(), Member(), Member()
    await hub.join("room.a", one)
    await hub.join("room.a", two)
    await hub.join("room.b", other)
    await hub.publish_text("room.a", '{"t":"x"}')
    await hub.publish_message("room.a", {"type": "envelope.close", "code": 4001})
    assert one.pushes == two.pushes == ['{"t":"x"}']
    assert one.messages == [{"type": "envelope.close", "code": 4001}]
    assert other.pushes == [] and other.messages == []
    hub.leave("room.a", one)
    await hub.publish_text("room.a", '{"t":"y"}')
    assert (one.pushes, two.pushes) == (['{"t":"x"}'], ['{"t":"x"}', '{"t":"y"}'])
    assert hub.local_members("room.a") == 1
    assert hub.statistics().redis is False


def numsub(url: str, channel: bytes) -> int:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        ((_, count),) = client.pubsub_numsub(channel)
        return int(count)
    finally:
        client.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
async def two_hubs(private_redis: RedisServer) -> AsyncIterator[tuple[FanoutHub, FanoutHub]]:
    """Two hubs on one Redis under one prefix, as two servers have."""
    with override_settings(ENVELOPE_LAYER_TIMEOUT=1.0):
        hubs = [
            fanout_for(RedisChannelLayer(hosts=[private_redis.url], prefix="fo")) for _ in range(2)
        ]
        try:
            yield hubs[0], hubs[1]
        finally:
            for hub in hubs:
                await hub.aclose()


async def test_over_redis_one_subscribe_per_hub_and_a_push_reaches_every_member_once(
    two_hubs: tuple[FanoutHub, FanoutHub], private_redis: RedisServer
) -> None:
    a, b = two_hubs
    on_a = [Member() for _ in range(3)]
    on_b = Member()
    for member in on_a:
        await a.join("room.r", member)
    await b.join("room.r", on_b)
    channel = a.channel("room.r")
    assert numsub(private_redis.url, channel) == 2
    await b.publish_text("room.r", "first")
    await a.publish_text("room.r", "second")
    for member in (*on_a, on_b):
        await member.wait(2)
        assert member.pushes == ["first", "second"]
    assert a.statistics().delivered == 6 and b.statistics().delivered == 2

    b.leave("room.r", on_b)  # its last member: b unsubscribes
    await wait_until(lambda: numsub(private_redis.url, channel) == 1)
    for member in on_a:
        a.leave("room.r", member)
    await wait_until(lambda: numsub(private_redis.url, channel) == 0)


async def test_after_a_redis_restart_the_hub_subscribes_its_topics_again(
    two_hubs: tuple[FanoutHub, FanoutHub], private_redis: RedisServer
) -> None:
    a, b = two_hubs
    member, late, refused = Member(), Member(), Member()
    await a.join("room.r", member)
    private_redis.stop()
    with anyio.fail_after(5), pytest.raises(TopicsUnavailable):
        await b.publish_text("room.r", "lost")
    # `a` notices from its reader; meanwhile a join fails at once, unless it is kept.
    await wait_until(lambda: not a.available)
    with anyio.fail_after(0.5), pytest.raises(TopicsUnavailable):
        await a.join("room.refused", refused)
    assert a.local_members("room.refused") == 0
    await a.join("user.8", late, keep=True)  # a handshake's user topic
    private_redis.start()
    with anyio.fail_after(15):
        await a.wait_available()
        await b.wait_available()
    assert numsub(private_redis.url, a.channel("room.r")) == 1
    assert numsub(private_redis.url, a.channel("user.8")) == 1
    await b.publish_text("room.r", "back")
    await b.publish_text("user.8", "hello")
    await member.wait(1)
    await late.wait(1)
    assert (member.pushes, late.pushes) == (["back"], ["hello"])
    assert a.statistics().outages == 1 and a.statistics().resubscribed == 2


async def test_fanout_redis_names_another_redis_than_the_layer(
    private_redis: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:9/0"], prefix="fo2")  # never used
    with override_settings(ENVELOPE_FANOUT_REDIS=private_redis.url):
        hub = fanout_for(layer)
        try:
            member = Member()
            await hub.join("room.x", member)
            assert numsub(private_redis.url, hub.channel("room.x")) == 1
            await hub.publish_text("room.x", "via the setting")
            await member.wait(1)
        finally:
            await hub.aclose()


async def test_a_member_whose_queued_pushes_pass_its_budget_is_closed_as_slow() -> None:
    layer = InMemoryChannelLayer()
    address = await layer.new_channel()
    async with ActorHarness(
        routers=[topics_app.router], layer=layer, address=address, max_outbound_bytes=1000
    ) as harness:
        actor = harness.actor
        await actor.subscribe("tt.open.slow")
        hub = fanout_for(layer)
        text = '{"t":"fo.news"}'.ljust(100)
        with capture_trace() as events:
            for _ in range(9):  # 900 characters: within the budget
                actor.push_nowait(text)
            assert actor.queued_chars == 900 and not actor.closed
            await hub.publish_text("tt.open.slow", text)  # 1,000
            await hub.publish_text("tt.open.slow", text)  # 1,100: too slow
            assert actor.closed
            closing = await harness.receive()
            assert (closing.t, closing.p) == (
                "connection.closing",
                {"code": 4008, "reason": "slow"},
            )
            for _ in range(100):  # the close follows the closing push
                if harness.closed_with is not None:
                    break
                await anyio.sleep(0.01)
        assert harness.closed_with == 4008
        (slow,) = [e for e in events if e["event"] == "connection.slow"]
        assert (slow["cause"], slow["queued_chars"]) == ("over_budget", 1100)


async def test_a_frozen_redis_is_noticed_by_the_reader_and_the_topics_come_back(
    private_redis: RedisServer,
) -> None:
    # Nobody publishes while Redis is frozen: only the reader's PING can notice.
    layer = RedisChannelLayer(hosts=[private_redis.url], prefix="fo3")
    target = ({"address": private_redis.url}, "fo3")
    hub = FanoutHub(layer, target, connections=2, timeout=0.5, health_every=0.3)
    member = Member()
    try:
        await hub.join("room.f", member)
        private_redis.pause()
        try:
            await wait_until(lambda: not hub.available, timeout=10)
        finally:
            private_redis.resume()
        with anyio.fail_after(15):
            await hub.wait_available()
        assert numsub(private_redis.url, hub.channel("room.f")) == 1
        await hub.publish_text("room.f", "after")
        await member.wait(1)
        assert member.pushes == ["after"]
        assert hub.statistics().outages == 1
    finally:
        await hub.aclose()


async def test_joins_of_one_topic_at_once_while_redis_is_away_each_fail_topics_unavailable(
    private_redis: RedisServer,
) -> None:
    layer = RedisChannelLayer(hosts=[private_redis.url], prefix="fo4")
    hub = FanoutHub(layer, ({"address": private_redis.url}, "fo4"), connections=2, timeout=0.5)
    private_redis.stop()
    outcomes: list[str] = []

    async def join(member: Member) -> None:
        try:
            await hub.join("room.j", member)
            outcomes.append("joined")
        except TopicsUnavailable:
            outcomes.append("topics_unavailable")

    try:
        # The first sends the SUBSCRIBE; the others wait for its confirmation, which
        # never comes: each is told, none is cancelled.
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(join, Member())
        assert outcomes == ["topics_unavailable"] * 3
        assert hub.local_members("room.j") == 0
    finally:
        await hub.aclose()
