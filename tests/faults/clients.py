"""Clients that misbehave the way production clients do, on plain blocking sockets."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

from benchmarks._rawws import text_frame


class SilentClient:
    """A websocket client that stops reading after the handshake.

    Its receive buffer is made tiny before connecting, so the kernel soon stops taking
    what the server sends and the server has to hold it. `send()` keeps writing frames
    (requests whose replies nobody reads); it returns False once the server has reset
    the connection.
    """

    def __init__(self, port: int, path: str = "/ws/", *, timeout: float = 5.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:  # the 101 response, and not a byte more is read
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        self.sock = sock
        self.reset = False

    def send(self, envelope: dict[str, Any]) -> bool:
        """Write one frame; False (from then on) once the server has dropped the socket."""
        if self.reset:
            return False
        try:
            self.sock.sendall(text_frame(json.dumps(envelope)))
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
        except TimeoutError:
            # The server stopped reading from us: it holds nothing more for us either.
            pass
        return not self.reset

    def is_reset(self) -> bool:
        """Has the server ended the connection? (Reads nothing that is queued.)"""
        state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
        # TCP_CLOSE (reset) or TCP_CLOSE_WAIT (the server closed its side).
        self.reset = self.reset or state in (7, 8)
        return self.reset

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SilentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
