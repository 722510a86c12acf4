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
from actors.tracing import is_enabled, logger

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
        names = self.names
        if not names:
            return {}
        out = {names[0]: (marks[1] - marks[0] + now - marks[-1]) // 1000}
        for k in range(1, len(names)):
            out[names[k]] = (marks[k + 1] - marks[k]) // 1000
        return out

    def timings(self, ctx: RequestContext) -> tuple[int, dict[str, int] | None]:
        """`(duration_us, stages_us)` of `ctx` so far: whole µs since the envelope arrived,
        and per stage (None when the chain is not timed).

        The time after the innermost stage called on - the handler's reply being encoded
        and sent, what the stages do on the way back - goes to the outermost stage
        (`respond`), and so does a `concurrent=True` handler's run, logged when it ends.
        When a stage did not call on (it raised, or the request was handed over from
        inside it), it is given the time until now.
        """
        marks = ctx.timings
        if marks is None:
            return round((_perf() - ctx.started) * 1e6), None
        now = _perf_ns()
        names = self.names
        if marks[-1] and len(names) == 5:  # the default pipeline, every stage called on:
            # `durations` unrolled here, a third cheaper than its loop and one call less
            a, b, c, d, e, f = marks
            n0, n1, n2, n3, n4 = names
            out = {
                n0: (b - a + now - f) // 1000,
                n1: (c - b) // 1000,
                n2: (d - c) // 1000,
                n3: (e - d) // 1000,
                n4: (f - e) // 1000,
            }
        elif marks[-1]:  # every stage called on
            out = self.durations(marks, now)
        else:
            out = {}
            previous = marks[0]
            stopped = False
            for name, mark in zip(self.names, marks[1:], strict=True):
                if stopped:
                    out[name] = 0
                elif mark:
                    out[name] = (mark - previous) // 1000
                    previous = mark
                else:
                    out[name] = (now - previous) // 1000
                    stopped = True
        if self.debug:
            _log_stages(ctx, out)
        # From the first mark (the chain's start, which follows the arrival at once): the
        # total is then the sum of the stages.
        return (now - marks[0]) // 1000, out


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
