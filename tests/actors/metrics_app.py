"""Handlers and a topic of the metrics tests (names under ``mt.``)."""

from __future__ import annotations

import anyio
from pydantic import BaseModel

from actors.topics import Topic
from envelope import Failure, message
from handlers import Context, Router

router = Router("metrics-tests")
open_topic = Topic("mt.open.{name}", permission=None)


@message("mt.echo")
class Echo(BaseModel):
    text: str


@router.handler(public=True)
async def echo(msg: Echo) -> Echo:
    return msg


@message("mt.refuse")
class Refuse(BaseModel):
    pass


class Refused(Failure):
    code = "mt.refused"
    message = "Refused, as asked."


@router.handler(public=True)
async def refuse(msg: Refuse) -> None:
    raise Refused()


@message("mt.nap")
class Nap(BaseModel):
    seconds: float


@router.handler(public=True)
async def nap(msg: Nap) -> None:
    await anyio.sleep(msg.seconds)


@message("mt.shout")
class Shout(BaseModel):
    topic: str
    text: str


@router.handler(public=True)
async def shout(msg: Shout, ctx: Context) -> None:
    await ctx.publish(msg.topic, Echo(text=msg.text))
