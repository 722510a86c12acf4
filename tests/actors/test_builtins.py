from __future__ import annotations

import pytest

from actors import EnvelopeConsumer
from actors.testing import ActorHarness, EnvelopeCommunicator
from envelope import Envelope, State
from tests.actors.sample import router


async def test_connection_ping_is_answered_on_any_connection() -> None:
    async with ActorHarness([router], allow_unauthenticated=False) as client:
        reply = await client.request("connection.ping", i="p")
        assert reply == Envelope("connection.ping", "p", {"pong": True}, State.SUCCESS)


async def test_connection_close_pushes_closing_then_closes_with_1000() -> None:
    client = EnvelopeCommunicator(EnvelopeConsumer.as_asgi(routers=[router]))
    await client.connect()
    await client.send("connection.close", i="bye")
    closing = await client.receive()
    assert closing == Envelope("connection.closing", "bye", {"code": 1000, "reason": "requested"})
    with pytest.raises(ConnectionError, match="1000"):
        await client.receive()
    await client.wait()


async def test_builtins_can_be_turned_off() -> None:
    async with ActorHarness([router], builtin_routers=False) as client:
        reply = await client.request("connection.ping")
        assert reply.p is not None and reply.p["code"] == "unknown_type"
