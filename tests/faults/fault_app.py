"""The application the fault tests run under daphne: the deferred test handlers behind
Channels' session authentication, plus a handler that pushes to the caller's user topic."""

from __future__ import annotations

from pydantic import BaseModel

from actors.topics import CheckContext, Topic, TopicMatch, user_topic_name
from envelope import Unauthenticated, message
from handlers import Context, Router

faults = Router("faults")

#: A topic anyone connected may join, checked in the actor (no worker, no database).
storm = Topic("storm.{name}", permission=None)


def may_read(match: TopicMatch, ctx: CheckContext) -> bool:
    """A sync permission (it may use the database): in thread mode it runs in a thread of
    the server, and the async snapshot is called back on the server's loop from there."""
    return True


@message("faults.checked_state")
class CheckedState(BaseModel):
    name: str


async def snapshot_of(match: TopicMatch, ctx: CheckContext) -> CheckedState:
    return CheckedState(name=match.params["name"])


#: A topic checked in a thread of the server in thread mode (on a worker in RQ mode).
checked = Topic("checked.{name}", permission=may_read, snapshot=snapshot_of)


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
