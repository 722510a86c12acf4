"""Topics and handlers shared by the topic tests (names under ``tt.``, kept apart)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from pydantic import BaseModel

from actors import EnvelopeConsumer
from actors.testing import WithUser
from actors.topics import Topic, TopicMatch, database_free, publish_on_commit
from envelope import NotFound, message
from handlers import Context, JobContext, Router, staff

router = Router("topic-tests")
calls: list[str] = []


@message("tt.room.state")
class RoomState(BaseModel):
    room: str
    members: int


@message("tt.note")
class Note(BaseModel):
    n: int


async def is_member(match: TopicMatch, ctx: Any) -> bool:
    calls.append(f"is_member:{match.topic}")
    return match.params["name"] in getattr(ctx.user, "rooms", ())


async def room_state(match: TopicMatch, ctx: Any) -> list[RoomState]:
    return [RoomState(room=match.params["name"], members=3)]


def is_staff_in_db(match: TopicMatch, ctx: Any) -> bool:
    """Needs the database: runs on a worker (here, the server's thread)."""
    calls.append(f"db:{match.topic}")
    return get_user_model()._default_manager.filter(pk=ctx.user.pk, is_staff=True).exists()


def db_state(match: TopicMatch, ctx: Any) -> RoomState:
    count = get_user_model()._default_manager.count()
    return RoomState(room=str(match.params["pk"]), members=count)


def crashes(match: TopicMatch, ctx: Any) -> bool:
    raise RuntimeError("secret detail")


@database_free
def name_is_short(match: TopicMatch, ctx: Any) -> bool:
    return len(match.params["name"]) < 5


async def hides(match: TopicMatch, ctx: Any) -> bool:
    raise NotFound("There is no such topic.")


open_topic = Topic("tt.open.{name}", permission=None)
room = Topic("tt.room.{name}", permission=is_member, snapshot=room_state)
db_topic = Topic("tt.db.{pk:int}", permission=is_staff_in_db, snapshot=db_state)
staff_topic = Topic("tt.staff", permission=staff)
short_topic = Topic("tt.short.{name}", permission=name_is_short)
crash_topic = Topic("tt.crash", permission=crashes)
hidden_topic = Topic("tt.hidden", permission=hides)


@message("tt.publish")
class PublishNotes(BaseModel):
    topic: str
    count: int


@router.handler
async def publish_notes(msg: PublishNotes, ctx: Context) -> None:
    for n in range(msg.count):
        await ctx.publish(msg.topic, Note(n=n))


@message("tt.publish_later")
class PublishLater(BaseModel):
    topic: str
    count: int


@router.handler
def publish_later(msg: PublishLater, ctx: JobContext) -> None:
    """A deferred handler publishing from its transaction (batched on commit)."""
    for n in range(msg.count):
        publish_on_commit(msg.topic, Note(n=n), i=ctx.envelope.i)


@message("tt.address")
class WhereAmI(BaseModel):
    pass


class Address(BaseModel):
    address: str | None


@router.handler
async def where_am_i(msg: WhereAmI, ctx: Context) -> Address:
    return Address(address=ctx.connection)


async def not_a_model(match: TopicMatch, ctx: Any) -> Any:
    return [{"room": "a"}]


bad_snapshot_topic = Topic("tt.badsnap", permission=None, snapshot=not_a_model)


def slow_check(match: TopicMatch, ctx: Any) -> bool:
    """A database check that takes a while (on a worker thread)."""
    time.sleep(0.3)
    return True


slow_topic = Topic("tt.slow.{name}", permission=slow_check)

flaky = {"broken": False}


def sometimes_broken(match: TopicMatch, ctx: Any) -> bool:
    if flaky["broken"]:
        raise RuntimeError("the check itself failed")
    return True


flaky_topic = Topic("tt.flaky", permission=sometimes_broken)


def user(pk: int = 1, **extra: Any) -> Any:
    return SimpleNamespace(pk=pk, is_authenticated=True, is_staff=False, **extra)


ANONYMOUS = SimpleNamespace(pk=None, is_authenticated=False)


def consumer_app(who: Any, **options: Any) -> Any:
    return WithUser(EnvelopeConsumer.as_asgi(routers=[router], **options), who)


create_user = sync_to_async(
    lambda username, **kw: get_user_model()._default_manager.create(username=username, **kw)
)
