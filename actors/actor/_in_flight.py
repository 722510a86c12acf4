"""`InFlight`: a connection's deferred requests waiting for their terminal reply, bounded.

A request takes a place when it is handed to the backend and gives it back when its
terminal reply (`s` or `f`) reaches the connection: RQ's and the thread pool's replies
all arrive through `ConnectionActor.deliver`. Places are counted by trace id, since a
client may reuse one. `reply=False` handlers send no `s`, so they are not counted.
"""

from __future__ import annotations

from envelope import State, TooManyJobs, loads

_TERMINAL_STATES = frozenset((State.SUCCESS.value, State.FAILED.value))


def could_be_terminal(text: str) -> bool:
    """A cheap first look at a delivered frame (`encode` writes `"s":"s"` / `"s":"f"`);
    pushes and `q`/`r` states mostly fail it."""
    return '"s":"s"' in text or '"s":"f"' in text


def is_push(text: str) -> bool:
    """A delivered frame is a push, not a state of a request: `encode` writes `t`, `i`,
    `s`, `p` in that order, and `t` and `i` hold no quote, so the key after them says."""
    end = text.find('"', 6)  # the end of `t`'s value: text starts with {"t":"
    if text.startswith(',"i":"', end + 1):
        end = text.find('"', end + 7)
    return not text.startswith(',"s":', end + 1)


class InFlight:
    """At most `limit` deferred requests of one connection in flight."""

    __slots__ = ("_held", "count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._held: dict[str, int] = {}

    def hold(self, i: str) -> None:
        """Take a place for request `i`; `TooManyJobs` when none is left."""
        if self.count >= self.limit:
            raise TooManyJobs(limit=self.limit)
        self._held[i] = self._held.get(i, 0) + 1
        self.count += 1

    def release(self, i: str) -> None:
        """Give back a place of request `i` (nothing when it holds none)."""
        left = self._held.get(i, 0)
        if not left:
            return
        if left == 1:
            del self._held[i]
        else:
            self._held[i] = left - 1
        self.count -= 1

    def settle(self, text: str) -> None:
        """A delivered frame: when it is a terminal reply, its request's place is free."""
        try:
            head = loads(text)
        except ValueError:
            return
        if isinstance(head, dict) and head.get("s") in _TERMINAL_STATES:
            i = head.get("i")
            if isinstance(i, str):
                self.release(i)
