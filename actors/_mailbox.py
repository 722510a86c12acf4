"""`Mailbox`: a connection's bounded queue of frames, pushes and job updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


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
    """A bounded anyio memory stream with counters. One reader: the connection's actor.

    `post_nowait` never waits: it raises `MailboxFull` instead, so that a full mailbox
    is answered at once. `post` waits for room (used for pushes and job updates,
    which must not be lost).
    """

    __slots__ = ("_posted", "_receive", "_rejected", "_send", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._send: MemoryObjectSendStream[Any]
        self._receive: MemoryObjectReceiveStream[Any]
        self._send, self._receive = anyio.create_memory_object_stream(size)
        self._posted = 0
        self._rejected = 0

    def post_nowait(self, item: Any) -> None:
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            self._rejected += 1
            raise MailboxFull from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MailboxClosed from None
        self._posted += 1

    async def post(self, item: Any) -> None:
        try:
            await self._send.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MailboxClosed from None
        self._posted += 1

    def receive_nowait(self) -> Any:
        """The next item; `anyio.WouldBlock` when empty, `anyio.EndOfStream` once closed
        and empty."""
        return self._receive.receive_nowait()

    async def receive(self) -> Any:
        """The next item, waiting for one; `anyio.EndOfStream` once closed and empty."""
        return await self._receive.receive()

    def close(self) -> None:
        """No more posts; the reader still gets what is queued, then the iteration ends."""
        self._send.close()

    def close_reader(self) -> None:
        self._receive.close()

    def statistics(self) -> MailboxStatistics:
        stats = self._send.statistics()
        return MailboxStatistics(
            size=self.size,
            queued=stats.current_buffer_used,
            posted=self._posted,
            rejected=self._rejected,
            closed=self._send._closed,
        )

    def __aiter__(self) -> MemoryObjectReceiveStream[Any]:
        return self._receive
