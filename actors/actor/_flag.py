"""`Flag`: an event that is only made when someone waits on it."""

from __future__ import annotations

import anyio


class Flag:
    """Set once; `wait()` returns when it is. Most connections' flags are set without
    anyone waiting (only a server shutdown waits), so the event behind it is made by the
    first `wait()` only: a few bytes per connection instead of an event and its deque."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
