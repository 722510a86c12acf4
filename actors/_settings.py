"""`ENVELOPE_*` Django settings, read once per consumer (at `as_asgi()`), with defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

DEFAULT_PIPELINE = (
    "actors.stages.respond",
    "actors.stages.parse",
    "actors.stages.validate",
    "actors.stages.authorize",
    "actors.stages.dispatch",
)


def configured_queues() -> dict[str, Any]:
    """django-rq's `RQ_QUEUES` (queue name -> connection settings); empty when unset."""
    return dict(getattr(django_settings, "RQ_QUEUES", None) or {})


@dataclass(frozen=True, slots=True)
class EnvelopeSettings:
    """The settings a consumer runs with. Each field is `ENVELOPE_<FIELD NAME IN CAPS>`."""

    max_frame_bytes: int = 64 * 1024
    mailbox_size: int = 64
    max_concurrent: int = 8
    allow_unauthenticated: bool = False
    drain_seconds: float = 5.0
    default_timeout: float | None = None
    pipeline: tuple[str, ...] = DEFAULT_PIPELINE
    deferred: str | None = None  # "rq" or "thread"; None: "rq" when RQ_QUEUES is set
    thread_workers: int = 4  # the thread backend's pool size
    connections_queue: str | None = None  # None: no Connection rows
    timestamp_queue: str | None = None  # None: last_action is not kept fresh
    connection_update_interval: float = 180.0  # seconds between last_action updates
    builtin_routers: bool = True  # serve topic.subscribe / topic.leave / topic.list
    max_topics: int = 100  # subscriptions per connection (beyond: too_many_topics)
    max_deferred: int = 16  # deferred requests in flight per connection (beyond: too_many_jobs)
    check_origin: bool = True  # browsers' Origin must match ALLOWED_HOSTS / allowed_origins
    allowed_origins: tuple[str, ...] = ()  # more origins: ".example.com", "https://a.b:8443"
    # Seconds between re-checks of the user's session against the database, made before
    # the next frame: 0 before every frame, None only when Django signals say so.
    session_check_interval: float | None = 60.0
    max_outbound_bytes: int = 1024 * 1024  # unsent bytes a connection may hold (then 4008)
    send_timeout: float = 10.0  # seconds unsent data may wait without draining (then 4008)
    # Channel-layer operations (joins, leaves, publishes) of this process's connections
    # running at once: channels_redis opens a Redis connection for each and keeps it.
    layer_connections: int = 16
    layer_timeout: float = 2.0  # seconds per channel-layer operation
    queue_timeout: float = 2.0  # seconds to enqueue a deferred request on RQ
    fanout_redis: str | None = None  # the Redis of the topic fan-out; None: the layer's
    # How long a worker keeps trying to deliver a job's answer while Redis is away.
    answer_retry_seconds: float = 60.0
    # On a non-forking worker, how long a job's `r` may wait to go out with its terminal
    # reply in one message (0: as soon as the job starts).
    running_hold: float = 0.05
    # In a server process, move what start-up made (Django, the application, the
    # libraries) out of the cyclic garbage collector's reach when the first connection
    # arrives (`gc.freeze()` after a `gc.collect()`; docs/servers.md). Off by default:
    # it is a choice for the whole process.
    server_gc_freeze: bool = False
    # On a non-forking worker, move what start-up made (Django, the handlers, the
    # libraries) out of the cyclic garbage collector's reach once, before the first job
    # (`gc.freeze()`): a full collection then walks only what jobs made.
    worker_gc_freeze: bool = True
    # Prometheus metrics (actors.metrics): None counts when prometheus-client is
    # importable, False never, True insists. One registry per process.
    metrics: bool | None = None
    # Presence (`Topic(..., presence=True)`, see docs/topics.md#presence): seconds
    # between a server's heartbeats, after which a silent server's entries expire, and
    # over which join/leave diffs are batched; its Redis (None: the channel layer's) and
    # the prefix of its keys (None: the channel layer's prefix + ".presence").
    presence_heartbeat: float = 5.0
    presence_ttl: float = 15.0
    presence_window: float = 0.2
    presence_redis: str | None = None
    presence_prefix: str | None = None
    # OpenTelemetry spans when a tracer provider is configured (actors.tracing._otel).
    opentelemetry: bool = True

    @classmethod
    def from_django(cls, **overrides: Any) -> EnvelopeSettings:
        values: dict[str, Any] = {}
        for field in fields(cls):
            key = f"ENVELOPE_{field.name.upper()}"
            if hasattr(django_settings, key):
                values[field.name] = getattr(django_settings, key)
        values.update(overrides)
        for name in ("pipeline", "allowed_origins"):
            if name in values and not isinstance(values[name], str):
                values[name] = tuple(values[name])
        out = cls(**values)
        out.check()
        return out

    def check(self) -> None:
        for name in (
            "max_frame_bytes",
            "mailbox_size",
            "max_concurrent",
            "max_topics",
            "max_deferred",
            "max_outbound_bytes",
            "layer_connections",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ImproperlyConfigured(
                    f"ENVELOPE_{name.upper()} = {value!r}: it must be a whole number >= 1"
                )
        if not isinstance(self.send_timeout, int | float) or self.send_timeout <= 0:
            raise ImproperlyConfigured(
                f"ENVELOPE_SEND_TIMEOUT = {self.send_timeout!r}: it must be > 0 seconds"
            )
        for name in ("layer_timeout", "queue_timeout", "answer_retry_seconds"):
            if not getattr(self, name) > 0:
                raise ImproperlyConfigured(f"ENVELOPE_{name.upper()} must be > 0 seconds")
        for name in ("server_gc_freeze", "worker_gc_freeze"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ImproperlyConfigured(f"ENVELOPE_{name.upper()} = {value!r}: True or False")
        if not isinstance(self.running_hold, int | float) or not 0 <= self.running_hold <= 1:
            raise ImproperlyConfigured(
                f"ENVELOPE_RUNNING_HOLD = {self.running_hold!r}: seconds from 0 to 1"
            )
        if self.fanout_redis is not None and (
            not isinstance(self.fanout_redis, str)
            or not self.fanout_redis.startswith(("redis://", "rediss://", "unix://"))
        ):
            raise ImproperlyConfigured(
                f"ENVELOPE_FANOUT_REDIS = {self.fanout_redis!r}: a Redis URL such as "
                "'redis://127.0.0.1:6379/0', or None (the channel layer's first host)"
            )
        if not 0 < self.presence_heartbeat < self.presence_ttl:
            raise ImproperlyConfigured(
                f"ENVELOPE_PRESENCE_HEARTBEAT = {self.presence_heartbeat!r} and "
                f"ENVELOPE_PRESENCE_TTL = {self.presence_ttl!r}: the heartbeat must be > 0 "
                "seconds and shorter than the TTL (e.g. 5 and 15)"
            )
        if not self.presence_window > 0:
            raise ImproperlyConfigured("ENVELOPE_PRESENCE_WINDOW must be > 0 seconds")
        if self.drain_seconds < 0:
            raise ImproperlyConfigured("ENVELOPE_DRAIN_SECONDS must be >= 0")
        if self.default_timeout is not None and self.default_timeout <= 0:
            raise ImproperlyConfigured("ENVELOPE_DEFAULT_TIMEOUT must be None or > 0 seconds")
        if not isinstance(self.thread_workers, int) or self.thread_workers < 1:
            raise ImproperlyConfigured(
                f"ENVELOPE_THREAD_WORKERS = {self.thread_workers!r}: it must be a whole number >= 1"
            )
        if self.connection_update_interval <= 0:
            raise ImproperlyConfigured("ENVELOPE_CONNECTION_UPDATE_INTERVAL must be > 0 seconds")
        if not isinstance(self.allowed_origins, tuple) or not all(
            isinstance(origin, str) and origin for origin in self.allowed_origins
        ):
            raise ImproperlyConfigured(
                f"ENVELOPE_ALLOWED_ORIGINS = {self.allowed_origins!r}: give a list of origins "
                'or host patterns, e.g. ["https://app.example.com", ".example.com"]'
            )
        interval = self.session_check_interval
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0
        ):
            raise ImproperlyConfigured(
                f"ENVELOPE_SESSION_CHECK_INTERVAL = {interval!r}: seconds >= 0 (0: before "
                "every frame), or None (only when a signal says the user changed)"
            )
        if self.metrics is not None and not isinstance(self.metrics, bool):
            raise ImproperlyConfigured(
                f"ENVELOPE_METRICS = {self.metrics!r}: use True, False or leave it unset"
            )
        if self.deferred not in (None, "rq", "thread"):
            raise ImproperlyConfigured(
                f"ENVELOPE_DEFERRED = {self.deferred!r}: use 'rq', 'thread' or leave it unset"
            )


# The settings of `current_settings`, read once; emptied when an ENVELOPE_ setting changes.
_current: list[EnvelopeSettings] = []


def current_settings() -> EnvelopeSettings:
    """`EnvelopeSettings.from_django()`, read once per process, for code that runs once
    per job (reading the settings through Django's lazy settings object costs tens of
    microseconds, a few percent of a fast job). Read again after an `ENVELOPE_` setting
    changes (`override_settings`, pytest-django's `settings`)."""
    if not _current:
        _current.append(EnvelopeSettings.from_django())
    return _current[0]


def _forget_current(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("ENVELOPE_"):
        _current.clear()


setting_changed.connect(_forget_current, dispatch_uid="envelope-current-settings")
