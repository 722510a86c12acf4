"""Running a topic's `permission` and `snapshot`: in the actor, or off it with the database."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from actors.publishing import TopicMatch
from envelope import Envelope, wire_name

#: What the checks produce: False (refused), or the snapshot (None when there is none).
Verdict = Any
RunAsync = Callable[..., Any]


@dataclass(slots=True)
class CheckContext:
    """The `ctx` a topic's checks get when they run off the actor (a thread or a worker):
    `user`, `connection` (the address), `log`, `envelope` (the subscribe request), `scope`
    (empty on a worker), `message`."""

    user: Any
    connection: str | None
    log: Any
    envelope: Envelope | None = None
    message: Any = None
    scope: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_request(cls, ctx: Any) -> CheckContext:
        return cls(ctx.user, ctx.connection, ctx.log, ctx.envelope, ctx.message, ctx.scope)


def snapshot_state(result: Any) -> list[dict[str, Any]] | None:
    """A snapshot (a model, models, or None) as `[{"t": ..., "p": ...}, ...]`."""
    if result is None:
        return None
    models: Iterable[Any] = [result] if isinstance(result, BaseModel) else result
    state = []
    for model in models:
        if not isinstance(model, BaseModel):
            raise TypeError(
                f"a topic snapshot returned {type(model).__name__}; return @message models"
            )
        state.append({"t": wire_name(model), "p": model})
    return state


async def run_checks(match: TopicMatch, ctx: Any) -> Verdict:
    """Permission, then snapshot, in the actor (sync checks are database-free here)."""
    spec = match.spec
    if spec.permission is not None:
        allowed = spec.permission(match, ctx)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            return False
    if spec.snapshot is None:
        return None
    result = spec.snapshot(match, ctx)
    if inspect.isawaitable(result):
        result = await result
    return snapshot_state(result)


def run_checks_sync(
    match: TopicMatch, ctx: Any, run_async: RunAsync, *, snapshot: bool = True
) -> Verdict:
    """Permission, then snapshot, from sync code; async checks go through `run_async`
    (`anyio.from_thread.run` in a thread of the server, `async_to_sync` on a worker)."""
    spec = match.spec
    if spec.permission is not None and not _call(spec.permission, match, ctx, run_async):
        return False
    if spec.snapshot is None or not snapshot:
        return None
    return snapshot_state(_call(spec.snapshot, match, ctx, run_async))


def _call(check: Callable[..., Any], match: TopicMatch, ctx: Any, run_async: RunAsync) -> Any:
    if inspect.iscoroutinefunction(check):
        return run_async(_awaited, check, match, ctx)
    result = check(match, ctx)
    if inspect.isawaitable(result):
        return run_async(_await, result)
    return result


async def _awaited(check: Callable[..., Awaitable[Any]], match: TopicMatch, ctx: Any) -> Any:
    return await check(match, ctx)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
