"""Graceful shutdown under servers that run the ASGI lifespan protocol (uvicorn).

Daphne drains by itself (the consumer hooks its Twisted reactor). Uvicorn, asked to stop,
closes every websocket at once with 1012 and sends `lifespan.shutdown` only after the
connections are gone: too late to answer what the mailboxes hold. `EnvelopeLifespan`
serves the lifespan scope; at start-up it wraps the server's SIGTERM and SIGINT handlers
so that the first signal drains every connection (at most `ENVELOPE_DRAIN_SECONDS`, then
a close with 4012, as under daphne) before the server's own handler runs:

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        "lifespan": EnvelopeLifespan(),
    })

The same signal again while draining goes straight to the server (uvicorn: a second
Ctrl-C quits at once); another one is ignored and the drain goes on (Ctrl-C in a
terminal reaches a supervisor and its server alike, and the supervisor then sends
SIGTERM). Where the server's handlers are not Python signal handlers, or the app does
not run in the main thread, nothing is wrapped, and `lifespan.shutdown` drains what is
still open.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from actors._consumer import drain_connections
from actors.tracing import logger

SignalHandler = Callable[[int, FrameType | None], Any]

#: The signals a server stops on; each is wrapped when the server handles it in Python.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EnvelopeLifespan:
    """An ASGI app for the `lifespan` scope: drain connections before the server stops."""

    def __init__(
        self,
        signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
        drain: Callable[[], Awaitable[None]] = drain_connections,
    ) -> None:
        self.signals = signals
        self.drain = drain
        self._signalled: int | None = None  # the signal that started the drain
        self._drain: asyncio.Task[None] | None = None  # kept: the loop holds tasks weakly

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            raise ValueError(f"EnvelopeLifespan serves the lifespan scope, not {scope['type']}")
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.wrap_signal_handlers(asyncio.get_running_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def wrap_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        """Put a drain in front of the server's Python handler of each stop signal; the
        signals wrapped."""
        if threading.current_thread() is not threading.main_thread():
            return []  # only the main thread may set signal handlers
        wrapped = []
        for sig in self.signals:
            server_handler = signal.getsignal(sig)
            if callable(server_handler):
                signal.signal(sig, self._drain_first(loop, server_handler))
                wrapped.append(sig)
        logger.debug("lifespan.signals_wrapped", signals=[s.name for s in wrapped])
        return wrapped

    def _drain_first(
        self, loop: asyncio.AbstractEventLoop, server_handler: SignalHandler
    ) -> SignalHandler:
        async def drain_then_stop(sig: int) -> None:
            try:
                await self.drain()
            finally:
                server_handler(sig, None)

        def on_signal(sig: int, frame: FrameType | None) -> None:
            if self._signalled is not None:
                if sig == self._signalled:
                    server_handler(sig, frame)  # insisting: the server's own way, at once
                return
            self._signalled = sig

            def start() -> None:
                logger.debug("lifespan.stop_signal", signal=signal.Signals(sig).name)
                self._drain = loop.create_task(drain_then_stop(sig))

            # A Python signal handler runs between two bytecodes of the main thread,
            # maybe inside the loop's own code: hand the work to the loop.
            loop.call_soon_threadsafe(start)

        return on_signal
