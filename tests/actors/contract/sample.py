"""A small app with one of everything the contract describes, in registries of its own
(so that what the rest of the test process declares does not show up in it)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from actors import EnvelopeSettings
from actors.contract import Contract, build_contract
from actors.topics import Topic, TopicRegistry
from envelope import Failure, MessageRegistry, NotFound, message
from handlers import Context, JobContext, Router, authenticated

registry = MessageRegistry()
topic_registry = TopicRegistry()
router = Router("sample")


class Colour(StrEnum):
    red = "red"
    blue = "blue"


class Point(BaseModel):
    x: int
    y: int


@message("vote.cast", registry=registry)
class CastVote(BaseModel):
    """Cast a vote in a poll."""

    poll: int = Field(..., ge=1)
    choice: str = Field(..., max_length=20)
    comment: str | None = None


class VoteCounted(BaseModel):
    poll: int
    total: int
    colour: Colour
    where: Point | None = None


@message("vote.export", registry=registry)
class ExportVotes(BaseModel):
    poll: int


class ExportProgress(BaseModel):
    done: int
    total: int


class Exported(BaseModel):
    url: str
    sizes: dict[str, int]


@message("vote.forget", registry=registry)
class ForgetVote(BaseModel):
    poll: int


@message("ns:odd-name", registry=registry)
class OddName(BaseModel):
    """A wire name with a colon (not allowed in AsyncAPI keys)."""


@message("vote.counted", registry=registry)
class VoteCountedPush(BaseModel):
    """Pushed to poll.<pk> after each vote."""

    poll: int
    total: int


@message("user.details", registry=registry)
class UserDetails(BaseModel):
    """Sent to one connection with ctx.send: a send-only model (no handler, no topic)."""

    name: str
    tags: list[str]


class PollClosed(Failure):
    code = "poll_closed"
    message = "The poll is closed."


@router.handler(permission=authenticated, rate="5/s", errors=[PollClosed, NotFound], ack=True)
async def cast_vote(msg: CastVote, ctx: Context) -> VoteCounted:
    return VoteCounted(poll=msg.poll, total=1, colour=Colour.red)


@router.handler(progress=ExportProgress)
def export_votes(msg: ExportVotes, ctx: JobContext) -> Exported:
    return Exported(url="/x", sizes={})


@router.handler(public=True, reply=False)
async def forget_vote(msg: ForgetVote) -> None:
    return None


@router.handler(public=True, timeout=2)
async def odd(msg: OddName) -> None:
    return None


polls = Topic("poll.{pk:int}", permission=None, pushes=[VoteCountedPush], registry=topic_registry)
rooms = Topic("room.{name}.live", registry=topic_registry)


def sample_contract(**settings: object) -> Contract:
    return build_contract(
        {spec.name: spec for spec in router},
        EnvelopeSettings(**settings),  # type: ignore[arg-type]
        path="/ws/",
        title="Sample",
        version="1.2.3",
        declared_topics=topic_registry,
        routers=[router],
        registry=registry,
    )
