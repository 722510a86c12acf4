"""A connection's outbound budget: how much sent-but-unsent data the server holds for it.

Under daphne an ASGI ``websocket.send`` never waits: Twisted appends the frame to the
transport's buffer, without limit, and a client that stops reading makes the server grow
until it runs out of memory. Under uvicorn ``send`` waits for the transport to drain, so
a client that stops reading holds up its connection's actor instead, forever. Neither
server says anything.

So every connection keeps account. A *probe*, found once per connection from the ASGI
``send`` callable, reads how many bytes the server still holds for the socket (the
Twisted transport's buffer under daphne; the asyncio transport's write buffer under
uvicorn). Before each send the actor asks it; past ``ENVELOPE_MAX_OUTBOUND_BYTES``, or
when what it holds has not drained below `LOW_WATER` for ``ENVELOPE_SEND_TIMEOUT``
seconds, the connection is too slow: it is told why (a ``connection.closing`` push with
`CLOSE_SLOW`), closed, and the event is logged with its figures. A connection whose
server offers no probe (a test communicator, an unknown server) is not limited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from envelope import encode

#: Reads how many bytes the server holds, unsent, for one connection.
Probe = Callable[[], int]

#: What a connection may hold and still count as keeping up (a burst of replies sent in
#: one turn of the event loop is held until the loop writes it out).
LOW_WATER = 64 * 1024

#: The close code of a connection that does not read what it is sent (daphne lets
#: applications close with 1000 and 3000-4999 only: 4008 mirrors 1008, policy violation).
CLOSE_SLOW = 4008
#: The push sent right before closing with `CLOSE_SLOW`, when the socket can still take it.
SLOW_CLOSING = encode("connection.closing", None, {"code": CLOSE_SLOW, "reason": "slow"})


class OutboundBudget:
    """One connection's account: its probe, its limits, and since when it lags.

    `lagging_since` is the `time.monotonic()` at which the server was first seen
    holding more than `low_water` for the connection, None while it keeps up.
    """

    __slots__ = ("lagging_since", "limit", "low_water", "probe", "timeout")

    def __init__(self, probe: Probe, limit: int, timeout: float) -> None:
        self.probe = probe
        self.limit = limit
        self.low_water = min(LOW_WATER, limit)
        self.timeout = timeout
        self.lagging_since: float | None = None

    def poll_interval(self) -> float:
        """How often a lagging connection is looked at again."""
        return min(1.0, max(0.05, self.timeout / 10))


def find_probe(send: Any) -> Probe | None:
    """The probe of the server behind an ASGI `send` callable, or None when unknown."""
    # daphne: functools.partial(Server.handle_reply, protocol), the protocol holding the
    # Twisted transport the websocket was upgraded on.
    if isinstance(send, functools.partial) and send.args:
        transport = getattr(send.args[0], "transport", None)
        if transport is not None:
            return _twisted_probe(transport)
    # uvicorn: a bound method of its protocol, which holds an asyncio transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    size = getattr(transport, "get_write_buffer_size", None)
    if callable(size):
        return size
    return None


def _twisted_probe(transport: Any) -> Probe | None:
    # TLS wraps the TCP transport (twisted.protocols.tls): its ciphertext is what queues.
    inner = getattr(transport, "transport", None)
    if inner is not None and hasattr(inner, "dataBuffer"):
        transport = inner
    # twisted.internet.abstract.FileDescriptor keeps what it could not write yet in
    # `dataBuffer` (from `offset` on) and what was written since its last flush in
    # `_tempDataBuffer`, whose length it keeps in `_tempDataLen`. Twisted has no public
    # accessor for this; if the attributes are not there, there is no probe.
    if not all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen")):
        return None

    def held() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return held
