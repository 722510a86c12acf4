"""`ConsumerConfig`: what a consumer serves, computed once at `as_asgi()`."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from actors._context import RequestContext
from actors._logging import logger
from actors._origins import OriginPolicy
from actors._pipeline import Chain, Stage
from actors._settings import EnvelopeSettings
from actors._trace_chain import build_traced_chain
from handlers import HandlerSpec, Router, default_router


class DeferredBackend(Protocol):
    """Runs deferred (`def`) handlers off the event loop and reports their states.

    Implemented by `actors._rq.RQBackend` and `actors._thread_backend.ThreadBackend`.
    """

    async def submit(
        self,
        ctx: RequestContext,
        *,
        target: Callable[..., Any] | None = None,
        queue: str | None = None,
    ) -> None:
        """Enqueue the request; answer `q`. Raise a `Failure` if it cannot be enqueued.
        `target=` runs that module-level `fn(msg, job_ctx)` instead of the handler."""

    async def aenqueue_call(
        self, queue: str | None, fn: str | Callable[..., Any], *args: Any
    ) -> None:
        """Run `fn(*args)` on a worker, fire and forget (no replies)."""


#: Every consumer configuration built in this process (for the system checks).
built: weakref.WeakSet[ConsumerConfig] = weakref.WeakSet()


@dataclass(slots=True, weakref_slot=True, eq=False)
class ConsumerConfig:
    routes: dict[str, HandlerSpec]
    chain: Chain
    settings: EnvelopeSettings
    routers: tuple[Router, ...]
    backend: DeferredBackend | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: None when `ENVELOPE_CHECK_ORIGIN` is off.
    origins: OriginPolicy | None = None
    #: The message types it serves besides the built-in `topic.*` / `connection.*`.
    application_types: tuple[str, ...] = ()

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
        chain = build_traced_chain(pipeline if pipeline is not None else settings.pipeline)
        if backend is None and any(spec.deferred for spec in routes.values()):
            from actors._deferred import backend_from_settings

            backend = backend_from_settings(settings, routes)
        builtin = {spec.name for router in builtin_routers() for spec in router}
        config = cls(
            routes=routes,
            chain=chain,
            settings=settings,
            routers=routers,
            backend=backend,
            origins=OriginPolicy.from_settings(settings.check_origin, settings.allowed_origins),
            application_types=tuple(sorted(set(routes) - builtin)),
        )
        built.add(config)
        # Which types a consumer serves is the first thing to know when a client is told
        # `unknown_type`: said once per consumer, when the server starts.
        logger.info(
            "consumer.serving",
            types=list(config.application_types),
            routers=[router.name for router in routers],
            origin_check=config.origins is not None,
        )
        return config


def builtin_routers() -> tuple[Router, ...]:
    """The routers every consumer serves unless `ENVELOPE_BUILTIN_ROUTERS = False`:
    `topic.subscribe`, `topic.leave`, `topic.list` (`actors.topics.router`) and
    `connection.ping`, `connection.close` (`actors._builtins.router`)."""
    from actors._builtins import router as connection_router
    from actors.topics import router as topics_router

    return (topics_router, connection_router)


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
