"""The deferred handlers of the `deferred` scenario (imported by the server and the worker).

The same work twice, on two queues: `bench.work` on `BENCH_QUEUE` and
`bench.work_forking` on `BENCH_QUEUE`-forking, so that both worker classes can stay
running side by side, each on its own queue, while the scenario alternates bursts
between them (an idle worker only waits on Redis).
"""

from __future__ import annotations

import os

from pydantic import BaseModel

from envelope import message
from handlers import JobContext, Router

QUEUE = os.environ.get("BENCH_QUEUE", "bench")
FORKING_QUEUE = f"{QUEUE}-forking"

jobs = Router("bench-deferred")


@message("bench.work")
class Work(BaseModel):
    n: int


@message("bench.work_forking")
class WorkForking(BaseModel):
    n: int


@message("bench.worked")
class Worked(BaseModel):
    n: int


@jobs.handler(public=True, queue=QUEUE)
def work(msg: Work, ctx: JobContext) -> Worked:
    ctx.log.info("bench.work", n=msg.n)
    return Worked(n=msg.n + 1)


@jobs.handler(public=True, queue=FORKING_QUEUE)
def work_forking(msg: WorkForking, ctx: JobContext) -> Worked:
    ctx.log.info("bench.work", n=msg.n)
    return Worked(n=msg.n + 1)
