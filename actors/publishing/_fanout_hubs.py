"""One `FanoutHub` per channel layer and event loop, found by `fanout_for`; the hubs code
outside a connection publishes through (`topic_sender`); the in-process fan-out."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from actors._settings import EnvelopeSettings
from actors.publishing._fanout import FanoutHub
from actors.publishing._fanout_redis import redis_options
from actors.publishing._worker_loop import on_worker_loop

_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, FanoutHub]] = (
    weakref.WeakKeyDictionary()
)


def fanout_for(layer: Any) -> FanoutHub:
    """The hub of `layer` on the running event loop, made when first needed (with the
    Django settings). Make it only on a loop that lives as long as the process (a
    server's, a worker's): its Redis connections stay open."""
    loop = asyncio.get_running_loop()
    hubs = _hubs.setdefault(loop, {})
    hub = hubs.get(id(layer))
    if hub is None or hub.layer is not layer:
        settings = EnvelopeSettings.from_django()
        hub = hubs[id(layer)] = FanoutHub(
            layer,
            redis_options(layer, settings.fanout_redis),
            connections=settings.layer_connections,
            timeout=settings.layer_timeout,
            in_process=deliver_in_process,
        )
    return hub


def existing_fanout(layer: Any) -> FanoutHub | None:
    """The hub of `layer` on the running loop, if one was made there."""
    hub = _hubs.get(asyncio.get_running_loop(), {}).get(id(layer))
    return hub if hub is not None and hub.layer is layer else None


def deliver_in_process(layer: Any, channel: bytes, data: bytes) -> None:
    """The in-process fan-out: to the hubs of `layer` in every loop of this process (a
    job's thread publishes to the server's loop), in the order of the calls."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for loop, hubs in list(_hubs.items()):
        hub = hubs.get(id(layer))
        if hub is None or hub.layer is not layer or not hub.local_channel(channel):
            continue
        if loop is running or not loop.is_running():
            hub.dispatch(channel, data)
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(hub.dispatch, channel, data)
            except RuntimeError:  # closed meanwhile
                pass


@asynccontextmanager
async def topic_sender(layer: Any) -> AsyncIterator[FanoutHub]:
    """A hub to publish through from code outside a connection: the running loop's when
    it has one (a server's) or lives as long as the process (a worker's), else one for
    this block whose connection is closed at its end (a view's or a job's short loop)."""
    hub = existing_fanout(layer)
    if hub is None and on_worker_loop():
        hub = fanout_for(layer)
    if hub is not None:
        yield hub
        return
    settings = EnvelopeSettings.from_django()
    hub = FanoutHub(
        layer,
        redis_options(layer, settings.fanout_redis),
        connections=1,
        timeout=settings.layer_timeout,
        lasting=False,
        in_process=deliver_in_process,
    )
    try:
        yield hub
    finally:
        await hub.aclose()
