"""The messages and handlers the benchmarks route: an echo of three payload sizes, a ping."""

from __future__ import annotations

from typing import Any

import anyio.lowlevel
from pydantic import BaseModel

from envelope import message
from handlers import Context, Router


@message("bench.ping")
class Ping(BaseModel):
    pass


@message("bench.pong")
class Pong(BaseModel):
    pass


@message("bench.small")
class Small(BaseModel):
    n: int
    text: str


@message("bench.medium")
class Medium(BaseModel):
    room: str
    text: str
    author: int
    tags: list[str]
    meta: dict[str, int]
    pinned: bool = False


class Item(BaseModel):
    id: int
    name: str
    score: float
    labels: list[str]


@message("bench.large")
class Large(BaseModel):
    title: str
    items: list[Item]


router = Router("bench")


@router.handler(public=True)
async def ping(msg: Ping, ctx: Context) -> Pong:
    return Pong()


@router.handler(public=True)
async def echo_small(msg: Small, ctx: Context) -> Small:
    return msg


@router.handler(public=True)
async def echo_medium(msg: Medium, ctx: Context) -> Medium:
    return msg


@router.handler(public=True)
async def echo_large(msg: Large, ctx: Context) -> Large:
    return msg


def payloads() -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (t, p): about 40 bytes, 300 bytes and 5 KiB of JSON."""
    return {
        "small": ("bench.small", {"n": 7, "text": "hello"}),
        "medium": (
            "bench.medium",
            {
                "room": "lobby",
                "text": "A message of ordinary length, as people write in a chat room. " * 2,
                "author": 42,
                "tags": ["news", "general", "pinned", "fr"],
                "meta": {"a": 1, "b": 2, "c": 3, "d": 4},
                "pinned": True,
            },
        ),
        "large": (
            "bench.large",
            {
                "title": "Agenda",
                "items": [
                    {
                        "id": k,
                        "name": f"Proposal number {k}",
                        "score": k * 0.5,
                        "labels": ["open", "motion"],
                    }
                    for k in range(60)
                ],
            },
        ),
    }


#: The topic envelope subscribers join, and the group plain consumers join, for fan-out.
FAN_TOPIC = "bench.fan"
FAN_GROUP = "bench.plainfan"


@message("bench.join")
class Join(BaseModel):
    pass


@message("bench.news")
class News(BaseModel):
    n: int
    text: str


@router.handler(public=True)
async def join(msg: Join, ctx: Context) -> Pong:
    await ctx.subscribe(FAN_TOPIC)
    return Pong()


#: The topic the never-reading subscribers of the soak scenario join.
SOAK_TOPIC = "bench.soak"


@message("bench.soak.join")
class SoakJoin(BaseModel):
    pass


@message("bench.soak.feed")
class SoakFeed(BaseModel):
    count: int
    size: int


@router.handler(public=True)
async def soak_join(msg: SoakJoin, ctx: Context) -> Pong:
    await ctx.subscribe(SOAK_TOPIC)
    return Pong()


@router.handler(public=True)
async def soak_feed(msg: SoakFeed, ctx: Context) -> Pong:
    """Publish `count` pushes of `size` characters to the soak topic, yielding between
    them (as pushes from many senders would arrive)."""
    text = "x" * msg.size
    for n in range(msg.count):
        await ctx.publish(SOAK_TOPIC, News(n=n, text=text))
        await anyio.lowlevel.checkpoint()
    return Pong()
