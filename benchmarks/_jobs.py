"""The deferred handler of the `deferred` scenario (imported by the server and the worker)."""

from __future__ import annotations

import os

from pydantic import BaseModel

from envelope import message
from handlers import JobContext, Router

jobs = Router("bench-deferred")


@message("bench.work")
class Work(BaseModel):
    n: int


@message("bench.worked")
class Worked(BaseModel):
    n: int


@jobs.handler(public=True, queue=os.environ.get("BENCH_QUEUE", "bench"))
def work(msg: Work, ctx: JobContext) -> Worked:
    ctx.log.info("bench.work", n=msg.n)
    return Worked(n=msg.n + 1)
