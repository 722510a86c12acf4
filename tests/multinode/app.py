"""What the servers and workers of the multi-server test run: topics, handlers, a job."""

from __future__ import annotations

import os

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import transaction
from pydantic import BaseModel

from actors.topics import Topic, TopicMatch, publish, publish_on_commit
from envelope import message
from handlers import Context, JobContext, Router

QUEUE = os.environ.get("MN_QUEUE", "mn")
SERVER = os.environ.get("MN_NAME", "?")

router = Router("multinode")


@message("mn.said")
class Said(BaseModel):
    text: str
    by: str


@message("mn.say")
class Say(BaseModel):
    topic: str
    text: str


@router.handler
async def say(msg: Say, ctx: Context) -> None:
    await ctx.publish(msg.topic, Said(text=msg.text, by=SERVER))


@message("mn.later")
class Later(BaseModel):
    topic: str
    count: int


@router.handler(queue=QUEUE)
def later(msg: Later, ctx: JobContext) -> None:
    """Deferred: runs on an RQ worker, inside its transaction; pushes go out on commit."""
    for n in range(msg.count):
        publish_on_commit(msg.topic, Said(text=f"later-{n}", by="worker"))


def announce(topic: str, text: str) -> None:
    """A plain RQ job: one push on commit, and one published at once."""
    with transaction.atomic():
        publish_on_commit(topic, Said(text=f"{text}-on-commit", by="job"), i="job-1")
    async_to_sync(publish)(topic, Said(text=f"{text}-now", by="job"), i="job-2")


def is_staff_in_db(match: TopicMatch, ctx: object) -> bool:
    """Needs the database: checked on an RQ worker."""
    pk = getattr(ctx, "user").pk  # noqa: B009
    return get_user_model()._default_manager.filter(pk=pk, is_staff=True).exists()


room = Topic("mn.room.{name}", permission=None)
staff_room = Topic("mn.staff.{name}", permission=is_staff_in_db, queue=QUEUE)


async def presence_name(user: object) -> dict[str, str]:
    return {"name": getattr(user, "username", "")}


presence_room = Topic(
    "mn.presence.{name}", permission=None, presence=True, presence_info=presence_name
)
