"""Handlers declared under `from __future__ import annotations` (string annotations)."""

from __future__ import annotations

from pydantic import BaseModel

from envelope import message
from handlers import Context, Router

router = Router("later")


@message("h.later")
class Later(BaseModel):
    n: int


class LaterReply(BaseModel):
    n: int


@router.handler
async def later(ctx: Context, msg: Later) -> LaterReply:
    return LaterReply(n=msg.n)
