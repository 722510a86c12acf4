"""OpenTelemetry spans: one per envelope, one per deferred job, one per publish.

Only `opentelemetry-api` is used (the `otel` extra); the application installs and
configures the SDK and its exporters. Spans are made only when the API is installed, a
real tracer provider is set (the API's default is a proxy that records nothing) and
`ENVELOPE_OPENTELEMETRY` is not False:

- a consumer decides once, when it is built (`request_spans`): without a provider its
  chain and its writer of answers hold no OpenTelemetry call at all;
- a worker decides per job, and a publish per publish (`tracer()`: a comparison when the
  API is not installed, a provider lookup when no provider is set).

Spans (see docs/observability.md for the attributes):

    <t>              SERVER    one envelope, from the chain's start to its terminal answer
                               (or its `q`); the handler's own spans nest inside it
    job <t>          CONSUMER  a deferred request on a worker (RQ or thread), a child of
                               the envelope's span through the W3C `traceparent` carried
                               in the job; its `r`/`s`/`f` are `envelope.state` events
    publish <t>      PRODUCER  one push (`ctx.publish`, `publish`, `tell`, on-commit), a
                               child of the span active when it is sent, with a link to
                               the span that published it (for an on-commit push, the
                               span active when `publish_on_commit` was called)
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from django.conf import settings as django_settings

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # the `otel` extra is not installed: no spans, at no cost
    trace = None  # type: ignore[assignment]

SETTING = "ENVELOPE_OPENTELEMETRY"
#: The instrumentation scope of every span the library makes.
SCOPE = "envelope-router"
#: The key of the trace context (a W3C `traceparent` carrier) in a job request.
CARRIER_KEY = "otel"

_cached: tuple[Any, Any] = (None, None)  # (provider, its tracer)


def tracer(enabled: bool | None = None) -> Any:
    """The library's tracer when spans are wanted, else None: the API installed, a real
    tracer provider set, and `enabled` (None: the `ENVELOPE_OPENTELEMETRY` setting)."""
    global _cached
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    if enabled is None:
        enabled = bool(getattr(django_settings, SETTING, True))
    if not enabled:
        return None
    cached_provider, cached_tracer = _cached
    if cached_provider is provider:
        return cached_tracer
    found = provider.get_tracer(SCOPE)
    _cached = (provider, found)
    return found


# -- one span per envelope -------------------------------------------------------------


class RequestSpans:
    """The spans of one consumer's envelopes (made by `request_spans` only when a tracer
    is configured). `wrap` puts the chain inside the envelope's span, current while the
    chain runs (tasks it starts - concurrent handlers, deferred hand-offs - copy it);
    `end` is called by the one writer of terminal answers."""

    __slots__ = ("tracer",)

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    def wrap(self, chain: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        start_span = self.tracer.start_span
        server = trace.SpanKind.SERVER
        in_context = trace.set_span_in_context
        attach, detach = otel_context.attach, otel_context.detach

        async def traced(ctx: Any) -> None:
            actor = ctx.actor
            # Named by its `t` when answered (unknown before `parse`).
            span = ctx.span = start_span("envelope", kind=server, attributes=_who(actor))
            token = attach(in_context(span))
            try:
                await chain(ctx)
            finally:
                detach(token)

        return traced

    @staticmethod
    def end(
        ctx: Any,
        state: Any,
        code: str | None,
        t: str | None,
        i: str | None,
        timings: tuple[int, dict[str, int] | None],
    ) -> None:
        """The envelope was answered (`s`, `f`, or `q` when handed to a worker); or, with
        `state` None, cancelled unanswered."""
        span = ctx.span
        if not span.is_recording():  # not sampled
            span.end()
            return
        stages = timings[1]
        span.update_name(t or "error")
        # (The span's own start and end give the whole duration.)
        attributes: dict[str, Any] = {"envelope.i": i or ""}
        if state is not None:
            attributes["envelope.state"] = str(state)
        if code is not None:
            attributes["envelope.code"] = code
        if stages:
            for name, us in stages.items():
                attributes[f"envelope.stage.{name}_us"] = us
        span.set_attributes(attributes)
        span.end()


def request_spans(enabled: bool) -> RequestSpans | None:
    """What a consumer traces its envelopes with; None (no span, no OpenTelemetry call
    on its path) without a configured tracer provider or with `enabled` False."""
    found = tracer(enabled)
    return RequestSpans(found) if found is not None else None


def _who(actor: Any) -> dict[str, Any]:
    # The connection's channel name and the user's pk: never a name or an address of a
    # person.
    out: dict[str, Any] = {}
    if actor.address is not None:
        out["envelope.connection"] = actor.address
    user = getattr(actor, "_log_user", None)
    if user is not None:
        out["envelope.user"] = str(user)
    return out


def note_exception(ctx: Any, exc: BaseException) -> None:
    """An unexpected exception answered `internal`: recorded on the envelope's span, whose
    status becomes ERROR (nothing when the envelope has no span)."""
    span = getattr(ctx, "span", None)
    if span is not None:
        _failed(span, exc)


def _failed(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))


# -- deferred jobs -----------------------------------------------------------------------


def trace_carrier(ctx: Any) -> dict[str, str] | None:
    """The W3C trace context of `ctx`'s envelope span, for its job request (None when the
    envelope has no span)."""
    span = getattr(ctx, "span", None)
    if span is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


class JobSpan:
    """The span of one job on a worker: the job's replies are events on it, and its
    terminal reply sets `envelope.state` and `envelope.code`."""

    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def failed(self, exc: BaseException) -> None:
        """The job raised (answered `job_failed`): status ERROR, the exception recorded."""
        _failed(self.span, exc)

    def reply(self, state: Any, payload: Any) -> None:
        span = self.span
        span.add_event("envelope.state", {"envelope.state": str(state)})
        if state.terminal:
            span.set_attribute("envelope.state", str(state))
            if isinstance(payload, dict) and "code" in payload:
                span.set_attribute("envelope.code", str(payload["code"]))


@contextlib.contextmanager
def job_span(req: dict[str, Any]) -> Iterator[JobSpan | None]:
    """Run a job request inside its span, current meanwhile: a child of the envelope's
    span when the request carries its trace context (a root span otherwise)."""
    found = tracer()
    if found is None:
        yield None
        return
    carrier = req.get(CARRIER_KEY)
    parent = propagate.extract(carrier) if carrier else None
    attributes: dict[str, Any] = {"envelope.i": req.get("i") or ""}
    for key, name in (("job", "envelope.job"), ("queue", "envelope.queue")):
        if req.get(key) is not None:
            attributes[name] = str(req[key])
    if req.get("conn") is not None:
        attributes["envelope.connection"] = req["conn"]
    if req.get("user") is not None:
        attributes["envelope.user"] = str(req["user"])
    span = found.start_span(
        f"job {req.get('t')}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield JobSpan(span)
    except BaseException as exc:
        _failed(span, exc)
        raise
    finally:
        otel_context.detach(token)
        span.end()


def flush_spans(timeout_millis: int = 5000) -> None:
    """Export the spans the tracer provider still holds (a forked work horse exits with
    `os._exit` right after its job: a batch processor's queue would be lost)."""
    if trace is None:
        return
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        flush(timeout_millis)


# -- publishing ---------------------------------------------------------------------------


def current_span_context() -> Any:
    """The span context active now, to link a push sent later to (None without spans)."""
    if tracer() is None:
        return None
    found = trace.get_current_span().get_span_context()
    return found if found.is_valid else None


@contextlib.contextmanager
def publish_span(
    t: str, *, topic: str | None = None, to: str | None = None, i: str | None = None
) -> Iterator[None]:
    """One push sent now: its span, linked to the span publishing it."""
    with publish_spans([(t, topic, to, i, current_span_context())]):
        yield


@contextlib.contextmanager
def publish_spans(
    pushes: Iterable[tuple[str, str | None, str | None, str | None, Any]],
) -> Iterator[None]:
    """A span per push `(t, topic, to, i, origin)` around their sending; each links to
    its `origin` (a span context, or None)."""
    found = tracer()
    if found is None:
        yield
        return
    spans = []
    for t, topic, to, i, origin in pushes:
        attributes: dict[str, Any] = {"envelope.push.type": t}
        if topic is not None:
            attributes["envelope.topic"] = topic
        if to is not None:
            attributes["envelope.to"] = to
        if i is not None:
            attributes["envelope.i"] = i
        links = [trace.Link(origin)] if origin is not None else None
        spans.append(
            found.start_span(
                f"publish {t}", kind=trace.SpanKind.PRODUCER, attributes=attributes, links=links
            )
        )
    try:
        yield
    except BaseException as exc:
        for span in spans:
            _failed(span, exc)
        raise
    finally:
        for span in spans:
            span.end()
