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
        # (the current second's first ns, its text): one tuple, replaced whole, so that a
        # thread never reads one second's start with another's text.
        self._second: tuple[int, str] = (-(10**9), "")

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["timestamp"] = self.now()
        return event_dict

    def now(self) -> str:
        """The time now, as this processor writes it."""
        ns = time.time_ns()
        start, text = self._second
        if not start <= ns < start + 1_000_000_000:
            second = ns // 1_000_000_000
            start = second * 1_000_000_000
            text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._second = (start, text)
        us = (ns - start) // 1000  # < 10**6: small-integer arithmetic from here
        return f"{text}{_DIGITS[us // 1000]}{_DIGITS[us % 1000]}Z"


_DIGITS = tuple(f"{k:03d}" for k in range(1000))
