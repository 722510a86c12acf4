"""Registered into the default router when this module is imported (at start-up)."""

from __future__ import annotations

from pydantic import BaseModel

from envelope import message
from handlers import handler


@message("disc.hello")
class Hello(BaseModel):
    pass


@handler(public=True)
async def hello(msg: Hello) -> Hello:
    return msg
