"""The ASGI app the fault tests run under real servers: an echo, and a topic fed on request;
the process's Prometheus metrics over HTTP (any path)."""

from __future__ import annotations

import anyio.lowlevel
import django
from pydantic import BaseModel, Field

django.setup()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.urls import path  # noqa: E402
from prometheus_client import make_asgi_app  # noqa: E402

from actors import EnvelopeConsumer, Topic, websocket_router  # noqa: E402
from envelope import message  # noqa: E402
from handlers import Context, Router  # noqa: E402

router = Router("faults")
feed = Topic("fault.feed", permission=None)


@message("fault.echo")
class Echo(BaseModel):
    text: str = Field(max_length=60_000)


class Echoed(BaseModel):
    text: str


@router.handler(public=True)
async def echo(msg: Echo) -> Echoed:
    return Echoed(text=msg.text)


@message("fault.item")
class Item(BaseModel):
    n: int
    data: str


@message("fault.flood")
class Flood(BaseModel):
    count: int = Field(ge=1, le=100_000)
    size: int = Field(ge=0, le=60_000)


class Flooded(BaseModel):
    count: int


@router.handler(public=True)
async def flood(msg: Flood, ctx: Context) -> Flooded:
    """Publish `count` items of `size` bytes to `fault.feed`, yielding between them so
    the subscribers' layer readers keep up (as pushes from many senders would)."""
    data = "x" * msg.size
    for n in range(msg.count):
        await ctx.publish(feed.pattern, Item(n=n, data=data))
        await anyio.lowlevel.checkpoint()
    return Flooded(count=msg.count)


@message("fault.numbers")
class Numbers(BaseModel):
    values: list[int]


@router.handler(public=True)
async def numbers(msg: Numbers) -> None:
    pass


application = ProtocolTypeRouter(
    {
        "websocket": websocket_router([path("ws/", EnvelopeConsumer.as_asgi(routers=[router]))]),
        "http": make_asgi_app(),
    }
)
