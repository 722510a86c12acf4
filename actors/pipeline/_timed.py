"""The pipeline as a consumer runs it: the stages, plus trace context and stage timings.

`build_traced_chain` folds the stages like `actors.pipeline._fold.build_chain` (it is what
`ConsumerConfig` uses), and adds:

- right after `parse` (the first point where `i` is known), a step that binds `i` and
  `t` into structlog's contextvars for the rest of the envelope and resets them when
  it is done, so that any log line written while handling it - by a stage, a handler
  or a library - carries its trace id, and nothing leaks into the next envelope;
- when INFO is enabled for the library's logger at build time, each stage notes when it
  starts (`ctx.timings`), so that `envelope.handled` carries `stages_us`, µs per stage
  (see `envelope_timings`); with DEBUG enabled, each stage's time is also logged as an
  `envelope.stage` event.

With logging at WARNING, links are the plain untimed ones: the cost of tracing is the
contextvars bind and reset, measured by `benchmarks.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from actors.pipeline._fold import Chain, Stage, _end, link, load_stages
from actors.request._context import RequestContext
from actors.tracing._configure import is_enabled, logger

_perf = time.perf_counter
_perf_ns = time.perf_counter_ns  # integer marks: a duration is then one subtraction


def _marking_link(stage: Stage, next: Chain, index: int, count: int) -> Chain:
    """A link that notes when its stage starts into `ctx.timings` (a plain function, like
    `link`: no coroutine frame of its own, one clock read per stage)."""
    if index == 0:

        def first(ctx: RequestContext) -> Awaitable[None]:
            marks = ctx.timings = [0] * (count + 1)
            marks[0] = _perf_ns()
            return stage(ctx, next)

        return first

    def call(ctx: RequestContext) -> Awaitable[None]:
        ctx.timings[index] = _perf_ns()  # type: ignore[index]
        return stage(ctx, next)

    return call


def _marking_end(count: int) -> Chain:
    """The end of a timed chain: notes when the innermost stage called on."""

    async def end(ctx: RequestContext) -> None:
        ctx.timings[count] = _perf_ns()  # type: ignore[index]

    return end


def stage_name(stage: Any) -> str:
    return str(getattr(stage, "__name__", None) or type(stage).__name__)


def compile_durations(names: tuple[str, ...]) -> Callable[[list[int], int], dict[str, int]]:
    """`durations(marks, now)`: µs per stage when every stage called on, the time after
    the innermost one going to the outermost (see `envelope_timings`).

    It runs for every envelope logged at INFO, so it is written out for these stage
    names - one dict display, no loop - the way `collections.namedtuple` writes its
    methods: the loop took twice as long. The names are written as string literals
    (`repr`), never as code.
    """
    last = len(names)
    if not last:
        return lambda marks, now: {}
    items = [f"{names[0]!r}: (m1 - m0 + now - m{last}) // 1000"]
    items += [f"{names[k]!r}: (m{k + 1} - m{k}) // 1000" for k in range(1, last)]
    marks = ", ".join(f"m{k}" for k in range(last + 1))
    source = (
        f"def durations(marks, now):\n    {marks}, = marks\n    return {{{', '.join(items)}}}\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<stage durations {names}>", "exec"), namespace)
    return cast(Callable[[list[int], int], dict[str, int]], namespace["durations"])


def traced(first: Chain, names: tuple[str, ...], timed: bool) -> Chain:
    """The outermost link, carrying the stage names that `ctx.timings` are indexed by and
    whether stages are timed (as attributes of the link itself: a wrapper object would
    cost a call per envelope)."""
    if not hasattr(first, "__dict__"):
        first = link(lambda ctx, call_next: call_next(ctx), first)
    first.names = names  # type: ignore[attr-defined]
    first.timed = timed  # type: ignore[attr-defined]
    first.durations = compile_durations(names) if timed else None  # type: ignore[attr-defined]
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


def envelope_timings(ctx: RequestContext, chain: Any) -> tuple[int, dict[str, int] | None]:
    """`(duration_us, stages_us)` of `ctx` so far: whole µs since the envelope arrived,
    and per stage (None when the chain was not timed).

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
    if marks is None:
        return round((_perf() - ctx.started) * 1e6), None
    now = _perf_ns()
    if marks[-1]:  # every stage called on: the common case
        out = chain.durations(marks, now)
    else:
        out = {}
        previous = marks[0]
        stopped = False
        for name, mark in zip(chain.names, marks[1:], strict=True):
            if stopped:
                out[name] = 0
            elif mark:
                out[name] = (mark - previous) // 1000
                previous = mark
            else:
                out[name] = (now - previous) // 1000
                stopped = True
    if chain.debug:
        _log_stages(ctx, out)
    # From the first mark (the chain's start, which follows the arrival at once): the
    # total is then the sum of the stages.
    return (now - marks[0]) // 1000, out


def _log_stages(ctx: RequestContext, durations: dict[str, int]) -> None:
    env = ctx.envelope
    for name, us in durations.items():
        logger.debug(
            "envelope.stage",
            i=env.i if env is not None else None,
            t=env.t if env is not None else None,
            stage=name,
            duration_us=us,
        )
