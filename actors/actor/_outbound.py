"""A connection's outbound budget: how much sent-but-unsent data the server holds for it.

Under daphne an ASGI ``websocket.send`` never waits: Twisted appends the frame to the
transport's buffer, without limit, and a client that stops reading makes the server grow
until it runs out of memory. Under uvicorn ``send`` waits for the transport to drain, so
a client that stops reading holds up its connection's actor instead, forever. Neither
server says anything.

So every connection keeps account. Its `ServerTransport`, found once per connection from
the ASGI ``send`` callable, reads how many bytes the server still holds for the socket
(the Twisted transport's buffer under daphne, the asyncio transport's write buffer under
uvicorn) and can drop the socket. Before each send the actor reads it; past
``ENVELOPE_MAX_OUTBOUND_BYTES``, or when what it holds has not drained below the low
water mark for ``ENVELOPE_SEND_TIMEOUT`` seconds, the connection is too slow: it is told
why (a ``connection.closing`` push with `CLOSE_SLOW`), closed, dropped if the close does
not go through in time, and the event is logged with its figures. A connection whose
server is not known (a test communicator, another server) is not limited.
"""

from __future__ import annotations

import functools
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio

from actors._closing import CLOSE_SLOW
from actors.actor._state import ActorState
from envelope import encode

#: What a connection may hold and still count as keeping up (a burst of replies sent in
#: one turn of the event loop is held until the loop writes it out).
LOW_WATER = 64 * 1024

#: The push sent right before closing with `CLOSE_SLOW`, when the socket can still take it.
SLOW_CLOSING = encode("connection.closing", None, {"code": CLOSE_SLOW, "reason": "slow"})
#: How long the closing push and close may take, and then the close handshake, before
#: the socket is dropped.
CLOSE_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class ServerTransport:
    """What the server lets us know and do about one connection's socket."""

    held: Callable[[], int]  # bytes the server holds, unsent
    abort: Callable[[], None]  # drop the socket now, with whatever it holds


class OutboundBudget:
    """One connection's account: its transport, its limits, and since when it lags.

    `lagging_since` is the `time.monotonic()` at which the server was first seen
    holding more than `low_water` for the connection, None while it keeps up.
    """

    __slots__ = ("abort", "held", "lagging_since", "limit", "low_water", "timeout")

    def __init__(self, transport: ServerTransport, limit: int, timeout: float) -> None:
        self.held = transport.held
        self.abort = transport.abort
        self.limit = limit
        self.low_water = min(LOW_WATER, limit)
        self.timeout = timeout
        self.lagging_since: float | None = None

    def poll_interval(self) -> float:
        """How often a lagging connection is looked at again."""
        return min(1.0, max(0.05, self.timeout / 10))


def find_transport(send: Any) -> ServerTransport | None:
    """The socket of the server behind an ASGI `send` callable, or None when unknown."""
    # daphne: functools.partial(Server.handle_reply, protocol), the protocol holding the
    # Twisted transport the websocket was upgraded on.
    if isinstance(send, functools.partial) and send.args:
        transport = getattr(send.args[0], "transport", None)
        if transport is not None:
            return _twisted(transport)
    # uvicorn: a bound method of its protocol, which holds an asyncio transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    size = getattr(transport, "get_write_buffer_size", None)
    if callable(size) and callable(getattr(transport, "abort", None)):
        return ServerTransport(size, functools.partial(_reset, transport))
    return None


def _reset(transport: Any) -> None:
    # As Twisted's abortConnection does: a zero linger time makes the close a reset, so
    # the kernel drops what it still holds for the client instead of trying to deliver
    # it (with a FIN) to a client that does not read.
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def _twisted(transport: Any) -> ServerTransport | None:
    abort = getattr(transport, "abortConnection", None)
    # TLS wraps the TCP transport (twisted.protocols.tls): its ciphertext is what queues.
    inner = getattr(transport, "transport", None)
    if inner is not None and hasattr(inner, "dataBuffer"):
        transport = inner
    # twisted.internet.abstract.FileDescriptor keeps what it could not write yet in
    # `dataBuffer` (from `offset` on) and what was written since its last flush in
    # `_tempDataBuffer`, whose length it keeps in `_tempDataLen`. Twisted has no public
    # accessor for this; if the attributes are not there, there is no account.
    if abort is None or not all(
        hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen")
    ):
        return None

    def held() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return ServerTransport(held, abort)


class SlowReaderGuard(ActorState):
    """The sending side of `ConnectionActor`: every frame goes out through `send_text`,
    which keeps the connection's outbound budget and closes a client that does not keep
    up."""

    __slots__ = ()

    _budget: OutboundBudget | None
    log: Any
    start_soon: Callable[..., None]
    _guarded: Callable[..., Coroutine[Any, Any, None]]

    async def send_text(self, text: str) -> None:
        if self._closed:
            return
        self.last_sent = now = time.monotonic()
        budget = self._budget
        if budget is not None:
            held = budget.held()
            if held > budget.low_water and await self._lagging(budget, held, now):
                return
        try:
            await self._send(text)
        except OSError:
            # uvicorn's send raises once the socket is gone (ClientDisconnected); when
            # this connection dropped it (too slow), that is expected.
            if not self._closed:
                raise

    async def _lagging(self, budget: OutboundBudget, held: int, now: float) -> bool:
        """The server holds more than the low water mark for the socket: close it when that is
        over the budget (True), else watch that it drains in time."""
        if held > budget.limit:
            await self._close_slow(budget, held, now)
            return True
        if budget.lagging_since is None:
            budget.lagging_since = now
            self.start_soon(self._watch_drain, budget)
        return False

    async def _watch_drain(self, budget: OutboundBudget) -> None:
        # Runs only while the connection lags: most never start one. Under uvicorn this
        # is what notices a client that stopped reading, since its `send` just waits.
        interval = budget.poll_interval()
        while True:
            await anyio.sleep(interval)
            held = budget.held()
            now = time.monotonic()
            if held <= budget.low_water:
                budget.lagging_since = None
                return
            since = budget.lagging_since
            if held > budget.limit or (since is not None and now - since >= budget.timeout):
                await self._close_slow(budget, held, now)
                return

    async def _close_slow(self, budget: OutboundBudget, held: int, now: float) -> None:
        """Tell the client why (it may never read it), close with `CLOSE_SLOW`, log it;
        drop the socket if it is still there `CLOSE_GRACE` later."""
        if self._closed:
            return
        since = budget.lagging_since
        self._mark_slow(
            "over_budget" if held > budget.limit else "not_draining",
            held_bytes=held,
            max_outbound_bytes=budget.limit,
            lagging_seconds=round(now - since, 3) if since is not None else 0.0,
            send_timeout=budget.timeout,
        )
        await self._close_now(budget)

    def _mark_slow(self, cause: str, **figures: Any) -> None:
        """The connection is too slow: log `connection.slow` with `figures`, count it, and
        send nothing more, whatever is still queued (the caller closes the socket)."""
        self.log.warning("connection.slow", **figures, cause=cause)
        if self._metrics is not None:
            self._metrics.closed_slow(cause)
        self._closed = True

    async def _close_now(self, budget: OutboundBudget | None) -> None:
        """Tell the client it is too slow, close with `CLOSE_SLOW`, drop the socket if it
        is still there `CLOSE_GRACE` later."""
        with anyio.move_on_after(CLOSE_GRACE) as waiting:  # uvicorn's send may wait
            try:
                await self._send(SLOW_CLOSING)
                if self._close is not None:
                    await self._close(CLOSE_SLOW)
            except OSError:  # the client went meanwhile (uvicorn: ClientDisconnected)
                return
        if budget is None:
            return
        if waiting.cancelled_caught:
            budget.abort()
        elif self._tg is not None:
            # Its close handshake cannot finish if the client does not read: daphne drops
            # the socket after a second, uvicorn would wait for the buffer to drain.
            self._tg.start_soon(self._guarded, self._abort_later, (budget,), True)

    async def _abort_later(self, budget: OutboundBudget) -> None:
        # Cancelled by `stop()` once the connection is over: still running means the
        # socket is still there.
        await anyio.sleep(CLOSE_GRACE * 2)
        budget.abort()
