"""`actors.publish()` / `tell()` and on-commit pushes when the layer's Redis is away or
hangs: a bounded, documented outcome (`TopicsUnavailable`, or `push.lost` under the push's
`i`), never a hang nor redis-py's own errors.

A private `redis-server` the test stops and freezes with SIGSTOP; the layer is
channels_redis's. The sync calls go through `async_to_sync` exactly as on an RQ worker or
in a view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from django.test import override_settings
from pydantic import BaseModel

from actors import publish, publish_on_commit, tell, tell_on_commit
from actors.publishing import fanout_for, gate_for
from actors.testing import capture_trace
from benchmarks._redis import RedisServer
from envelope import TopicsUnavailable, message

pytestmark = pytest.mark.slow

TIMEOUT = 0.5  # ENVELOPE_LAYER_TIMEOUT in these tests
BOUND = TIMEOUT + 5  # a deadline for the outcome, generous for a shared machine


@message("faults.outage_notice")
class OutageNotice(BaseModel):
    text: str


@pytest.fixture
def redis_layer() -> Iterator[tuple[RedisServer, RedisChannelLayer]]:
    with RedisServer() as server:
        layers = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [server.url]},
            }
        }
        with override_settings(CHANNEL_LAYERS=layers, ENVELOPE_LAYER_TIMEOUT=TIMEOUT):
            channel_layers.backends.clear()
            try:
                yield server, channel_layers["default"]
            finally:
                server.resume()
                channel_layers.backends.clear()


async def expect_unavailable(call: Any) -> float:
    started = time.monotonic()
    with anyio.fail_after(BOUND), pytest.raises(TopicsUnavailable):
        await call
    return time.monotonic() - started


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_publish_and_tell_fail_with_topics_unavailable_when_the_layer_redis_is_away(
    redis_layer: tuple[RedisServer, RedisChannelLayer], fault: str
) -> None:
    server, _ = redis_layer
    notice = OutageNotice(text="x")
    await publish("room.outage", notice, i="before")  # the layer works: a pooled connection
    server.stop() if fault == "stopped" else server.pause()

    waited = await expect_unavailable(publish("room.outage", notice, i="p1"))
    await expect_unavailable(tell("specific.abc!def", notice, i="t1"))
    if fault == "frozen":  # nothing refuses: it is the timeout that answers
        assert waited >= TIMEOUT


async def test_publish_on_a_server_loop_goes_through_its_hub_and_tell_through_its_gate(
    redis_layer: tuple[RedisServer, RedisChannelLayer],
) -> None:
    server, layer = redis_layer
    hub = fanout_for(layer)  # as a server's connections make them
    gate = gate_for(layer)
    notice = OutageNotice(text="x")
    try:
        server.pause()
        await expect_unavailable(publish("room.outage", notice))
        assert not hub.available  # the hub saw the outage: later publishes fail at once
        with anyio.fail_after(0.5), pytest.raises(TopicsUnavailable):
            await publish("room.outage", notice)
        await expect_unavailable(tell("specific.abc!def", notice))
        assert not gate.available
        server.resume()
        with anyio.fail_after(BOUND):
            await hub.wait_available()
            await gate.wait_available()
        await publish("room.outage", notice)
        assert hub.statistics().outages == 1
        assert gate.statistics().outages == 1
    finally:
        await hub.aclose()


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_on_commit_pushes_that_cannot_be_sent_are_logged_lost_under_their_i(
    redis_layer: tuple[RedisServer, RedisChannelLayer], fault: str
) -> None:
    server, _ = redis_layer
    notice = OutageNotice(text="x")
    with capture_trace() as events:
        publish_on_commit("room.outage", notice, i="sent-1")  # no transaction: sent now
        server.stop() if fault == "stopped" else server.pause()
        started = time.monotonic()
        publish_on_commit("room.outage", notice, i="lost-1")  # neither raises nor hangs
        tell_on_commit("specific.abc!def", notice, i="lost-2")
        assert time.monotonic() - started < 2 * BOUND
    published = [e["i"] for e in events if e["event"] == "push.published"]
    assert published == ["sent-1"]
    lost = [
        (e["i"], e["t"], e.get("topic"), e.get("to")) for e in events if e["event"] == "push.lost"
    ]
    assert lost == [
        ("lost-1", "faults.outage_notice", "room.outage", None),
        ("lost-2", "faults.outage_notice", None, "specific.abc!def"),
    ]
    assert all(e["level"] == "error" for e in events if e["event"] == "push.lost")
