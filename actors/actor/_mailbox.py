"""`Mailbox`: a connection's bounded queue of frames, pushes and job updates.

It has the shape of an anyio memory object stream (`post_nowait` / `post`,
`receive_nowait` / `receive`, `WouldBlock` / `EndOfStream`, `statistics()`), on a
deque and a future made only while the reader waits: one per idle connection costs a
few hundred bytes, where a memory object stream with its waiting event costs a few KiB
and an event per wait (measured by `envelope bench memory` and `sockets`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio

_WAKE: Any = object()  # wakes the reader without an item (the mailbox was closed)


class MailboxFull(Exception):
    """`post_nowait` found the mailbox full."""


class MailboxClosed(Exception):
    """The mailbox was closed: its connection is gone."""


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    size: int  # capacity
    queued: int  # waiting now
    posted: int  # accepted since it opened
    rejected: int  # refused because it was full
    closed: bool


class Mailbox:
    """A bounded queue with counters and one reader: the connection's actor.

    `post_nowait` never waits: it raises `MailboxFull` instead, so that a full mailbox
    is answered at once. `post` waits for room (used for pushes and job updates,
    which must not be lost). Items posted before `close()` are still received.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_items",
        "_posted",
        "_reader",
        "_rejected",
        "_writers",
        "size",
    )

    def __init__(self, size: int) -> None:
        self.size = size  # for frames from the client (`post_nowait`)
        self._items: deque[Any] = deque()
        self._reader: asyncio.Future[Any] | None = None  # while the reader waits
        self._writers: deque[asyncio.Future[None]] | None = None  # `post`s waiting for room
        self._closed = False
        self._posted = 0
        self._rejected = 0

    # -- writers -----------------------------------------------------------------------

    def post_nowait(self, item: Any) -> None:
        if self._closed:
            raise MailboxClosed
        if len(self._items) >= self.size:
            self._rejected += 1
            raise MailboxFull
        self._put(item)

    def force(self, item: Any) -> int:
        """Queue `item` even beyond the mailbox's size (a topic's push, which never waits
        for room); returns how many items are queued now. `MailboxClosed` once closed."""
        if self._closed:
            raise MailboxClosed
        self._put(item)
        return len(self._items)

    async def post(self, item: Any) -> None:
        while not self._closed and len(self._items) >= self.size:
            if self._writers is None:
                self._writers = deque()
            waiter = asyncio.get_running_loop().create_future()
            self._writers.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
        if self._closed:
            raise MailboxClosed
        self._put(item)

    def _put(self, item: Any) -> None:
        self._posted += 1
        reader = self._reader
        if reader is not None and not reader.done():
            # Handed to the waiting reader, as a memory object stream does: it never
            # takes a place in the queue.
            reader.set_result(item)
        else:
            self._items.append(item)

    # -- the reader ----------------------------------------------------------------------

    def receive_nowait(self) -> Any:
        """The next item; `anyio.WouldBlock` when empty, `anyio.EndOfStream` once closed
        and empty."""
        if self._items:
            item = self._items.popleft()
            writers = self._writers
            while writers:
                waiter = writers.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break
            return item
        if self._closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def receive(self) -> Any:
        """The next item, waiting for one; `anyio.EndOfStream` once closed and empty."""
        while True:
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                pass
            reader = self._reader = asyncio.get_running_loop().create_future()
            try:
                item = await reader
            except BaseException:
                # Cancelled just after an item was handed over: keep it for next time.
                if reader.done() and not reader.cancelled() and reader.result() is not _WAKE:
                    self._items.appendleft(reader.result())
                raise
            finally:
                self._reader = None
            if item is not _WAKE:
                return item

    def __aiter__(self) -> Mailbox:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    # -- both --------------------------------------------------------------------------

    def close(self) -> None:
        """No more posts; the reader still gets what is queued, then `EndOfStream`."""
        if self._closed:
            return
        self._closed = True
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(_WAKE)
        for waiter in self._writers or ():
            if not waiter.done():
                waiter.set_result(None)

    def close_reader(self) -> None:
        """The reader is gone: drop what is queued and refuse further posts."""
        self.close()
        self._items.clear()

    def __len__(self) -> int:
        """Items waiting now (one handed straight to a waiting reader never waits)."""
        return len(self._items)

    def statistics(self) -> MailboxStatistics:
        return MailboxStatistics(
            size=self.size,
            queued=len(self._items),
            posted=self._posted,
            rejected=self._rejected,
            closed=self._closed,
        )


# -- items besides frames, which the actor calls with itself ---------------------------


class Deliver:
    """A mailbox item: an already-encoded frame to send as it is (a push, a job state)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, actor: Any) -> None:
        await actor.send_text(self.text)


class QueuedPush:
    """A mailbox item: a topic's push, counted in its connection's queued characters
    until it is sent (see `ConnectionActor.push_nowait`)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, actor: Any) -> None:
        text = self.text
        actor.queued_chars -= len(text)
        await actor.send_text(text)


class CloseConnection:
    """A mailbox item: close the socket with `code`, after what is before it was sent."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code

    async def __call__(self, actor: Any) -> None:
        await actor.close(self.code)


class Settled:
    """A mailbox item: everything before it has been handled (see `ConnectionActor.drain`)."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self, actor: Any) -> None:
        actor.settled(self.token)
