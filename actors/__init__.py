"""The runtime: connection actors, the pipeline, the Channels consumer, pushes, logging."""

from actors import _unshadowed  # noqa: F401  (first: see its docstring)
from actors._closing import (
    CLOSE_GOING_AWAY,
    CLOSE_LOGGED_OUT,
    CLOSE_NORMAL,
    CLOSE_RESTART,
    CLOSE_SESSION_ENDED,
    CLOSE_SLOW,
)
from actors._config import ConsumerConfig
from actors._consumer import EnvelopeConsumer, drain_connections
from actors._lifespan import EnvelopeLifespan
from actors._routing import refuse_unrouted, websocket_router
from actors._settings import DEFAULT_PIPELINE, EnvelopeSettings
from actors.actor import (
    ActorStatistics,
    ConnectionActor,
    Mailbox,
    MailboxClosed,
    MailboxFull,
    MailboxStatistics,
)
from actors.deferred import DeferredBackend
from actors.publishing import Topic, publish, publish_on_commit, tell, tell_on_commit
from actors.request import RequestContext
from actors.tracing import TraceLogSink, configure_logging, flush_trace_logs

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_LOGGED_OUT",
    "CLOSE_NORMAL",
    "CLOSE_RESTART",
    "CLOSE_SESSION_ENDED",
    "CLOSE_SLOW",
    "DEFAULT_PIPELINE",
    "ActorStatistics",
    "ConnectionActor",
    "ConsumerConfig",
    "DeferredBackend",
    "EnvelopeConsumer",
    "EnvelopeLifespan",
    "EnvelopeSettings",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "RequestContext",
    "Topic",
    "TraceLogSink",
    "configure_logging",
    "drain_connections",
    "flush_trace_logs",
    "publish",
    "publish_on_commit",
    "refuse_unrouted",
    "tell",
    "tell_on_commit",
    "websocket_router",
]
