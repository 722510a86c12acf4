"""`Route`: one message type as a consumer serves it, built once per consumer.

Everything the stages need to decide about a request that does not depend on the
request itself is worked out here, at `as_asgi()`, instead of per message: the handler's
timeout with `ENVELOPE_DEFAULT_TIMEOUT` applied, whether the connection must be
authenticated, how to make the connection's rate limiter, how to run the permission,
and the deferred backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handlers import HandlerSpec, RateLimiter


@dataclass(frozen=True, slots=True)
class Route:
    spec: HandlerSpec
    #: The handler's `timeout=`, else `ENVELOPE_DEFAULT_TIMEOUT`; None: no limit.
    timeout: float | None
    #: The connection must be authenticated: not `public=True`, and either deferred
    #: (work for a worker and the database is never enqueued for an anonymous
    #: connection unless the handler is public) or not `ENVELOPE_ALLOW_UNAUTHENTICATED`.
    login_required: bool
    #: A new limiter for one connection (`rate=`), or None.
    limiter: Callable[[], RateLimiter] | None
    #: The permission to check in the actor (async handlers; a deferred handler's runs on
    #: its worker), and whether to await what it returns.
    permission: Callable[[Any, Any], Any] | None
    permission_is_async: bool
    #: Runs deferred handlers (and `submit(ctx, target=fn)`); None when nothing is deferred.
    backend: Any

    @classmethod
    def of(
        cls,
        spec: HandlerSpec,
        *,
        default_timeout: float | None,
        allow_unauthenticated: bool,
        backend: Any = None,
    ) -> Route:
        in_actor = spec.permission is not None and spec.is_async
        return cls(
            spec=spec,
            timeout=spec.timeout or default_timeout,
            login_required=not spec.public and (spec.deferred or not allow_unauthenticated),
            limiter=spec.rate.limiter if spec.rate is not None else None,
            permission=spec.permission if in_actor else None,
            permission_is_async=in_actor and spec.permission_is_async,
            backend=backend,
        )

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Routing:
    """What a consumer serves: message name -> `Route`, and the frame size limit."""

    routes: Mapping[str, Route]
    max_frame_bytes: int
