"""The example's handlers, in their own router (served by `example.routing`)."""

from __future__ import annotations

from typing import Any

import anyio

from actors import Topic
from envelope import TopicsUnavailable
from example.messages import (
    ChatMessage,
    ChatSend,
    Divide,
    Echo,
    Echoed,
    Ping,
    Pong,
    Quotient,
    ReportBuild,
    ReportBuilt,
    ReportProgress,
    Sleep,
    Slept,
)
from handlers import Context, JobContext, Router, authenticated

router = Router("example")


async def member_name(user: Any) -> dict[str, str]:
    """What a room's presence shows of a logged-in member."""
    return {"name": user.get_username()}


#: Chat rooms: any connection, logged in or not, may subscribe to `room.<name>`;
#: subscribers receive `chat.message` pushes.
rooms = Topic("room.{name}", permission=None, pushes=[ChatMessage])

#: Who is here: any connection may subscribe to `lobby.<name>` and see its logged-in
#: members (`presence.list`, `presence.diff`, `client.presence()` in JavaScript).
lobbies = Topic("lobby.{name}", permission=None, presence=True, presence_info=member_name)

#: `report.build` writes its rows in batches of this many, with a progress update each.
REPORT_BATCH = 1000


@router.handler
async def ping(msg: Ping) -> Pong:
    return Pong()


@router.handler
async def echo(msg: Echo) -> Echoed:
    return Echoed(text=msg.text)


# Publishing needs the channel layer: declared, so the contract lists its code.
@router.handler(errors=[TopicsUnavailable])
async def send_chat(msg: ChatSend, ctx: Context) -> None:
    user = ctx.user
    author = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    await ctx.publish(f"room.{msg.room}", ChatMessage(room=msg.room, text=msg.text, author=author))


@router.handler
async def divide(msg: Divide) -> Quotient:
    # b = 0 raises ZeroDivisionError on purpose: the client gets `f` / `internal`
    # and the traceback is in the trace log under the request's `i`.
    return Quotient(result=msg.a / msg.b)


@router.handler(concurrent=True)
async def sleep(msg: Sleep) -> Slept:
    await anyio.sleep(msg.seconds)
    return Slept(seconds=msg.seconds)


@router.handler(permission=authenticated, progress=ReportProgress)
def build_report(msg: ReportBuild, ctx: JobContext) -> ReportBuilt:
    """Deferred (a plain `def`): runs on a worker, inside a transaction."""
    from example.models import Report, ReportRow

    report = Report.objects.create(owner=ctx.user, rows=msg.rows)
    for start in range(0, msg.rows, REPORT_BATCH):
        stop = min(start + REPORT_BATCH, msg.rows)
        ReportRow.objects.bulk_create(
            ReportRow(report=report, n=n, square=n * n) for n in range(start + 1, stop + 1)
        )
        ctx.progress(ReportProgress(done=stop, total=msg.rows))
    return ReportBuilt(report_id=report.pk, rows=msg.rows)
