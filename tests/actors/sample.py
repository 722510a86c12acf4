"""A router exercising every core behaviour, shared by the actor and consumer tests."""

from __future__ import annotations

import anyio
from pydantic import BaseModel, Field

from envelope import Failure, message
from handlers import Context, Router, authenticated

router = Router("sample")
events: list[str] = []


class VoteClosed(Failure):
    code = "vote_closed"
    message = "Voting has ended for this poll."


@message("t.echo")
class Echo(BaseModel):
    text: str = Field(max_length=1000)


class EchoReply(BaseModel):
    text: str


@router.handler(public=True)
async def echo(msg: Echo) -> EchoReply:
    return EchoReply(text=msg.text)


@message("t.ping")
class Ping(BaseModel):
    pass


class Pong(BaseModel):
    pong: bool = True


@router.handler(public=True)
async def ping(ctx: Context, msg: Ping) -> Pong:
    return Pong()


@message("t.sleep")
class Sleep(BaseModel):
    seconds: float
    tag: str = ""


class Slept(BaseModel):
    tag: str


@router.handler
async def sleep(msg: Sleep) -> Slept:
    events.append(f"start:{msg.tag}")
    await anyio.sleep(msg.seconds)
    events.append(f"end:{msg.tag}")
    return Slept(tag=msg.tag)


@message("t.sleep.concurrent")
class SleepConcurrent(Sleep):
    pass


@router.handler(concurrent=True)
async def sleep_concurrent(msg: SleepConcurrent) -> Slept:
    events.append(f"start:{msg.tag}")
    await anyio.sleep(msg.seconds)
    events.append(f"end:{msg.tag}")
    return Slept(tag=msg.tag)


@message("t.sleep.ack")
class SleepAck(Sleep):
    pass


@router.handler(ack=True)
async def sleep_ack(msg: SleepAck) -> Slept:
    await anyio.sleep(msg.seconds)
    return Slept(tag=msg.tag)


@message("t.timeout")
class TooSlow(BaseModel):
    seconds: float = 5.0


@router.handler(timeout=0.05)
async def too_slow(msg: TooSlow) -> None:
    await anyio.sleep(msg.seconds)


@message("t.boom")
class Boom(BaseModel):
    secret: str = "hunter2"


@router.handler
async def boom(msg: Boom) -> None:
    raise RuntimeError(f"database password is {msg.secret}")


@message("t.vote")
class Vote(BaseModel):
    poll: int


@router.handler
async def vote(msg: Vote) -> None:
    raise VoteClosed(poll=msg.poll)


@message("t.private")
class Private(BaseModel):
    pass


@router.handler(permission=authenticated)
async def private(msg: Private) -> None:
    return None


@message("t.deny")
class Deny(BaseModel):
    pass


async def never(msg: Deny, ctx: Context) -> bool:
    return False


@router.handler(permission=never, public=True)
async def deny(msg: Deny) -> None:
    return None


@message("t.rated")
class Rated(BaseModel):
    pass


@router.handler(rate="2/10s", public=True)
async def rated(msg: Rated) -> None:
    return None


@message("t.silent")
class Silent(BaseModel):
    fail: bool = False


@router.handler(reply=False, public=True)
async def silent(msg: Silent) -> None:
    if msg.fail:
        raise VoteClosed()


@message("t.push")
class PushMe(BaseModel):
    text: str


@message("t.pushed")
class Pushed(BaseModel):
    text: str


@router.handler(public=True)
async def push_me(msg: PushMe, ctx: Context) -> None:
    await ctx.send(Pushed(text=msg.text))


@message("t.progress")
class WithProgress(BaseModel):
    steps: int


class Step(BaseModel):
    done: int


@router.handler(public=True)
async def with_progress(msg: WithProgress, ctx: Context) -> Step:
    for n in range(msg.steps):
        await ctx.progress(Step(done=n))
    return Step(done=msg.steps)


@message("t.wrong_return")
class WrongReturn(BaseModel):
    as_dict: bool = False


@router.handler(public=True)
async def wrong_return(msg: WrongReturn) -> EchoReply:
    if msg.as_dict:
        return {"text": "from a dict"}  # type: ignore[return-value]
    return Pong()  # type: ignore[return-value]


@message("t.hang")
class Hang(BaseModel):
    pass


@router.handler(public=True)
async def hang(msg: Hang) -> None:
    events.append("hang:start")
    try:
        await anyio.sleep(60)
    except anyio.get_cancelled_exc_class():
        events.append("hang:cancelled")
        raise


@message("t.lang")
class Lang(BaseModel):
    pass


class LangReply(BaseModel):
    language: str | None


@router.handler(public=True)
async def lang(msg: Lang) -> LangReply:
    from django.utils.translation import get_language

    return LangReply(language=get_language())
