"""The envelope: `{"t": type, "i": trace id, "p": payload, "s": state}`."""

from __future__ import annotations

import enum
import itertools
import os
import re
from typing import Any

#: `t` and `i` share one alphabet; `t` is 1-100 chars of it, `i` at most 64.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
TRACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
MAX_TYPE_LENGTH = 100
MAX_TRACE_ID_LENGTH = 64


class State(enum.StrEnum):
    """How to read a reply's payload."""

    ACKNOWLEDGED = "a"
    QUEUED = "q"
    RUNNING = "r"
    SUCCESS = "s"
    FAILED = "f"

    @property
    def terminal(self) -> bool:
        return self in (State.SUCCESS, State.FAILED)


class Envelope:
    """One frame. Replies carry `s`; pushes and requests do not."""

    __slots__ = ("i", "p", "s", "t")

    def __init__(
        self,
        t: str,
        i: str | None = None,
        p: dict[str, Any] | None = None,
        s: State | None = None,
    ) -> None:
        self.t = t
        self.i = i
        self.p = p
        self.s = s

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Envelope):
            return NotImplemented
        return (self.t, self.i, self.p, self.s) == (other.t, other.i, other.p, other.s)

    def __repr__(self) -> str:
        parts = [f"t={self.t!r}"]
        if self.i is not None:
            parts.append(f"i={self.i!r}")
        if self.p is not None:
            parts.append(f"p={self.p!r}")
        if self.s is not None:
            parts.append(f"s={self.s.value!r}")
        return f"Envelope({', '.join(parts)})"

    def as_dict(self) -> dict[str, Any]:
        """The wire form: absent keys are left out."""
        out: dict[str, Any] = {"t": self.t}
        if self.i is not None:
            out["i"] = self.i
        if self.s is not None:
            out["s"] = self.s.value
        if self.p is not None:
            out["p"] = self.p
        return out


# A random per-process prefix and a counter: unique across processes, and cheap.
_prefix = os.urandom(4).hex()
_counter = itertools.count(1)


def new_trace_id() -> str:
    """A trace id for an envelope whose client sent none (`srv-<process>-<n>`)."""
    return f"srv-{_prefix}-{next(_counter):x}"
