"""The Channels adapter: the only module that imports Channels' consumer classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer

from actors._actor import ConnectionActor
from actors._config import ConsumerConfig, DeferredBackend
from actors._connections import ConnectionWatch
from actors._logging import configure_logging
from actors._pipeline import Stage
from actors._subscriptions import TopicCommand
from handlers import Router

#: Close codes the server uses (documented in the README's table).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_RESTART = 1012
CLOSE_LOGGED_OUT = 4001  # the user logged out (a `connection.closing` push comes first)


class EnvelopeConsumer(AsyncConsumer):
    """A websocket consumer whose connection is a `ConnectionActor`.

        websocket_urlpatterns = [
            path("ws/", EnvelopeConsumer.as_asgi(routers=[chat, votes])),
        ]

    Unlike Channels' own consumers it does not run `aclose_old_connections()` (a thread
    hop) for every frame: async handlers never touch the database, and deferred ones
    close old connections on their worker.
    """

    actor: ConnectionActor | None
    config: ConsumerConfig

    def __init__(self, config: ConsumerConfig) -> None:
        self.config = config
        self.actor = None
        self.watch: ConnectionWatch | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    @classmethod
    def as_asgi(  # type: ignore[override]
        cls,
        *,
        routers: Sequence[Router] | None = None,
        pipeline: Sequence[str | Stage] | None = None,
        backend: DeferredBackend | None = None,
        **settings: Any,
    ) -> Any:
        """An ASGI app serving `routers` (default: the default router).

        Settings (`ENVELOPE_*`) are read and the pipeline is built here, once; keyword
        arguments override settings by their lower-case name (`mailbox_size=16`).
        """
        configure_logging()
        config = ConsumerConfig.build(routers, pipeline, backend, **settings)
        return super().as_asgi(config=config)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # The task group lives as long as the connection: the actor runs in it.
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                await super().__call__(scope, receive, send)
            finally:
                if self.actor is not None:
                    await self.actor.stop()
                tg.cancel_scope.cancel()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch() awaits aclose_old_connections() on every message; this
        # one goes straight to the handler.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- websocket events ------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        layer = getattr(self, "channel_layer", None)
        address = getattr(self, "channel_name", None) if layer is not None else None
        self.actor = ConnectionActor(
            self.config,
            self._send_text,
            scope=self.scope,
            user=self.scope.get("user"),
            address=address,
            layer=layer,
            close=self._close,
        )
        assert self._tg is not None
        await self._tg.start(self.actor.run)
        await self.base_send({"type": "websocket.accept"})
        self.actor.log.info("connection.opened", path=self.scope.get("path"))
        self.watch = ConnectionWatch(self.config.settings, self, self.actor)
        await self.watch.opened()

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        assert self.actor is not None
        text = message.get("text")
        await self.actor.receive(text if text is not None else message.get("bytes") or b"")
        if self.watch is not None and self._tg is not None:
            self.watch.touch(self._tg.start_soon)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        actor = self.actor
        if actor is not None:
            await actor.stop()
            if self.watch is not None:
                await self.watch.closed(message.get("code"))
            actor.log.info(
                "connection.closed",
                code=message.get("code"),
                handled=actor.handled_count,
                failed=actor.failed_count,
            )
        raise StopConsumer()

    # -- channel-layer events ----------------------------------------------------------

    async def envelope_push(self, message: dict[str, Any]) -> None:
        if self.actor is not None:
            await self.actor.deliver(message["text"])

    async def envelope_close(self, message: dict[str, Any]) -> None:
        if self.actor is not None:
            await self.actor.post_close(int(message.get("code", CLOSE_NORMAL)))

    async def envelope_topics(self, message: dict[str, Any]) -> None:
        # A worker's verdict on a subscribe, or a re-check of the subscriptions.
        if self.actor is not None:
            await self.actor.post(TopicCommand(message))

    # -- plumbing ----------------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def _close(self, code: int) -> None:
        await self.base_send({"type": "websocket.close", "code": code})
