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
    return _first_to_say(checks, False)


def any_of(*checks: Permission) -> Permission:
    """Allowed when one check allows, checked in order; async if any check is."""
    return _first_to_say(checks, True)


def _first_to_say(checks: tuple[Permission, ...], verdict: bool) -> Permission:
    """A check that answers `verdict` as soon as one of `checks` does, else the opposite."""
    if any(inspect.iscoroutinefunction(c) for c in checks):

        async def combined_async(msg: Any, ctx: Any) -> bool:
            for check in checks:
                outcome = check(msg, ctx)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if bool(outcome) is verdict:
                    return verdict
            return not verdict

        return combined_async

    def combined(msg: Any, ctx: Any) -> bool:
        for check in checks:
            if bool(check(msg, ctx)) is verdict:
                return verdict
        return not verdict

    return combined
