"""What a connection holds is freed when it closes, by reference counting alone.

A closed connection's consumer, actor, mailbox and the server's socket buffers must
not wait for the cyclic garbage collector: with thousands of connections coming and
going, and megabytes held by a slow one, memory would grow between collections.
The test runs a connection through the consumer with the collector off and checks,
with weak references, that nothing of it is left once the application returns.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from actors import EnvelopeConsumer, Topic
from actors.signals import consumer_connected
from envelope import message
from handlers import Context, Router

router = Router("memory-at-close")
room = Topic("mem.room.{name}", permission=None)
held: list[weakref.ref[Any]] = []  # what the connection under test holds


async def remember(sender: Any, consumer: Any, **kwargs: Any) -> None:
    if consumer.scope.get("path") == "/memory/":
        held.extend(weakref.ref(obj) for obj in (consumer, consumer.actor, consumer.actor.mailbox))


@message("mem.touch")
class Touch(BaseModel):
    pass


class Touched(BaseModel):
    ok: bool = True


@router.handler(public=True)
async def touch(msg: Touch, ctx: Context) -> Touched:
    return Touched()


@message("mem.touch.later")
class TouchLater(BaseModel):
    pass


@router.handler(public=True, concurrent=True)
async def touch_later(msg: TouchLater, ctx: Context) -> Touched:
    await asyncio.sleep(30)  # still running when the client goes: cancelled
    return Touched()


class Buffer:
    """Stands for what a server holds for a socket (Twisted's buffer, here 4 MB)."""

    def __init__(self) -> None:
        self.data = bytearray(4 * 1024 * 1024)


class Transport:
    """Shaped like the Twisted transport daphne hands over, so that the outbound budget
    reads it as it reads daphne's."""

    def __init__(self) -> None:
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.buffer = Buffer()

    def abortConnection(self) -> None:
        pass


class Protocol:
    def __init__(self, replies: int) -> None:
        self.transport = Transport()
        self.replies = replies
        self.replied = asyncio.Event()  # set once `replies` frames were sent


async def handle_reply(protocol: Protocol, message: dict[str, Any]) -> None:
    if message["type"] == "websocket.send":
        protocol.replies -= 1
        if protocol.replies == 0:
            protocol.replied.set()


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    consumer_connected.connect(remember)
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        consumer_connected.disconnect(remember)
        held.clear()


async def run_connection(app: Any, frames: list[str]) -> list[weakref.ref[Any]]:
    """One connection, driven the way daphne drives it; weak references to what it held:
    its consumer, actor, mailbox and the server's protocol and buffer for the socket."""
    protocol = Protocol(replies=3)
    refs = [weakref.ref(protocol), weakref.ref(protocol.transport.buffer)]
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "websocket", "path": "/memory/", "headers": [], "query_string": b""}
    task = asyncio.ensure_future(app(scope, inbox.get, functools.partial(handle_reply, protocol)))
    await inbox.put({"type": "websocket.connect"})
    for frame in frames:
        await inbox.put({"type": "websocket.receive", "text": frame})
    await asyncio.wait_for(protocol.replied.wait(), 5)  # the concurrent one still runs
    await inbox.put({"type": "websocket.disconnect", "code": 1006})
    await asyncio.wait_for(task, 5)
    assert len(held) == 3
    return refs + held


async def test_a_closed_connection_is_freed_without_the_cyclic_collector(
    no_cyclic_gc: None,
) -> None:
    app = EnvelopeConsumer.as_asgi(routers=[router])
    refs = await run_connection(
        app,
        [
            '{"t": "mem.touch", "i": "1"}',
            '{"t": "topic.subscribe", "i": "2", "p": {"topic": "mem.room.a"}}',
            '{"t": "mem.touch.later", "i": "3"}',
            '{"t": "nope", "i": "4"}',
        ],
    )
    await asyncio.sleep(0)  # callbacks the loop still had for the connection
    alive = [type(ref()).__name__ for ref in refs if ref() is not None]
    assert alive == []
