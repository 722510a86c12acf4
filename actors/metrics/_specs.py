"""The library's metrics as data: names, help texts, labels and buckets, which both
recorders (`_memory`, `_files`) make theirs from, and the label of a request's type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNKNOWN_TYPE = "_unknown"  # a frame whose `t` no handler of the consumer serves
INVALID_TYPE = "_invalid"  # a frame with no readable envelope (bad_json, too_large, ...)
#: Seconds: a request that took at least this long carries its `i` as an exemplar of
#: `envelope_handler_duration_seconds` (OpenMetrics scrapes; fast ones pay nothing).
EXEMPLAR_SECONDS = 0.1

# Handlers in the actor take µs to ms; the top buckets catch hung ones.
# fmt: off
HANDLER_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
# Items waiting in a mailbox (default size 64) just after a frame was posted.
DEPTH_BUCKETS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
# A deferred job's wait in its queue and its run on a worker: ms to minutes.
JOB_BUCKETS = (1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
               300.0)
# fmt: on


@dataclass(frozen=True, slots=True)
class Spec:
    name: str  # a counter's without `_total`
    doc: str
    kind: str  # "counter", "gauge" or "histogram"
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


CONNECTIONS = Spec(
    "envelope_connections_open", "Websocket connections open (their actors running).", "gauge"
)
FRAMES = Spec(
    "envelope_frames",
    "Requests answered, by message type, state (s, f, q) and error code.",
    "counter",
    ("type", "state", "code"),
)
HANDLER_DURATION = Spec(
    "envelope_handler_duration_seconds",
    "From when the actor takes a frame to its reply (q for a deferred request), by type.",
    "histogram",
    ("type",),
    HANDLER_BUCKETS,
)
MAILBOX_DEPTH = Spec(
    "envelope_mailbox_depth",
    "Items waiting in the connection's mailbox just after a frame was posted.",
    "histogram",
    (),
    DEPTH_BUCKETS,
)
OVERLOADED = Spec(
    "envelope_overload_refusals",
    "Frames answered overloaded because their connection's mailbox was full.",
    "counter",
)
SLOW_CLOSES = Spec(
    "envelope_slow_reader_closes",
    "Connections closed with 4008 because the client did not read its frames.",
    "counter",
    ("cause",),
)
JOB_WAIT = Spec(
    "envelope_deferred_queue_wait_seconds",
    "From a deferred request's hand-off to a worker taking it.",
    "histogram",
    ("type", "queue"),
    JOB_BUCKETS,
)
JOB_RUN = Spec(
    "envelope_deferred_run_seconds",
    "A deferred handler's run on its worker, by outcome (s or f).",
    "histogram",
    ("type", "queue", "outcome"),
    JOB_BUCKETS,
)
DELIVERIES = Spec(
    "envelope_topic_deliveries",
    "Pushes (topic publishes and tells) that reached a connection, to be sent.",
    "counter",
)
SUBSCRIBERS = Spec(
    "envelope_topic_subscribers", "Topic subscriptions held by the open connections.", "gauge"
)
SPECS = (
    CONNECTIONS,
    FRAMES,
    HANDLER_DURATION,
    MAILBOX_DEPTH,
    OVERLOADED,
    SLOW_CLOSES,
    JOB_WAIT,
    JOB_RUN,
    DELIVERIES,
    SUBSCRIBERS,
)


def request_type(ctx: Any) -> str:
    """The `type` label of request `ctx` (an `actors.request.RequestContext`): its `t`
    when a handler serves it (`validate` found its route), else a fixed label."""
    if ctx.route is not None:
        return str(ctx.envelope.t)
    return UNKNOWN_TYPE if ctx.envelope is not None else INVALID_TYPE
