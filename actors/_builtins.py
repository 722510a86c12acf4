"""Built-in `connection.ping` and `connection.close`, served by every consumer."""

from __future__ import annotations

from pydantic import BaseModel

from actors._closing import CLOSE_NORMAL, Closing
from actors.request import RequestContext
from envelope import message
from handlers import Context, Router

router = Router("connection")


@message("connection.ping")
class Ping(BaseModel):
    """Answered `s` at once: a keep-alive and a round-trip probe."""


class Pong(BaseModel):
    pong: bool = True


@router.handler(public=True)
async def ping(msg: Ping) -> Pong:
    return Pong()


@message("connection.close")
class Close(BaseModel):
    """The client asks the server to close: a `connection.closing` push, then close 1000."""


@router.handler(public=True, reply=False)
async def close(msg: Close, ctx: Context) -> None:
    await ctx.send(Closing(code=CLOSE_NORMAL, reason="requested"))
    assert isinstance(ctx, RequestContext)
    await ctx.actor.close(CLOSE_NORMAL)
