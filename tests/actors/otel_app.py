"""Handlers for the OpenTelemetry tests: each makes a span of its own (what an
application's instrumented code does), so that the tests can see where it nests.

Module-level and importable: an RQ worker imports the deferred one by name.
"""

from __future__ import annotations

import uuid

import anyio
from opentelemetry import trace
from pydantic import BaseModel

from actors.publishing import publish_on_commit
from envelope import Forbidden, message
from handlers import Context, JobContext, Router

#: A queue of this test run's own (the RQ test starts its worker on it).
QUEUE = f"otel-{uuid.uuid4().hex[:10]}"

router = Router("otel-tests")


def _tracer() -> trace.Tracer:
    return trace.get_tracer("tests.otel_app")


@message("otel.echo")
class Echo(BaseModel):
    text: str


@message("otel.note")
class Note(BaseModel):
    text: str


@message("otel.crash")
class Crash(BaseModel):
    pass


@message("otel.deny")
class Deny(BaseModel):
    pass


@message("otel.job")
class Job(BaseModel):
    text: str
    fail: bool = False


@router.handler(public=True)
async def echo(msg: Echo) -> Echo:
    with _tracer().start_as_current_span("otel.echo.work"):
        return Echo(text=msg.text)


@message("otel.slow_echo")
class SlowEcho(BaseModel):
    text: str


@router.handler(public=True, concurrent=True)
async def slow_echo(msg: SlowEcho) -> Echo:
    with _tracer().start_as_current_span("otel.slow_echo.work"):
        await anyio.sleep(0.01)  # the mailbox moves on meanwhile
        return Echo(text=msg.text)


@router.handler(public=True)
async def crash(msg: Crash) -> None:
    raise RuntimeError("hunter2: never on the wire")


@router.handler(public=True)
async def deny(msg: Deny) -> None:
    raise Forbidden()


@message("otel.announce")
class Announce(BaseModel):
    text: str


@router.handler(public=True)
async def announce(msg: Announce, ctx: Context) -> None:
    await ctx.publish("otel.room", Note(text=msg.text))


@router.handler(public=True, queue=QUEUE)
def job(msg: Job, ctx: JobContext) -> Note:
    with _tracer().start_as_current_span("otel.job.work"):
        publish_on_commit("otel.room", Note(text=f"done: {msg.text}"))
        if msg.fail:
            raise RuntimeError("hunter2: never on the wire")
        return Note(text=msg.text.upper())


@message("otel.wait")
class Wait(BaseModel):
    pass


@router.handler(public=True, concurrent=True)
async def wait(msg: Wait) -> None:
    await anyio.sleep_forever()  # until its connection closes
