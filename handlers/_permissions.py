"""Permission checks: `(msg, ctx) -> bool` callables, and ways to combine them.

A check used by an `async def` handler may be sync or async; a deferred handler's
check runs on the worker, with the database, and must be sync.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

Permission = Callable[[Any, Any], "bool | Awaitable[bool]"]


def authenticated(msg: Any, ctx: Any) -> bool:
    """The connection's user is logged in."""
    user = ctx.user
    return user is not None and bool(user.is_authenticated)


def staff(msg: Any, ctx: Any) -> bool:
    """The connection's user is logged in and `is_staff`."""
    return authenticated(msg, ctx) and bool(ctx.user.is_staff)


def superuser(msg: Any, ctx: Any) -> bool:
    """The connection's user is logged in and `is_superuser`."""
    return authenticated(msg, ctx) and bool(ctx.user.is_superuser)


def all_of(*checks: Permission) -> Permission:
    """Allowed when every check allows, checked in order; async if any check is."""
    if any(inspect.iscoroutinefunction(c) for c in checks):

        async def all_async(msg: Any, ctx: Any) -> bool:
            for check in checks:
                outcome = check(msg, ctx)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if not outcome:
                    return False
            return True

        return all_async

    def all_sync(msg: Any, ctx: Any) -> bool:
        return all(check(msg, ctx) for check in checks)

    return all_sync


def any_of(*checks: Permission) -> Permission:
    """Allowed when one check allows, checked in order; async if any check is."""
    if any(inspect.iscoroutinefunction(c) for c in checks):

        async def any_async(msg: Any, ctx: Any) -> bool:
            for check in checks:
                outcome = check(msg, ctx)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if outcome:
                    return True
            return False

        return any_async

    def any_sync(msg: Any, ctx: Any) -> bool:
        return any(check(msg, ctx) for check in checks)

    return any_sync
