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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors._closing import CLOSE_SLOW
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
