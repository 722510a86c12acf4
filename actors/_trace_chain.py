"""The pipeline as a consumer runs it: the stages, plus trace context and stage timings.

`build_traced_chain` folds the stages like `actors._pipeline.build_chain` (it is what
`ConsumerConfig` uses), and adds:

- right after `parse` (the first point where `i` is known), a step that binds `i` and
  `t` into structlog's contextvars for the rest of the envelope and resets them when
  it is done, so that any log line written while handling it - by a stage, a handler
  or a library - carries its trace id, and nothing leaks into the next envelope;
- when INFO is enabled for the library's logger at build time, each stage notes when it
  starts (`ctx.timings`), so that `envelope.handled` carries `stages_us`, µs per stage
  (see `stage_durations`); with DEBUG enabled, each stage's time is also logged as an
  `envelope.stage` event.

With logging at WARNING, links are the plain untimed ones: the cost of tracing is the
contextvars bind and reset, measured by `benchmarks.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from actors._context import RequestContext
from actors._logging import is_enabled, logger
from actors._pipeline import Chain, Stage, _end, link, load_stages

_perf = time.perf_counter


def _marking_link(stage: Stage, next: Chain, index: int, count: int) -> Chain:
    """A link that notes when its stage starts into `ctx.timings` (a plain function, like
    `link`: no coroutine frame of its own, one clock read per stage)."""
    if index == 0:

        def first(ctx: RequestContext) -> Awaitable[None]:
            marks = ctx.timings = [0.0] * (count + 1)
            marks[0] = _perf()
            return stage(ctx, next)

        return first

    def call(ctx: RequestContext) -> Awaitable[None]:
        ctx.timings[index] = _perf()  # type: ignore[index]
        return stage(ctx, next)

    return call


def _marking_end(count: int) -> Chain:
    """The end of a timed chain: notes when the innermost stage called on."""

    async def end(ctx: RequestContext) -> None:
        ctx.timings[count] = _perf()  # type: ignore[index]

    return end


def stage_name(stage: Any) -> str:
    return str(getattr(stage, "__name__", None) or type(stage).__name__)


def traced(first: Chain, names: tuple[str, ...], timed: bool) -> Chain:
    """The outermost link, carrying the stage names that `ctx.timings` are indexed by and
    whether stages are timed (as attributes of the link itself: a wrapper object would
    cost a call per envelope)."""
    if not hasattr(first, "__dict__"):
        first = link(lambda ctx, call_next: call_next(ctx), first)
    first.names = names  # type: ignore[attr-defined]
    first.timed = timed  # type: ignore[attr-defined]
    return first


def build_traced_chain(pipeline: Iterable[str | Stage], *, timed: bool | None = None) -> Chain:
    """Fold the stages into one `chain(ctx)` (`parse` binds `i` and `t` for the rest).

    `timed=None` times the stages when the library's logger has INFO enabled now.
    """
    loaded = load_stages(pipeline)
    if timed is None:
        timed = is_enabled(logging.INFO)
    names = tuple(stage_name(s) for s in loaded)
    count = len(loaded)
    chain: Chain = _marking_end(count) if timed else _end
    for index in range(count - 1, -1, -1):
        stage = loaded[index]
        chain = _marking_link(stage, chain, index, count) if timed else link(stage, chain)
    chain = traced(chain, names, timed)
    chain.debug = timed and is_enabled(logging.DEBUG)  # type: ignore[attr-defined]
    return chain


def stage_durations(ctx: RequestContext, chain: Any) -> dict[str, int] | None:
    """Whole µs per stage for `ctx` so far, or None when the chain was not timed.

    Each stage is given the time from its start to the start of the next one (its work
    before it calls on). The time after the innermost stage called on - the handler's
    reply being encoded and sent, what the stages do on the way back - goes to the
    outermost stage (`respond`), and so does a `concurrent=True` handler's run, logged
    when it ends. When a stage did not call on (it raised, or handed the
    request to a worker and `envelope.handled` is logged from inside it), it is given
    the time until now. With DEBUG enabled, each stage's time is also logged as an
    `envelope.stage` event.
    """
    marks = ctx.timings
    names = getattr(chain, "names", None)
    if marks is None or names is None:
        return None
    now = _perf()
    count = len(names)
    out: dict[str, int] = {}
    previous = marks[0]
    k = 1
    while k <= count:
        mark = marks[k]
        if not mark:
            break
        out[names[k - 1]] = round((mark - previous) * 1e6)
        previous = mark
        k += 1
    tail = round((now - previous) * 1e6)
    if k > count:
        first = names[0]
        out[first] += tail
    else:
        out[names[k - 1]] = tail
        for j in range(k, count):
            out[names[j]] = 0
    if getattr(chain, "debug", False):
        env = ctx.envelope
        for name, us in out.items():
            logger.debug(
                "envelope.stage",
                i=env.i if env is not None else None,
                t=env.t if env is not None else None,
                stage=name,
                duration_us=us,
            )
    return out
