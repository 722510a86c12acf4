"""One request: its context, the `Route` its message type takes (built once per
consumer), and what became of it (`Queued`, `Later`: see `_outcome`)."""

from actors.request._context import RequestActor, RequestContext
from actors.request._outcome import LATER, Later, Outcome, Queued
from actors.request._route import Route, Routing

__all__ = [
    "LATER",
    "Later",
    "Outcome",
    "Queued",
    "RequestActor",
    "RequestContext",
    "Route",
    "Routing",
]
