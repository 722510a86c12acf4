"""The hooks the connection's actor calls when it joins and leaves a topic, and the
presence node of this process (one per event loop, made at the first presence join).

Only authenticated connections count: a user is its pk. An anonymous connection in a
presence topic receives its diffs but is in no one's list.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import uuid
import weakref
from functools import partial
from typing import Any

import anyio
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from actors._blocking import run_blocking
from actors._database import database_work
from actors._settings import EnvelopeSettings
from actors.presence._node import PresenceNode
from actors.presence._store import LocalPresence, PresenceStore, RedisPresence
from actors.publishing import Topic, publish, runs_in_actor, topics

_nodes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceNode] = (
    weakref.WeakKeyDictionary()
)


def node_for(layer: Any) -> PresenceNode:
    """This event loop's presence node, made (and its heartbeat started) the first time."""
    loop = asyncio.get_running_loop()
    node = _nodes.get(loop)
    if node is None:
        settings = EnvelopeSettings.from_django()
        store = store_from_settings(
            settings, f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        )
        node = _nodes[loop] = PresenceNode(
            store,
            window=settings.presence_window,
            heartbeat=settings.presence_heartbeat,
            send=partial(publish, layer=layer),
        )
        if isinstance(store, RedisPresence):
            node.start()
    return node


def running_node() -> PresenceNode | None:
    """This event loop's presence node, if it has one."""
    return _nodes.get(asyncio.get_running_loop())


def store_from_settings(settings: EnvelopeSettings, node: str) -> PresenceStore:
    """Redis at `ENVELOPE_PRESENCE_REDIS`, else the Redis of a channels_redis default layer,
    else this process alone (an in-memory layer reaches no other server either)."""
    layer = (getattr(django_settings, "CHANNEL_LAYERS", None) or {}).get("default", {})
    config = layer.get("CONFIG") or {}
    url = settings.presence_redis
    if url is None and "channels_redis" in str(layer.get("BACKEND", "")):
        url = _url((config.get("hosts") or [("localhost", 6379)])[0])
    prefix = settings.presence_prefix or f"{config.get('prefix', 'asgi')}.presence"
    if url is None:
        return LocalPresence()
    return RedisPresence(
        url, prefix=prefix, node=node, ttl=settings.presence_ttl, timeout=settings.layer_timeout
    )


def _url(host: Any) -> str:
    if isinstance(host, dict):
        host = host.get("address")
    if isinstance(host, str):
        return host
    if isinstance(host, tuple | list) and len(host) == 2:
        return f"redis://{host[0]}:{host[1]}"
    raise ImproperlyConfigured(
        f"presence cannot read a Redis URL from the channel layer's host {host!r}: "
        "set ENVELOPE_PRESENCE_REDIS = 'redis://host:port/db'"
    )


async def drained(timeout: float) -> None:
    """The server stops and its connections are closed: send their leaves now rather than
    leave them to the other servers' reaping (at most `timeout` seconds)."""
    node = running_node()
    if node is not None:
        with anyio.move_on_after(timeout):
            await node.flush()


def presence_user(member: Any) -> str | None:
    return str(member.user.pk) if member.authenticated else None


async def joined(member: Any, topic: str) -> None:
    """`member` (a `ConnectionActor`) joined `topic`: count it if the topic has presence."""
    match = topics.match(topic)
    if match is None or not match.spec.presence:
        return
    # Made for anonymous subscribers too: their server's heartbeat reaps dead servers,
    # whose leaves they are owed.
    node = node_for(member.layer)
    user = presence_user(member)
    if user is None:
        return
    info: dict[str, Any] = {}
    if not node.has(topic, user):
        info = await run_info(match.spec, member.user, member.log)
    if member.closed:  # it closed while the info was made: it has left every topic
        return
    node.join(topic, user, member.address, info)


def left(member: Any, topic: str) -> None:
    """`member` left `topic` (or closed): uncount it."""
    user = presence_user(member)
    node = running_node() if user is not None else None
    if node is not None and user is not None:
        node.leave(topic, user, member.address)


async def run_info(spec: Topic, user: Any, log: Any) -> dict[str, Any]:
    """The topic's `presence_info(user)`: in the actor when it is async or `database_free`,
    else in a thread with the database. One that fails or returns no JSON object is logged
    (`presence.info_failed`) and counts as {}: presence never fails a subscription."""
    hook = spec.presence_info
    if hook is None:
        return {}
    try:
        if inspect.iscoroutinefunction(hook):
            info = await hook(user)
        elif runs_in_actor(hook):
            info = hook(user)
        else:
            info = await run_blocking(_with_database, hook, user)
        if not isinstance(info, dict):
            raise TypeError(f"presence_info returned {type(info).__name__}, not a dict")
        json.dumps(info)
    except Exception:
        log.exception("presence.info_failed", pattern=spec.pattern)
        return {}
    return info


def _with_database(hook: Any, user: Any) -> Any:
    with database_work():
        return hook(user)
