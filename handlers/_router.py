"""`Router`: message name -> handler; `@handler` registers into the default router."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, overload

from handlers._errors import HandlerDefinitionError
from handlers._spec import HandlerSpec, read_spec

F = TypeVar("F", bound=Callable[..., Any])


class Router:
    """A set of handlers, one per message type. A consumer serves one or more routers.

    >>> chat = Router("chat")
    >>> @chat.handler
    ... async def send_chat(msg: ChatSend, ctx: Context) -> None: ...
    """

    __slots__ = ("__weakref__", "_specs", "name")

    def __init__(self, name: str = "router") -> None:
        self.name = name
        self._specs: dict[str, HandlerSpec] = {}
        _declared.add(self)

    @overload
    def handler(self, fn: F, /) -> F: ...
    @overload
    def handler(self, fn: None = None, /, **options: Any) -> Callable[[F], F]: ...

    def handler(self, fn: Any = None, /, **options: Any) -> Any:
        """Register a handler; usable bare (`@router.handler`) or with options."""
        if fn is not None:
            self.add(read_spec(fn, **options))
            return fn

        def decorate(f: F) -> F:
            self.add(read_spec(f, **options))
            return f

        return decorate

    def add(self, spec: HandlerSpec) -> None:
        existing = self._specs.get(spec.name)
        if existing is not None and existing.qualname != spec.qualname:
            raise HandlerDefinitionError(
                f"handler {spec.qualname}: message {spec.name!r} is already handled by "
                f"{existing.qualname} in router {self.name!r}; one handler per message type"
            )
        self._specs[spec.name] = spec

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def __getitem__(self, name: str) -> HandlerSpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[HandlerSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Router({self.name!r}, {len(self)} handlers)"


_declared: weakref.WeakSet[Router] = weakref.WeakSet()


def declared_routers() -> list[Router]:
    """Every `Router` alive in the process: a `@message` model none of them handles is
    one the server only sends (a push), which is what the generated contract says."""
    return list(_declared)


#: The router `@handler` registers into.
default_router = Router("default")


@overload
def handler(fn: F, /) -> F: ...
@overload
def handler(fn: None = None, /, **options: Any) -> Callable[[F], F]: ...


def handler(fn: Any = None, /, **options: Any) -> Any:
    """Register a typed function as the handler of its message, in the default router.

    The payload type comes from the parameter annotated with a `@message` model; an
    optional parameter annotated `Context` (or `JobContext` for a plain `def`, which
    is deferred to a worker) receives the context; the return annotation is the
    reply's payload model, or None.

    Options: `permission=`, `public=`, `concurrent=`, `timeout=`, `reply=`, `ack=`,
    `rate=`, `progress=` (the model of its `r` replies) and `errors=` (the `Failure`
    classes it raises itself; both are what the generated contract states) and, for
    deferred handlers, `queue=`, `retries=`, `result_ttl=`, `start_timeout=`.
    """
    return default_router.handler(fn, **options)
