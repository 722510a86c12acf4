"""Typed handlers and routers. Pure: imports `envelope` and pydantic only, no I/O."""

from handlers import _unshadowed  # noqa: F401  (first: see its docstring)
from handlers._context import Context, JobContext
from handlers._errors import HandlerDefinitionError
from handlers._permissions import all_of, any_of, authenticated, staff, superuser
from handlers._rate import Rate, RateLimiter
from handlers._router import Router, default_router, handler
from handlers._spec import HandlerSpec, checked_result, read_spec

__all__ = [
    "Context",
    "HandlerDefinitionError",
    "HandlerSpec",
    "JobContext",
    "Rate",
    "RateLimiter",
    "Router",
    "all_of",
    "any_of",
    "authenticated",
    "checked_result",
    "default_router",
    "handler",
    "read_spec",
    "staff",
    "superuser",
]
