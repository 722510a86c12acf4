"""The Channels adapter: the only module that imports Channels' consumer classes."""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, cast

import anyio
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from actors import presence
from actors._closing import CLOSE_NORMAL, CLOSE_RESTART, close_with_reason
from actors._config import ConsumerConfig
from actors._gc import freeze_start_up
from actors._language import language_from_scope
from actors._settings import EnvelopeSettings
from actors._tracking import ConnectionWatch, check_tracking
from actors.actor import ConnectionActor, Flag, Settled, find_transport
from actors.deferred import DeferredBackend
from actors.pipeline import Stage
from actors.publishing import UNREACHABLE, gate_for, inbox_for
from actors.topics import TopicCommand
from actors.tracing import configure_logging, logger
from handlers import Router

#: Consumers with an open connection in this process, for draining at shutdown.
_live: weakref.WeakSet[EnvelopeConsumer] = weakref.WeakSet()
_hooked = False
_frozen = False
#: Set once this process has begun to shut down: a connection opened since is closed with
#: 4012 right after its handshake (the server still listens while it drains).
_stopping = Flag()
#: How long the closing push and close frame may wait on a socket that does not read
#: (uvicorn awaits the transport on send; daphne never blocks).
CLOSE_SECONDS = 1.0


async def drain_connections() -> None:
    """Answer what every open connection's mailbox holds, then close them with 4012 (restart).

    Under daphne this runs by itself when the server is asked to stop (SIGTERM or
    SIGINT), before it drops its sockets. Under uvicorn, `EnvelopeLifespan` runs it
    on the first stop signal.
    """
    _stopping.set()
    logger.info("server.draining", connections=len(_live))

    async def shut_down(consumer: EnvelopeConsumer) -> None:
        await consumer._shut_down()
        # Give the close handshake a moment, so that clients see 4012 rather than a
        # dropped connection when the server goes on to disconnect everything.
        with anyio.move_on_after(1.0):
            await consumer._gone.wait()

    async with anyio.create_task_group() as tg:
        for consumer in list(_live):
            tg.start_soon(shut_down, consumer)
    await presence.drained(EnvelopeSettings.from_django().layer_timeout)


def _none() -> int:
    return 0


def _hook_server_shutdown() -> None:
    """Under daphne (a Twisted reactor), drain before the reactor disconnects sockets."""
    global _hooked
    if _hooked or "twisted.internet.reactor" not in sys.modules:
        return
    _hooked = True
    # Imported only once daphne has installed its reactor: importing it earlier would
    # install the default one.
    from twisted.internet import defer, reactor

    def before_shutdown() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(drain_connections()))

    cast(Any, reactor).addSystemEventTrigger("before", "shutdown", before_shutdown)


def _freeze_start_up(settings: EnvelopeSettings) -> None:
    """With `ENVELOPE_SERVER_GC_FREEZE`, once per process, at the first connection:
    `freeze_start_up`. A full collection otherwise walks every object of Django and the
    libraries (tens of millions of instructions, tens of milliseconds in which no frame
    is read); the objects connections make are collected as before."""
    global _frozen
    if _frozen or not settings.server_gc_freeze:
        return
    _frozen = True
    logger.info("server.gc_frozen", objects=freeze_start_up())


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
    #: message type -> handler function, filled as types arrive (per class).
    _handlers: dict[str, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}

    def __init__(self, config: ConsumerConfig) -> None:
        self.config = config
        self.actor = None
        self.watch: ConnectionWatch | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._scopes: set[anyio.CancelScope] = set()  # of the tasks `_spawn` started
        self._gone = Flag()  # the connection is over
        #: This connection's messages from the channel layer, when the process reads
        #: them for it (a plain Redis layer); else the consumer reads with `receive`.
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None

    @classmethod
    def as_asgi(
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
        check_tracking(config.settings)
        return super().as_asgi(config=config)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # What AsyncConsumer.__call__ does, without its await_many_dispatch: that waits on
        # both sources with asyncio.wait and makes a new Task per message. Here each source
        # has one long-lived reader task, in the task group that lives as long as the
        # connection (the actor runs in it too).
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        inbox = None
        if self.channel_layer is not None:
            # A plain Redis layer's messages are read in batches for the whole process
            # (actors.publishing._inbox); any other layer's by its own `receive`.
            inbox = inbox_for(self.channel_layer, self.config.settings.layer_timeout)
            if inbox is not None:
                self.channel_name, self._inbox = inbox.open()
            else:
                self.channel_name = await self.channel_layer.new_channel()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                try:
                    if self.channel_layer is not None:
                        self._spawn(self._read_layer)
                    try:
                        while True:
                            await self.dispatch(await receive())
                    except StopConsumer:
                        pass
                except anyio.get_cancelled_exc_class():
                    # The server cancels its applications when it shuts down: finish what
                    # the mailbox holds, then close with 4012 so clients know to reconnect.
                    with anyio.CancelScope(shield=True):
                        await self._shut_down()
                    raise
                finally:
                    _live.discard(self)
                    self._gone.set()
                    if self.actor is not None:
                        await self.actor.stop()
                    if self.watch is not None:  # no websocket.disconnect (server shutdown)
                        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                            await self.watch.closed(None)
                    # Each task of the connection is stopped by its own cancel scope, not by
                    # cancelling the task group: a task that ends with a CancelledError leaves
                    # it in a reference cycle (in anyio's task_done) that holds the task's
                    # frames, so the consumer, the actor and the server's buffers for the
                    # socket would wait for the cyclic collector. The task group then exits
                    # once they are done.
                    for task_scope in list(self._scopes):
                        task_scope.cancel()
        finally:
            if inbox is not None:
                inbox.close(self.channel_name)
                self._inbox = None
            # The consumer and its actor refer to each other (the actor sends through the
            # consumer's methods): let go of the actor, so that what the connection held
            # is freed now, by reference counting, not at the next cyclic collection.
            self.actor = None
            self.watch = None
            self._tg = None

    async def _shut_down(self) -> None:
        """Drain the mailbox (at most ENVELOPE_DRAIN_SECONDS), then close with 4012."""
        actor = self.actor
        if actor is None or actor.closed:
            return
        backend = self.config.backend
        drained = await actor.drain(
            self.config.settings.drain_seconds,
            jobs=partial(backend.jobs_in_flight, actor.address) if backend is not None else _none,
        )
        actor.log.info("connection.drained", complete=drained)
        try:
            with anyio.move_on_after(CLOSE_SECONDS) as waiting:
                await close_with_reason(actor, CLOSE_RESTART, "restart")
            if waiting.cancelled_caught:
                actor.log.warning("connection.close_timed_out", seconds=CLOSE_SECONDS)
        except Exception:
            actor.log.warning("connection.close_failed", exc_info=True)

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `fn(*args)` in the connection's task group, stopped when it closes."""
        assert self._tg is not None
        self._tg.start_soon(self._scoped, fn, args)

    async def _scoped(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        if self._gone.is_set():
            # The connection ended before this task first ran (a handshake refused at
            # once): it is stopped as the started ones are, whose scopes were cancelled;
            # an endless one (the layer's reader) would hold the task group open for ever.
            return
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                await fn(*args)
            finally:
                self._scopes.discard(scope)

    async def _read_layer(self) -> None:
        # A reader that cannot reach the layer must not end the connection (its task
        # group would cancel the socket's loop, which then closes with 4012 as at a
        # restart): it waits for the layer's gate to find the layer back, and reads on.
        layer, name = self.channel_layer, self.channel_name
        inbox = self._inbox
        if inbox is not None:  # filled by the process's reader, which meets the outages
            while True:
                await self.dispatch(await inbox.get())
        gate = gate_for(layer)
        while True:
            try:
                message = await layer.receive(name)
            except UNREACHABLE as exc:
                gate.lost(exc)
                await gate.wait_available()
                continue
            await self.dispatch(message)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch() awaits aclose_old_connections() on every message; this
        # one goes straight to the handler, found once per message type and class.
        handlers = type(self)._handlers
        handler = handlers.get(message["type"])
        if handler is None:
            handler = getattr(type(self), get_handler_name(message), None)
            if handler is None:
                raise ValueError(f"No handler for message type {message['type']}")
            handlers[message["type"]] = handler
        await handler(self, message)

    # -- websocket events ------------------------------------------------------------

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        origins = self.config.origins
        if origins is not None:
            refused = origins.refused(self.scope)
            if refused is not None:
                # Closing before accepting rejects the handshake (daphne answers 403).
                logger.warning(
                    "connection.origin_refused",
                    origin=refused[:200],
                    path=self.scope.get("path"),
                    client=(self.scope.get("client") or [None])[0],
                )
                await self.base_send({"type": "websocket.close", "code": CLOSE_NORMAL})
                # And the application ends here: uvicorn sends no `websocket.disconnect`
                # after a rejected handshake, so an application still waiting for one
                # would hold uvicorn's graceful shutdown until it is killed.
                raise StopConsumer()
        _live.add(self)
        _hook_server_shutdown()
        _freeze_start_up(self.config.settings)
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
            language=language_from_scope(self.scope) if settings.USE_I18N else None,
            transport=find_transport(self.base_send),
        )
        assert self._tg is not None
        await self._tg.start(partial(self.actor.run, task_group=self._tg))
        await self.base_send({"type": "websocket.accept"})
        self.actor.log.info("connection.opened", path=self.scope.get("path"))
        self.watch = ConnectionWatch(self.config.settings, self, self.actor)
        await self.watch.opened()
        if _stopping.is_set():
            self._spawn(self._shut_down)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        assert self.actor is not None
        text = message.get("text")
        await self.actor.receive(text if text is not None else message.get("bytes") or b"")
        if self.watch is not None and self._tg is not None:
            self.watch.touch(self._spawn)

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

    async def envelope_pushes(self, message: dict[str, Any]) -> None:
        # Several for this connection in one message (a fast job's `r` and `s`), in order.
        if self.actor is not None:
            for text in message["texts"]:
                await self.actor.deliver(text)

    async def envelope_close(self, message: dict[str, Any]) -> None:
        if self.actor is not None:
            await self.actor.post_close(int(message.get("code", CLOSE_NORMAL)))

    async def envelope_verify(self, message: dict[str, Any]) -> None:
        # The user's password, activity or existence changed (actors.actor._session).
        if self.actor is not None:
            self.actor.session_changed()

    async def envelope_settle(self, message: dict[str, Any]) -> None:
        # The actor's own marker, back through the layer while it drains.
        if self.actor is not None:
            await self.actor.post(Settled(message["token"]))

    async def envelope_topics(self, message: dict[str, Any]) -> None:
        # A worker's verdict on a subscribe, or a re-check of the subscriptions.
        if self.actor is not None:
            await self.actor.post(TopicCommand(message))

    # -- plumbing ----------------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    async def _close(self, code: int) -> None:
        await self.base_send({"type": "websocket.close", "code": code})
