"""Test tools: drive an actor without Channels, or a consumer through a communicator,
and capture the trace events logged meanwhile (see docs/testing.md).

    async with ActorHarness(routers=[chat]) as client:
        with capture_trace() as events:
            reply = await client.request("chat.send", {"room": "a", "text": "hi"})
        assert reply.s is State.SUCCESS

`ActorHarness` (the real pipeline, no Channels), `EnvelopeCommunicator` (Channels'
communicator, speaking envelopes), `WithUser` (a user in the scope without sessions),
`login_headers` (a real session cookie), `capture_trace` (trace events as dicts).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import anyio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from actors._config import ConsumerConfig, DeferredBackend
from actors.actor import ConnectionActor
from actors.pipeline import Stage
from actors.tracing import capture_trace
from envelope import Envelope, State, dumps, parse_reply
from handlers import Router

_ids = itertools.count(1)


def _frame(t: str, p: Any = None, i: str | int | None = None, **extra: Any) -> str:
    out: dict[str, Any] = {"t": t}
    if i is not None:
        out["i"] = i
    if p is not None:
        out["p"] = p
    out.update(extra)
    return dumps(out)


class _Client:
    """Shared by both tools: request/reply bookkeeping over `send_frame` / `receive`."""

    async def send_frame(self, frame: str | bytes) -> None:
        raise NotImplementedError

    async def receive(self, timeout: float = 2.0) -> Envelope:
        raise NotImplementedError

    async def send(self, t: str, p: Any = None, *, i: str | int | None = None, **extra: Any) -> str:
        """Send one envelope; returns its `i` (one is made up when not given)."""
        if i is None:
            i = f"test-{next(_ids)}"
        await self.send_frame(_frame(t, p, i, **extra))
        return str(i)

    async def request(
        self, t: str, p: Any = None, *, i: str | None = None, timeout: float = 2.0
    ) -> Envelope:
        """Send and return the terminal reply (`s` or `f`) to it; earlier frames are kept
        in `self.seen`."""
        trace = await self.send(t, p, i=i)
        return await self.until_terminal(trace, timeout=timeout)

    async def until_terminal(self, trace: str, timeout: float = 2.0) -> Envelope:
        """The terminal reply to `trace`: one already received (in `seen`), or the next."""
        for env in self.seen:
            if env.i == trace and env.s is not None and env.s.terminal:
                return env
        with anyio.fail_after(timeout):
            while True:
                env = await self.receive(timeout=timeout)
                self.seen.append(env)
                if env.i == trace and env.s is not None and env.s.terminal:
                    return env

    seen: list[Envelope]


class _Started:
    """A task status that sets an event (the actor's `run` reports it has started)."""

    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    def started(self, value: Any = None) -> None:
        self._event.set()


class ActorHarness(_Client):
    """An actor with the real pipeline, fed frames directly and read back as envelopes."""

    def __init__(
        self,
        routers: Sequence[Router] | None = None,
        *,
        pipeline: Sequence[str | Stage] | None = None,
        user: Any = None,
        scope: dict[str, Any] | None = None,
        address: str | None = None,
        layer: Any = None,
        backend: DeferredBackend | None = None,
        **settings: Any,
    ) -> None:
        self.config = ConsumerConfig.build(routers, pipeline, backend, **settings)
        self._out_send, self._out_receive = anyio.create_memory_object_stream[str](10_000)
        self.closed_with: int | None = None
        self.actor = ConnectionActor(
            self.config,
            self._out_send.send,
            scope=scope,
            user=user,
            address=address,
            layer=layer,
            close=self._close,
        )
        self.seen = []
        self._task: asyncio.Task[None] | None = None

    async def _close(self, code: int) -> None:
        self.closed_with = code

    async def __aenter__(self) -> ActorHarness:
        # The actor runs in a task of its own, so that the harness can be entered and
        # left from different tasks (as async pytest fixtures do).
        started = asyncio.Event()

        async def run() -> None:
            await self.actor.run(task_status=_Started(started))

        self._task = asyncio.create_task(run())
        await started.wait()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.actor.stop()
        if self._task is not None:
            await self._task
        self._out_send.close()
        self._out_receive.close()

    async def send_frame(self, frame: str | bytes) -> None:
        await self.actor.receive(frame)

    async def receive(self, timeout: float = 2.0) -> Envelope:
        with anyio.fail_after(timeout):
            return parse_reply(await self._out_receive.receive())

    def pending(self) -> list[Envelope]:
        """Whatever has been sent and not yet received, without waiting."""
        out = []
        while True:
            try:
                out.append(parse_reply(self._out_receive.receive_nowait()))
            except anyio.WouldBlock:
                return out


class EnvelopeCommunicator(WebsocketCommunicator, _Client):
    """Channels' `WebsocketCommunicator`, speaking envelopes."""

    def __init__(self, application: Any, path: str = "/ws/", **kwargs: Any) -> None:
        super().__init__(application, path, **kwargs)
        self.seen = []

    async def send_frame(self, frame: str | bytes) -> None:
        # send_input, not send_to: an empty frame is a frame too.
        key = "bytes" if isinstance(frame, bytes) else "text"
        await self.send_input({"type": "websocket.receive", key: frame})

    async def receive(self, timeout: float = 2.0) -> Envelope:
        message = await self.receive_output(timeout)
        if message["type"] == "websocket.close":
            raise ConnectionError(f"the server closed the socket with {message.get('code')}")
        return parse_reply(message["text"])


class WithUser:
    """ASGI middleware that puts `user` in the scope, in place of the project's auth
    middleware, for tests that need a user without sessions or a database:

        app = WithUser(EnvelopeConsumer.as_asgi(routers=[chat]), user)
    """

    def __init__(self, app: Any, user: Any) -> None:
        self.app = app
        self.user = user

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        return await self.app({**scope, "user": self.user}, receive, send)


async def login_headers(user: Any) -> list[tuple[bytes, bytes]]:
    """Headers carrying a real session cookie for `user`, for a communicator whose app is
    wrapped in Channels' `AuthMiddlewareStack`:

        client = EnvelopeCommunicator(app, headers=await login_headers(user))
    """

    def login() -> str:
        client = Client()
        client.force_login(user)
        return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    session_key = await sync_to_async(login)()
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
    return [(b"cookie", cookie.encode("latin-1")), (b"origin", b"http://testserver")]


__all__ = [
    "ActorHarness",
    "EnvelopeCommunicator",
    "State",
    "WithUser",
    "capture_trace",
    "login_headers",
]
