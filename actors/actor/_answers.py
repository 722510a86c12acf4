"""The one writer of what became of a request: its reply, `envelope.handled`, the end of
its OpenTelemetry span (when the consumer has spans), the counters.

Stages, backends and the tasks a request is handed to never write a terminal reply
themselves; they return (or leave in `ctx.outcome`) an outcome, or raise a `Failure`,
and `answer` writes it (see `actors.request._outcome` for the cases).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors.actor._outbound import SlowReaderGuard
from actors.request import Later, Queued, RequestContext
from actors.tracing import handled_recorder, handled_writer
from envelope import Failure, ProtocolError, State, encode, new_trace_id

_SUCCESS = State.SUCCESS
_FAILED = State.FAILED
_QUEUED = State.QUEUED
_perf = time.perf_counter
_perf_ns = time.perf_counter_ns


class OutcomeWriter(SlowReaderGuard):
    """The answering side of `ConnectionActor` (its state: `ActorState`)."""

    __slots__ = ()

    start_soon: Callable[..., None]

    async def answer(self, ctx: RequestContext, outcome: Any = None) -> None:
        """Write what became of `ctx`: None - the handler's result, `s` (nothing for a
        `reply=False` handler); a `Failure` - `f`; `Queued` - `q` (unless the handler is
        `reply=False`); `Later` - its `first` state if any, then its task is started,
        which answers when it ends. Every outcome but `Later` is counted and logged once
        as `envelope.handled`."""
        env = ctx.envelope
        if outcome is None:
            spec = ctx.spec
            if spec is not None and spec.reply:
                await self.send_text(encode(env.t, env.i, ctx.result, _SUCCESS))
            self._handled(ctx, _SUCCESS)
        elif isinstance(outcome, Failure):
            # Under the request's `t` and `i` when they are known; else what could be read
            # of a malformed frame; else `error` and a new `i`.
            if env is not None:
                t, i = env.t, env.i
            elif isinstance(outcome, ProtocolError):
                t, i = outcome.t or "error", outcome.i or new_trace_id()
            else:
                t, i = "error", new_trace_id()
            await self.send_text(encode(t, i, outcome.payload(), _FAILED))
            self.failed_count += 1
            self._handled(ctx, _FAILED, outcome.code, t=t, i=i)
        elif type(outcome) is Queued:
            if outcome.reply:
                await self.send_text(encode(env.t, env.i, None, _QUEUED))
            self._handled(ctx, _QUEUED)
        elif type(outcome) is Later:
            if outcome.first is not None:
                await self.send_text(encode(env.t, env.i, None, outcome.first))
            if outcome.then is not None:
                self.start_soon(outcome.then)
        else:
            raise TypeError(f"not an outcome: {outcome!r}")

    def unanswered(self, ctx: RequestContext) -> None:
        """`ctx` was cancelled before it could be answered (its connection closed): its
        span, if it has one, ends with the code `cancelled`."""
        otel = self._otel
        if otel is not None:
            env = ctx.envelope
            t, i = (env.t, env.i) if env is not None else (None, None)
            otel.end(ctx, None, "cancelled", t, i, self._timer.timings(ctx))

    def _handled(
        self,
        ctx: RequestContext,
        state: State,
        code: str | None = None,
        *,
        t: str | None = None,
        i: str | None = None,
    ) -> None:
        self.handled_count += 1
        metrics = self._metrics
        otel = self._otel
        if not self._log_info and otel is None:
            if metrics is not None:
                metrics.handled(ctx, state, code, _perf() - ctx.started)
            return
        env = ctx.envelope
        if env is not None:
            t, i = env.t, env.i
        timer = self._timer
        now = _perf_ns()
        marks = ctx.timings
        if otel is None and marks is not None and not timer.debug:
            # Logged as a record (`handled_recorder`): the line is made from it later,
            # by the trace log's writer process when it has one.
            record = self._record
            if record is False:
                record = self._record = handled_recorder()
            if metrics is not None:  # the line's `duration_us`, in seconds
                metrics.handled(ctx, state, code, (now - marks[0]) // 1000 * 1e-6)
                metrics = None
            if record is not None and record(
                self.address, self._log_user, i, t, state, code, marks, timer.names, now
            ):
                return
        timings = timer.timings(ctx, now)
        if metrics is not None:  # the same clock read: the envelope's µs, in seconds
            metrics.handled(ctx, state, code, timings[0] * 1e-6)
        if otel is not None:
            otel.end(ctx, state, code, t, i, timings)
        if not self._log_info:
            return
        write = self._info
        if write is None:
            write = self._info = handled_writer()
        duration, stages = timings
        write(self.address, self._log_user, i, t, state, code, duration, stages)
