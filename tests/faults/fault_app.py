"""The application the fault tests run under daphne: the deferred test handlers behind
Channels' session authentication, plus a handler that pushes to the caller's user topic."""

from __future__ import annotations

from pydantic import BaseModel

from actors.topics import Topic, user_topic_name
from envelope import Unauthenticated, message
from handlers import Context, Router

faults = Router("faults")

#: A topic anyone connected may join, checked in the actor (no worker, no database).
storm = Topic("storm.{name}", permission=None)


@message("faults.notify_me")
class NotifyMe(BaseModel):
    text: str


@message("faults.notice")
class Notice(BaseModel):
    text: str


@faults.handler
async def notify_me(msg: NotifyMe, ctx: Context) -> None:
    """Publish a `faults.notice` to the caller's user topic (every socket of the user)."""
    if not ctx.user.is_authenticated:
        raise Unauthenticated()
    await ctx.publish(user_topic_name(ctx.user), Notice(text=msg.text))
