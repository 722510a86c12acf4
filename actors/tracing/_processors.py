"""The library's own structlog processors: the pid and an ISO 8601 UTC timestamp (see
`actors.tracing._configure` for the chain they are part of); and the context variables
the `parse` stage sets for `i` and `t`."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from actors.tracing import _sink
from actors.tracing._writer import IsoUTC


def trace_vars() -> tuple[ContextVar[Any], ContextVar[Any]]:
    """The context variables `bind_contextvars(i=..., t=...)` sets: setting them directly
    costs a third of a `bind_contextvars` call (the `parse` stage does it for every
    envelope), and `merge_contextvars` reads them as it reads everything
    `bind_contextvars` binds."""
    found = bound_vars("i", "t")
    return found["i"], found["t"]


def bound_vars(*keys: str) -> dict[str, ContextVar[Any]]:
    """The context variable `bind_contextvars` sets for each of `keys`, taken from the
    tokens it returns (structlog's public way to reach them); nothing stays bound."""
    tokens = structlog.contextvars.bind_contextvars(**dict.fromkeys(keys))
    structlog.contextvars.reset_contextvars(**tokens)
    return {key: token.var for key, token in tokens.items()}


def add_process(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Add `process`: the pid, so that lines of several processes can be told apart."""
    event_dict.setdefault("process", _sink._PID)
    return event_dict


class UTCTimeStamper:
    """`timestamp`: ISO 8601 UTC with microseconds and a `Z`, as structlog's
    `TimeStamper(fmt="iso", utc=True)` writes it, at a fifth of its cost (the date and
    time are formatted once per second; this runs for every event)."""

    def __init__(self) -> None:
        self._text = IsoUTC().text

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["timestamp"] = self.now()
        return event_dict

    def now(self) -> str:
        """The time now, as this processor writes it."""
        return self._text(time.time_ns())
