"""`EnvelopeLifespan`: the first stop signal drains before the server's own handler runs.

The drain itself, over real sockets under uvicorn, is in test_server.py; here it is a
recording stand-in, and the signal is SIGUSR1 so that pytest's own handlers stay put.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import anyio
import pytest

from actors import EnvelopeLifespan

SIG, OTHER = signal.SIGUSR1, signal.SIGUSR2


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """What happened, in order: the stand-in drain and the "server's" SIGUSR1 handler."""
    seen: list[str] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:
        seen.append(f"server:{signal.Signals(sig).name}")

    previous = {sig: signal.signal(sig, server_handler) for sig in (SIG, OTHER)}
    try:
        yield seen
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Lifespan:
    """Drives an ASGI lifespan app as a server does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def send(self, message: dict[str, str]) -> None:
        await self.from_app.put(message)

    async def event(self, kind: str) -> str:
        await self.to_app.put({"type": f"lifespan.{kind}"})
        return (await self.from_app.get())["type"]


def recording_drain(calls: list[str], release: anyio.Event | None = None) -> Any:
    async def drain() -> None:
        calls.append("drain")
        if release is not None:
            await release.wait()

    return drain


async def until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 (a signal handler sets it: nothing to await)
            await anyio.sleep(0.01)


async def test_the_first_signal_drains_then_hands_over_to_the_server(calls: list[str]) -> None:
    lifespan = Lifespan(EnvelopeLifespan(signals=(SIG,), drain=recording_drain(calls)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lifespan.app, {"type": "lifespan"}, lifespan.to_app.get, lifespan.send)
        assert await lifespan.event("startup") == "lifespan.startup.complete"
        os.kill(os.getpid(), SIG)
        await until(lambda: len(calls) == 2)
        assert calls == ["drain", "server:SIGUSR1"]
        # The server then sends lifespan.shutdown: drained again (nothing left to drain).
        assert await lifespan.event("shutdown") == "lifespan.shutdown.complete"
    assert calls == ["drain", "server:SIGUSR1", "drain"]


async def test_the_same_signal_again_while_draining_goes_to_the_server_at_once(
    calls: list[str],
) -> None:
    release = anyio.Event()
    lifespan = Lifespan(EnvelopeLifespan(signals=(SIG,), drain=recording_drain(calls, release)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lifespan.app, {"type": "lifespan"}, lifespan.to_app.get, lifespan.send)
        await lifespan.event("startup")
        os.kill(os.getpid(), SIG)
        await until(lambda: calls == ["drain"])
        os.kill(os.getpid(), SIG)  # e.g. a second Ctrl-C: uvicorn quits without waiting
        await until(lambda: len(calls) == 2)
        assert calls == ["drain", "server:SIGUSR1"]
        release.set()
        await until(lambda: len(calls) == 3)
        assert calls == ["drain", "server:SIGUSR1", "server:SIGUSR1"]
        tg.cancel_scope.cancel()


async def test_another_signal_while_draining_waits_for_the_drain(calls: list[str]) -> None:
    release = anyio.Event()
    app = EnvelopeLifespan(signals=(SIG, OTHER), drain=recording_drain(calls, release))
    lifespan = Lifespan(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lifespan.app, {"type": "lifespan"}, lifespan.to_app.get, lifespan.send)
        await lifespan.event("startup")
        os.kill(os.getpid(), OTHER)  # e.g. Ctrl-C reached the server and its supervisor ...
        await until(lambda: calls == ["drain"])
        # ... which then sends SIGTERM. (Python runs a handler at once in the main thread,
        # before os.kill returns to this code, so it has run by the next line.)
        os.kill(os.getpid(), SIG)
        assert calls == ["drain"]  # the drain goes on
        release.set()
        await until(lambda: len(calls) == 2)
        assert calls == ["drain", "server:SIGUSR2"]
        tg.cancel_scope.cancel()


async def test_signals_the_server_does_not_handle_in_python_are_left_alone() -> None:
    previous = signal.signal(SIG, signal.SIG_IGN)
    try:
        wrapped = EnvelopeLifespan(signals=(SIG,)).wrap_signal_handlers(asyncio.get_running_loop())
        assert wrapped == []
        assert signal.getsignal(SIG) is signal.SIG_IGN
    finally:
        signal.signal(SIG, previous)


async def test_it_serves_only_the_lifespan_scope() -> None:
    with pytest.raises(ValueError, match="lifespan scope, not websocket"):
        await EnvelopeLifespan()({"type": "websocket"}, None, None)
