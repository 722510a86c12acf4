"""What reaches a connection from outside its mailbox loop: frames from the socket,
pushes and job updates, channel-layer messages and posted work, queued in arrival
order."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from actors.actor._in_flight import could_be_terminal, is_push
from actors.actor._mailbox import (
    CloseConnection,
    Deliver,
    MailboxClosed,
    MailboxFull,
    QueuedPush,
)
from actors.actor._session import VERIFY
from actors.actor._state import ActorState
from actors.publishing import CLOSE, PUSH, TOPICS
from actors.topics import TopicCommand
from envelope import Overloaded, State, encode, new_trace_id, peek_envelope

if TYPE_CHECKING:
    from actors.actor._outbound import OutboundBudget

_monotonic = time.monotonic
_last_push = [QueuedPush("")]  # the item of the push being handed out (see push_nowait)


class Inbound(ActorState):
    """The receiving side of `ConnectionActor` (its state: `ActorState`)."""

    __slots__ = ()

    log: Any
    session_changed: Callable[[], None]
    _check_session_first: Callable[[], None]
    _guarded: Callable[..., Coroutine[Any, Any, None]]
    _mark_slow: Callable[..., None]

    if TYPE_CHECKING:  # the sending side's (`SlowReaderGuard`)

        async def send_text(self, text: str) -> None: ...

        async def _close_now(self, budget: OutboundBudget | None) -> None: ...

    async def receive(self, frame: str | bytes) -> None:
        """A frame from the socket: into the mailbox, or answered `overloaded` at once."""
        now = self.last_received = _monotonic()
        if self._draining:  # the server is stopping: the client reconnects and retries
            return
        if now >= self._session_due:
            self._check_session_first()
        try:
            self.mailbox.post_nowait(frame)
            if self._metrics is not None:
                self._metrics.posted(len(self.mailbox))
        except MailboxFull:
            t, i = peek_envelope(frame, self.routing.max_frame_bytes)
            i = i or new_trace_id()
            self.failed_count += 1
            if self._metrics is not None:
                self._metrics.refused()
            self.log.warning(
                "envelope.overloaded",
                i=i,
                t=t,
                queued=self.mailbox.size,
                rejected=self.mailbox.statistics().rejected,
            )
            await self.send_text(encode(t or "error", i, Overloaded().payload(), State.FAILED))
        except MailboxClosed:
            pass

    async def deliver(self, text: str) -> None:
        """An encoded push or job update from outside: queued behind what came before it."""
        in_flight = self._in_flight
        if in_flight is not None and in_flight.count and could_be_terminal(text):
            in_flight.settle(text)
        if self._metrics is not None and is_push(text):
            self._metrics.delivered()
        try:
            await self.mailbox.post(Deliver(text))
        except MailboxClosed:
            pass

    def push_nowait(self, text: str) -> None:
        """A topic's push (see `actors.publishing.FanoutHub`): queued behind what came
        before it, never waiting for room. A connection whose queued pushes come to more
        than `ENVELOPE_MAX_OUTBOUND_BYTES` characters is too slow: closed with 4008."""
        queued = self.queued_chars + len(text)
        if queued > self._max_queued:
            self._pushes_overflowed(queued)
            return
        # The hub hands one text to each member in turn: they share one item (an
        # allocation per recipient is what makes the garbage collector run).
        item = _last_push[0]
        if item.text is not text:
            item = _last_push[0] = QueuedPush(text)
        try:
            self.mailbox.force(item)
        except MailboxClosed:
            return
        self.queued_chars = queued
        if self._metrics is not None:
            self._metrics.delivered()

    def message_nowait(self, message: dict[str, Any]) -> None:
        """A channel-layer message sent to a topic's members (`close_group`, topic
        commands), queued like a push."""
        kind = message.get("type")
        if kind == PUSH:
            self.push_nowait(message["text"])
            return
        if kind == CLOSE:
            item: Any = CloseConnection(int(message.get("code", 1000)))
        elif kind == TOPICS:
            item = TopicCommand(message)
        elif kind == VERIFY:
            self.session_changed()
            return
        else:
            self.log.warning("topic.unknown_message", type=kind)
            return
        try:
            self.mailbox.force(item)
        except MailboxClosed:
            pass

    def _pushes_overflowed(self, queued: int) -> None:
        if self._closed or self._tg is None:
            return
        self.mailbox.close_reader()  # what it holds will never be sent
        self.queued_chars = 0
        self._mark_slow("over_budget", queued_chars=queued, max_outbound_bytes=self._max_queued)
        self._tg.start_soon(self._guarded, self._close_now, (self._budget,), True)

    async def post_close(self, code: int) -> None:
        try:
            await self.mailbox.post(CloseConnection(code))
        except MailboxClosed:
            pass

    async def post(self, item: Callable[[Any], Awaitable[None]]) -> None:
        """Queue `item(actor)` behind what came before it (dropped once the actor stopped)."""
        try:
            await self.mailbox.post(item)
        except MailboxClosed:
            pass
