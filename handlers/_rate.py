"""`rate="20/10s"`: parsing the spec, and a token bucket that enforces it (no clock of its own)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(s|sec|m|min|h|hour)?\s*$")
_UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `seconds`, e.g. `Rate.parse("20/10s")` is 20 per 10 seconds."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, spec: str) -> Rate:
        """Read `"N/s"`, `"N/10s"`, `"N/m"`, `"N/5min"`, `"N/h"`."""
        match = _RATE.match(spec) if isinstance(spec, str) else None
        if match is None:
            raise ValueError(
                f"rate {spec!r} is not of the form 'N/period', e.g. '20/10s', '100/m', '1000/h'"
            )
        count = int(match.group(1))
        amount = float(match.group(2)) if match.group(2) else 1.0
        unit = match.group(3) or "s"
        seconds = amount * _UNIT_SECONDS[unit]
        if count < 1 or seconds <= 0:
            raise ValueError(f"rate {spec!r} must allow at least 1 request in a positive period")
        return cls(count, seconds)

    def limiter(self) -> RateLimiter:
        return RateLimiter(self)


class RateLimiter:
    """A token bucket: `count` tokens, refilled evenly over `seconds`. Bursts up to `count`."""

    __slots__ = ("_per_token", "_stamp", "_tokens", "capacity")

    def __init__(self, rate: Rate) -> None:
        self.capacity = float(rate.count)
        self._per_token = rate.seconds / rate.count
        self._tokens = self.capacity
        self._stamp: float | None = None

    def hit(self, now: float) -> float:
        """Take one token at time `now`. Returns 0.0 when allowed, else seconds to wait."""
        if self._stamp is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) / self._per_token)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * self._per_token
