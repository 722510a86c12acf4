"""Deferred handlers for the deferred-backend tests (thread pool and real RQ workers).

Module-level and importable, as a worker imports them by name. `Group` rows stand in
for application data, so the tests can see what was committed.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from pydantic import BaseModel

from actors.signals import connection_closed, connection_created
from envelope import Failure, message
from handlers import Context, JobContext, Router
from tests.processes import open_files

#: The RQ queue these handlers use; unique per test run (see tests/deferred_settings.py).
QUEUE = os.environ.get("ENVELOPE_TEST_QUEUE", "dtest")

jobs = Router("deferred-tests")


@message("dtest.add")
class Add(BaseModel):
    a: int
    b: int
    steps: int = 2


@message("dtest.sum")
class Sum(BaseModel):
    total: int


@message("dtest.progress")
class Step(BaseModel):
    done: int
    of: int


@jobs.handler(public=True, queue=QUEUE)
def add(msg: Add, ctx: JobContext) -> Sum:
    for done in range(1, msg.steps + 1):
        ctx.progress(Step(done=done, of=msg.steps))
    return Sum(total=msg.a + msg.b)


@message("dtest.declared_progress")
class DeclaredProgress(BaseModel):
    wrong: bool


@jobs.handler(public=True, queue=QUEUE, progress=Step)
def declared_progress(msg: DeclaredProgress, ctx: JobContext) -> None:
    # Sends a model other than its declared progress= when asked to: refused (job_failed).
    ctx.progress(Sum(total=0) if msg.wrong else Step(done=1, of=1))


@message("dtest.boom")
class Boom(BaseModel):
    pass


@jobs.handler(public=True, queue=QUEUE)
def boom(msg: Boom, ctx: JobContext) -> None:
    raise RuntimeError("secret internal detail: password=hunter2")


class Refused(Failure):
    code = "app.refused"
    message = "The app refused this."


@message("dtest.refuse")
class Refuse(BaseModel):
    why: str


@jobs.handler(public=True, queue=QUEUE)
def refuse(msg: Refuse, ctx: JobContext) -> None:
    raise Refused(reason=msg.why)


@message("dtest.write")
class Write(BaseModel):
    name: str
    fail: bool = False
    publish: bool = False


@message("dtest.written")
class Written(BaseModel):
    name: str


@jobs.handler(public=True, queue=QUEUE)
def write(msg: Write, ctx: JobContext) -> Written:
    """Creates a Group, pushes and publishes about it after commit, then maybe fails."""
    Group.objects.create(name=msg.name)
    ctx.send(Written(name=msg.name))
    if msg.publish:
        ctx.publish(f"dtest.{msg.name}", Written(name=msg.name))
    if msg.fail:
        raise Refused("Refused after writing.")
    return Written(name=msg.name)


@message("dtest.count")
class Count(BaseModel):
    prefix: str


@jobs.handler(public=True, queue=QUEUE)
def count(msg: Count, ctx: JobContext) -> Sum:
    return Sum(total=Group.objects.filter(name__startswith=msg.prefix).count())


def group_named_in_key_exists(msg: Guarded, ctx: JobContext) -> bool:
    """A permission that needs the database: allowed when a Group named `key` exists."""
    return Group.objects.filter(name=msg.key).exists()


@message("dtest.guarded")
class Guarded(BaseModel):
    key: str


@jobs.handler(public=True, queue=QUEUE, permission=group_named_in_key_exists)
def guarded(msg: Guarded, ctx: JobContext) -> Written:
    return Written(name=msg.key)


@message("dtest.sleep")
class Sleep(BaseModel):
    seconds: float
    name: str = ""


@message("dtest.pid")
class Pid(BaseModel):
    pid: int


def _sleep(msg: Sleep, ctx: JobContext) -> Written:
    ctx.progress(Pid(pid=os.getpid()))
    if msg.name:
        Group.objects.create(name=msg.name)
    time.sleep(msg.seconds)
    return Written(name=msg.name)


@jobs.handler(public=True, queue=QUEUE)
def sleep(msg: Sleep, ctx: JobContext) -> Written:
    return _sleep(msg, ctx)


@message("dtest.wait")
class Wait(BaseModel):
    path: str


@jobs.handler(public=True, queue=QUEUE)
def wait(msg: Wait, ctx: JobContext) -> Written:
    """Runs until the file `path` exists (30 s at most): a job as long as its test wants."""
    deadline = time.monotonic() + 30
    while not os.path.exists(msg.path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return Written(name=os.path.basename(msg.path))


@message("dtest.slow")
class Slow(BaseModel):
    seconds: float
    name: str = ""


@jobs.handler(public=True, queue=QUEUE, timeout=1)
def slow(msg: Slow, ctx: JobContext) -> Written:
    """Times out after 1 s; what it wrote is rolled back."""
    return _sleep(Sleep(seconds=msg.seconds, name=msg.name), ctx)


@message("dtest.late")
class Late(BaseModel):
    name: str


@jobs.handler(public=True, queue=QUEUE, start_timeout=0.5)
def late(msg: Late, ctx: JobContext) -> Written:
    Group.objects.create(name=msg.name)
    return Written(name=msg.name)


@message("dtest.flaky")
class Flaky(BaseModel):
    name: str


@jobs.handler(public=True, queue=QUEUE, retries=1)
def flaky(msg: Flaky, ctx: JobContext) -> Sum:
    """Fails on its first attempt (remembered outside the rolled-back transaction)."""
    marker = f"{msg.name}-attempted"
    if not _attempted(marker):
        raise RuntimeError("first attempt fails")
    return Sum(total=2)


def _attempted(marker: str) -> bool:
    # Recorded on a separate connection-independent path: a file, as the first attempt's
    # transaction is rolled back.
    path = os.path.join(os.environ.get("ENVELOPE_TEST_TMP", "/tmp"), marker)
    if os.path.exists(path):
        return True
    with open(path, "w") as f:
        f.write("1")
    return False


@message("dtest.whoami")
class WhoAmI(BaseModel):
    pass


@message("dtest.user")
class UserName(BaseModel):
    username: str
    authenticated: bool


@jobs.handler(public=True, queue=QUEUE)
def whoami(msg: WhoAmI, ctx: JobContext) -> UserName:
    user = ctx.user
    return UserName(username=user.get_username(), authenticated=user.is_authenticated)


@message("dtest.quiet")
class Quiet(BaseModel):
    fail: bool = False


@jobs.handler(public=True, queue=QUEUE, reply=False)
def quiet(msg: Quiet, ctx: JobContext) -> None:
    if msg.fail:
        raise Refused()


@message("dtest.echo")
class Echo(BaseModel):
    text: str


@jobs.handler(public=True)
async def echo(msg: Echo) -> Echo:
    return msg


def snapshot(msg: Count, ctx: JobContext) -> Sum:
    """A `target=` function (what a built-in like topic.subscribe runs on a worker)."""
    return Sum(total=Group.objects.filter(name__startswith=msg.prefix).count() + 1000)


# -- connection signals, recorded as Group rows on the worker ---------------------------


def _on_created(sender: object, connection: object, **kwargs: object) -> None:
    Group.objects.get_or_create(name=f"created:{connection.channel_name}"[:150])  # type: ignore[attr-defined]


def _on_closed(sender: object, connection: object, **kwargs: object) -> None:
    Group.objects.get_or_create(name=f"closed:{connection.channel_name}"[:150])  # type: ignore[attr-defined]


connection_created.connect(_on_created, dispatch_uid="dtest-created")
connection_closed.connect(_on_closed, dispatch_uid="dtest-closed")


@message("dtest.address")
class Address(BaseModel):
    pass


@message("dtest.address_is")
class AddressIs(BaseModel):
    address: str | None


@jobs.handler(public=True)
async def address(msg: Address, ctx: Context) -> AddressIs:
    return AddressIs(address=ctx.connection)


async def count_on_target(ctx: Any, call_next: Any) -> None:
    """A stage that hands `dtest.count` to `snapshot` (a target= function) on a worker."""
    if ctx.spec is not None and ctx.spec.name in TARGETS:
        ctx.outcome = await ctx.route.backend.submit(ctx, target=TARGETS[ctx.spec.name])
        return
    await call_next(ctx)


def not_a_model(msg: WhoAmI, ctx: JobContext) -> Any:
    return 42


TARGETS = {"dtest.count": snapshot, "dtest.whoami": not_a_model}

TARGET_PIPELINE = [
    "actors.stages.respond",
    "actors.stages.parse",
    "actors.stages.validate",
    count_on_target,
    "actors.stages.dispatch",
]


@message("dtest.kept")
class Kept(BaseModel):
    n: int


@jobs.handler(public=True, queue=QUEUE, result_ttl=30)
def kept(msg: Kept, ctx: JobContext) -> Sum:
    """Its result stays in Redis for 30 s (RQ's result TTL)."""
    return Sum(total=msg.n)


@message("dtest.join")
class Join(BaseModel):
    topic: str


@jobs.handler(public=True, queue=QUEUE)
def join(msg: Join, ctx: JobContext) -> Written:
    """Joins the connection to a topic after commit (JobContext.subscribe)."""
    ctx.subscribe(msg.topic)
    return Written(name=msg.topic)


@message("dtest.announce")
class Announce(BaseModel):
    topic: str
    count: int


@jobs.handler(public=True, queue=QUEUE)
def announce(msg: Announce, ctx: JobContext) -> Sum:
    """Publishes `count` pushes to a topic in one transaction (3+ become one batch)."""
    for n in range(msg.count):
        ctx.publish(msg.topic, Written(name=f"{msg.topic}#{n}"))
    return Sum(total=msg.count)


@message("dtest.language")
class Language(BaseModel):
    pass


@message("dtest.language_is")
class LanguageIs(BaseModel):
    code: str | None


@jobs.handler(queue=QUEUE, public=True)
def language(msg: Language, ctx: JobContext) -> LanguageIs:
    from django.utils import translation

    return LanguageIs(code=translation.get_language())


@message("dtest.db_files")
class DbFiles(BaseModel):
    pass


@message("dtest.db_files_are")
class DbFilesAre(BaseModel):
    open: int
    pid: int


@jobs.handler(queue=QUEUE, public=True)
def db_files(msg: DbFiles, ctx: JobContext) -> DbFilesAre:
    """How many connections to the database this worker process holds during a job."""
    Group.objects.exists()
    database = settings.DATABASES["default"]["NAME"]
    return DbFilesAre(open=open_files(os.getpid(), database), pid=os.getpid())


@message("dtest.mine")
class Mine(BaseModel):
    pass


class Owner(BaseModel):
    username: str


@jobs.handler(queue=QUEUE)
def mine(msg: Mine, ctx: JobContext) -> Owner:
    """Not public: only a logged-in user's request is enqueued."""
    return Owner(username=ctx.user.get_username())
