"""`ConsumerConfig`: what a consumer serves, computed once at `as_asgi()`."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from actors import _builtins, presence, topics
from actors._origins import OriginPolicy
from actors._settings import EnvelopeSettings
from actors.deferred import DeferredBackend, backend_from_settings
from actors.metrics import Metrics, recorder
from actors.pipeline import Chain, Stage, StageTimer, build_traced_chain
from actors.request import Route, Routing
from actors.tracing import RequestSpans, logger, request_spans
from handlers import HandlerSpec, Router, default_router

#: Every consumer configuration built in this process (for the system checks).
built: weakref.WeakSet[ConsumerConfig] = weakref.WeakSet()


@dataclass(slots=True, weakref_slot=True, eq=False)
class ConsumerConfig:
    """The handlers (`routes`: message name -> spec), the `routing` the stages use
    (message name -> `Route`, built here once), the folded pipeline, the settings and
    the deferred backend of one consumer."""

    routes: dict[str, HandlerSpec]
    chain: Chain
    settings: EnvelopeSettings
    routers: tuple[Router, ...]
    backend: DeferredBackend | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Reads the chain's stage timings for `envelope.handled`.
    timer: StageTimer = field(default_factory=StageTimer)
    routing: Routing = field(init=False)
    #: None when `ENVELOPE_CHECK_ORIGIN` is off.
    origins: OriginPolicy | None = None
    #: The message types it serves besides the built-in `topic.*` / `connection.*`.
    application_types: tuple[str, ...] = ()
    #: The envelopes' OpenTelemetry spans; None when no tracer provider is configured.
    otel: RequestSpans | None = None
    #: The process's Prometheus metrics; None when they are off.
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        settings = self.settings
        routes = {
            name: Route.of(
                spec,
                default_timeout=settings.default_timeout,
                allow_unauthenticated=settings.allow_unauthenticated,
                backend=self.backend,
            )
            for name, spec in self.routes.items()
        }
        self.routing = Routing(routes, settings.max_frame_bytes)

    @classmethod
    def build(
        cls,
        routers: Sequence[Router] | None = None,
        pipeline: Iterable[str | Stage] | None = None,
        backend: DeferredBackend | None = None,
        **setting_overrides: Any,
    ) -> ConsumerConfig:
        settings = EnvelopeSettings.from_django(**setting_overrides)
        routers = tuple(routers) if routers is not None else (default_router,)
        if settings.builtin_routers:
            routers = (*routers, *builtin_routers())
        routes = merge_routes(routers)
        otel = request_spans(settings.opentelemetry)
        chain, timer = build_traced_chain(
            pipeline if pipeline is not None else settings.pipeline,
            timed=True if otel is not None else None,  # spans carry the stage timings
        )
        if otel is not None:
            chain = otel.wrap(chain)
        if backend is None and any(spec.deferred for spec in routes.values()):
            backend = backend_from_settings(settings, routes)
        builtin = {spec.name for router in builtin_routers() for spec in router}
        config = cls(
            routes=routes,
            chain=chain,
            settings=settings,
            routers=routers,
            backend=backend,
            timer=timer,
            otel=otel,
            origins=OriginPolicy.from_settings(settings.check_origin, settings.allowed_origins),
            application_types=tuple(sorted(set(routes) - builtin)),
            metrics=recorder(settings.metrics),
        )
        built.add(config)
        # Which types a consumer serves is the first thing to know when a client is told
        # `unknown_type`: said once per consumer, when the server starts.
        logger.info(
            "consumer.serving",
            types=list(config.application_types),
            routers=[router.name for router in routers],
            origin_check=config.origins is not None,
            opentelemetry=otel is not None,
        )
        return config


def builtin_routers() -> tuple[Router, ...]:
    """The routers every consumer serves unless `ENVELOPE_BUILTIN_ROUTERS = False`:
    `topic.subscribe`, `topic.leave`, `topic.list` (`actors.topics.router`) and
    `connection.ping`, `connection.close` (`actors._builtins.router`), `presence.list`
    (`actors.presence.router`)."""
    return (topics.router, _builtins.router, presence.router)


def merge_routes(routers: Iterable[Router]) -> dict[str, HandlerSpec]:
    """One table of message name -> handler; two routers handling one name is an error."""
    routes: dict[str, HandlerSpec] = {}
    owner: dict[str, Router] = {}
    for router in routers:
        if not isinstance(router, Router):
            raise ImproperlyConfigured(f"routers=[...] takes Router objects, not {router!r}")
        for spec in router:
            if spec.name in routes and routes[spec.name] is not spec:
                raise ImproperlyConfigured(
                    f"message {spec.name!r} is handled by {routes[spec.name].qualname} "
                    f"(router {owner[spec.name].name!r}) and by {spec.qualname} "
                    f"(router {router.name!r}); a consumer serves one handler per message"
                )
            routes[spec.name] = spec
            owner[spec.name] = router
    return routes
