"""A minimal websocket client for load generation, on asyncio's `Protocol`.

On a 2-core machine the load client shares the CPU with the server it measures; the
`websockets` package spends 35-45 µs per round trip, this client 20-25 µs. It does only
what the benchmarks need: the opening handshake, text frames out (masked with an all-zero
key, which RFC 6455 allows, so a frame is built once and sent as it is), text frames in,
answering pings, closing. Loopback benchmarks only; it is not a general client.
"""

from __future__ import annotations

import asyncio
import base64
import os
from urllib.parse import urlsplit

_ZERO_MASK = b"\x00\x00\x00\x00"


def text_frame(text: str) -> bytes:
    """A masked client text frame (zero mask key: the payload goes as it is)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _ZERO_MASK + data


class RawConnection(asyncio.Protocol):
    """One connection: `await request(frame)` sends a prepared frame (`prepare(text)`)
    and returns the next text frame received; `await receive()` waits for the next one."""

    prepare = staticmethod(text_frame)

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._buffer = bytearray()
        self._open = False
        self._queue: list[bytes] = []
        self._waiter: asyncio.Future[bytes] | None = None
        self._loop = loop

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionError("the server closed the connection")
        for future in (self.opened, self._waiter):
            if future is not None and not future.done():
                future.set_exception(error)
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            del buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self._open = True
            self.opened.set_result(None)
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                return
            opcode = buffer[0] & 0x0F
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode in (0x1, 0x2):
                waiter = self._waiter
                if waiter is not None and not waiter.done():
                    self._waiter = None
                    waiter.set_result(payload)
                else:
                    self._queue.append(payload)
            elif opcode == 0x9:  # ping -> pong with the same payload
                assert self.transport is not None
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _ZERO_MASK + payload)
            elif opcode == 0x8:  # close
                assert self.transport is not None
                self.transport.close()

    # -- use ---------------------------------------------------------------------------

    def receive(self) -> asyncio.Future[bytes]:
        future = self._loop.create_future()
        if self._queue:
            future.set_result(self._queue.pop(0))
        else:
            self._waiter = future
        return future

    def request(self, frame: bytes) -> asyncio.Future[bytes]:
        future = self.receive()
        assert self.transport is not None
        self.transport.write(frame)
        return future

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(bytes((0x88, 0x82)) + _ZERO_MASK + (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 5)
        except TimeoutError:
            self.transport.close()


async def connect(url: str) -> RawConnection:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(RawConnection, host, port)
    await handshake(conn, url)
    return conn


async def handshake(conn: RawConnection, url: str) -> None:
    """The opening handshake of `url` on a connection already made."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    key = base64.b64encode(os.urandom(16)).decode()
    assert conn.transport is not None
    conn.transport.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(conn.opened, 30)
