"""The runtime: connection actors, the pipeline, the Channels consumer, pushes, logging."""

from actors._closing import CLOSE_GOING_AWAY, CLOSE_LOGGED_OUT, CLOSE_NORMAL, CLOSE_RESTART
from actors._config import ConsumerConfig
from actors._consumer import EnvelopeConsumer, drain_connections
from actors._lifespan import EnvelopeLifespan
from actors._settings import DEFAULT_PIPELINE, EnvelopeSettings
from actors.actor._actor import ActorStatistics, ConnectionActor
from actors.actor._mailbox import Mailbox, MailboxClosed, MailboxFull, MailboxStatistics
from actors.deferred import DeferredBackend
from actors.pipeline._fold import build_chain
from actors.publishing._publish import publish, publish_on_commit, tell, tell_on_commit
from actors.publishing._topics import Topic
from actors.request._context import RequestContext
from actors.tracing._configure import configure_logging
from actors.tracing._sink import TraceLogSink, flush_trace_logs

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_LOGGED_OUT",
    "CLOSE_NORMAL",
    "CLOSE_RESTART",
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
    "build_chain",
    "configure_logging",
    "drain_connections",
    "flush_trace_logs",
    "publish",
    "publish_on_commit",
    "tell",
    "tell_on_commit",
]
