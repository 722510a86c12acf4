"""The pipeline as a consumer runs it: the stages, plus trace context and stage timings.

`build_traced_chain` folds the stages like `actors._pipeline.build_chain` (it is what
`ConsumerConfig` uses), and adds:

- right after `parse` (the first point where `i` is known), a step that binds `i` and
  `t` into structlog's contextvars for the rest of the envelope and resets them when
  it is done, so that any log line written while handling it - by a stage, a handler
  or a library - carries its trace id, and nothing leaks into the next envelope;
- when INFO is enabled for the library's logger at build time, each stage is timed
  (`ctx.timings`), so that `envelope.handled` carries `stages_us`, its exclusive time
  per stage in µs; with DEBUG enabled, each stage also logs `envelope.stage`.

With logging at WARNING, links are the plain untimed ones: the cost of tracing is the
contextvars bind and reset, measured by `benchmarks.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from structlog.contextvars import bind_contextvars, reset_contextvars

from actors import stages as _stages
from actors._context import RequestContext
from actors._logging import is_enabled, logger
from actors._pipeline import Chain, Stage, _end, link, load_stages

_perf = time.perf_counter


def _structlog_vars() -> tuple[ContextVar[Any], ContextVar[Any]]:
    """The very ContextVars `bind_contextvars(i=..., t=...)` sets, found through its
    public tokens: setting them directly costs a third of a `bind_contextvars` call."""
    tokens = bind_contextvars(i=None, t=None)
    reset_contextvars(**tokens)
    return tokens["i"].var, tokens["t"].var


_I_VAR, _T_VAR = _structlog_vars()


async def bind_trace(ctx: RequestContext, call_next: Chain) -> None:
    """Bind `i` and `t` of the envelope into structlog's contextvars while it is handled
    (as `bind_contextvars(i=..., t=...)` would), and unbind them after."""
    env = ctx.envelope
    i_token = _I_VAR.set(env.i)
    t_token = _T_VAR.set(env.t)
    try:
        await call_next(ctx)
    finally:
        _T_VAR.reset(t_token)
        _I_VAR.reset(i_token)


class _TimedLink:
    """A link that records when its stage started and ended into `ctx.timings`
    (`[start_0, end_0, start_1, end_1, ...]`, 0.0 until it happens)."""

    __slots__ = ("count", "debug", "index", "name", "next", "stage")

    def __init__(
        self, stage: Stage, next: Chain, index: int, count: int, name: str, debug: bool
    ) -> None:
        self.stage = stage
        self.next = next
        self.index = index
        self.count = count
        self.name = name
        self.debug = debug

    async def __call__(self, ctx: RequestContext) -> None:
        timings = ctx.timings
        if timings is None:
            timings = ctx.timings = [0.0] * (2 * self.count)
        slot = 2 * self.index
        timings[slot] = _perf()
        try:
            await self.stage(ctx, self.next)
        finally:
            timings[slot + 1] = _perf()
            if self.debug:
                env = ctx.envelope
                logger.debug(
                    "envelope.stage",
                    i=env.i if env is not None else None,
                    t=env.t if env is not None else None,
                    stage=self.name,
                    duration_us=round(_own(timings, self.index, self.count, 0.0) * 1e6, 1),
                )


def _own(timings: list[float], index: int, count: int, now: float) -> float:
    """Seconds stage `index` spent outside the stages it called (a stage still running
    counts until `now`)."""

    def span(k: int) -> float:
        start, end = timings[2 * k], timings[2 * k + 1]
        if not start:
            return 0.0
        return (end or now) - start

    inner = span(index + 1) if index + 1 < count else 0.0
    return max(0.0, span(index) - inner)


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
    """Fold the stages into one `chain(ctx)`, with `bind_trace` after `parse`.

    `timed=None` times the stages when the library's logger has INFO enabled now.
    """
    loaded = load_stages(pipeline)
    if timed is None:
        timed = is_enabled(logging.INFO)
    debug = timed and is_enabled(logging.DEBUG)
    names = tuple(stage_name(s) for s in loaded)
    position = loaded.index(_stages.parse) + 1
    chain: Chain = _end
    count = len(loaded)
    for index in range(count - 1, -1, -1):
        if index == position - 1:
            chain = link(bind_trace, chain)
        stage = loaded[index]
        if timed:
            chain = _TimedLink(stage, chain, index, count, names[index], debug)
        else:
            chain = link(stage, chain)
    return traced(chain, names, timed)


def stage_durations(ctx: RequestContext, chain: Any) -> dict[str, float] | None:
    """Exclusive µs per stage for `ctx` so far, or None when the chain was not timed.

    Called from `envelope.handled`, which runs inside the outermost stage (or, for a
    deferred request, inside `dispatch`): stages still running count until now. The
    outermost stage's share includes encoding and sending the reply.
    """
    timings = ctx.timings
    names = getattr(chain, "names", None)
    if timings is None or names is None:
        return None
    now = _perf()
    count = len(timings) // 2
    return {names[k]: round(_own(timings, k, count, now) * 1e6, 1) for k in range(count)}
