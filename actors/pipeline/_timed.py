"""The pipeline as a consumer runs it: the stages, timed for the trace logs.

`build_traced_chain` folds the stages (`link`) and, when INFO is enabled for
the library's logger at build time, makes each link note when its stage starts
(`ctx.timings`), so that `envelope.handled` carries `stages_us`, µs per stage (see
`StageTimer.timings`); with DEBUG enabled, each stage's time is also logged as an
`envelope.stage` event. With logging at WARNING the links are the plain untimed ones.
(`parse` binds `i` and `t` for the log lines of the rest of the envelope.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from actors.pipeline._fold import Chain, Stage, _end, link, load_stages
from actors.request import RequestContext
from actors.tracing import is_enabled, logger, stage_durations

_perf = time.perf_counter
_perf_ns = time.perf_counter_ns  # integer marks: a duration is then one subtraction


@dataclass(frozen=True, slots=True)
class StageTimer:
    """What the timed chain of a consumer notes, and how to read it: the stage names that
    `ctx.timings` are indexed by, whether the stages are timed, and whether each stage's
    time is also logged at DEBUG."""

    names: tuple[str, ...] = ()
    timed: bool = False
    debug: bool = False

    def durations(self, marks: list[int], now: int) -> dict[str, int]:
        """µs per stage when every stage called on: each stage gets the time from its
        start to the next one's; the time after the innermost one goes to the outermost."""
        return stage_durations(self.names, marks, now)[1]

    def timings(
        self, ctx: RequestContext, now: int | None = None
    ) -> tuple[int, dict[str, int] | None]:
        """`(duration_us, stages_us)` of `ctx` until `now` (a `perf_counter_ns` reading;
        default: now): whole µs since the envelope arrived, and per stage (None when the
        chain is not timed). See `actors.tracing.stage_durations` for how the stages'
        times are told; the trace log's writer process uses the same function.
        """
        marks = ctx.timings
        if marks is None:
            return round((_perf() - ctx.started) * 1e6), None
        if now is None:
            now = _perf_ns()
        # From the first mark (the chain's start, which follows the arrival at once): the
        # total is then the sum of the stages.
        timings = stage_durations(self.names, marks, now)
        if self.debug:
            _log_stages(ctx, timings[1])
        return timings


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


def build_traced_chain(
    pipeline: Iterable[str | Stage], *, timed: bool | None = None
) -> tuple[Chain, StageTimer]:
    """Fold the stages into one `chain(ctx)`, and the `StageTimer` that reads its marks.

    `timed=None` times the stages when the library's logger has INFO enabled now.
    """
    loaded = load_stages(pipeline)
    if timed is None:
        timed = is_enabled(logging.INFO)
    count = len(loaded)
    chain: Chain = _marking_end(count) if timed else _end
    for index in range(count - 1, -1, -1):
        stage = loaded[index]
        chain = _marking_link(stage, chain, index, count) if timed else link(stage, chain)
    timer = StageTimer(
        tuple(stage_name(s) for s in loaded), timed, timed and is_enabled(logging.DEBUG)
    )
    return chain, timer


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
