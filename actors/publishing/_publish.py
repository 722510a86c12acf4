"""Pushing models to topics and connections, from async code now or from sync code on commit.

    await publish("room.lobby", ChatMessage(...))          # async: now, every server
    await tell(ctx.connection, Notice(...))                # async: one connection
    publish_on_commit("room.lobby", ChatMessage(...))      # sync: when the transaction commits
    tell_on_commit(address, Notice(...))                   # sync: idem, one connection

A push is encoded once, whatever the number of receivers, and carries the `i` that caused
it when there is one: pass `i=`; the sync functions otherwise take the `i` bound in
structlog's context variables (workers bind the job's `i`).

A topic's push is one Redis PUBLISH, which each server subscribed to the topic hands to
its own subscribers (`actors.publishing._fanout`); a push to one connection goes through
the channel layer. Both are bounded: when Redis is away or does not answer within
`ENVELOPE_LAYER_TIMEOUT`, `publish` and `tell` raise `envelope.TopicsUnavailable` (a
`Failure`: raised in a handler, the request is answered `topics_unavailable`). An
on-commit push cannot raise into the commit that sent it: one that cannot be sent is
logged as `push.lost` (an error) under its `i`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio.from_thread
import structlog
from channels.layers import get_channel_layer
from django.db import transaction
from pydantic import BaseModel

from actors.publishing._batch import Pending, Send, hold_until_commit
from actors.publishing._fanout import FanoutHub
from actors.publishing._fanout_hubs import topic_sender
from actors.publishing._gate import bounded_call
from actors.publishing._topics import (
    CLOSE,
    PUSH,
    TOPICS,
    check_topic_name,
    group_for,
    push_message,
)
from actors.publishing._worker_loop import run_sync
from actors.tracing import current_span_context, logger, publish_span
from envelope import TopicsUnavailable, loads, wire_name


def _layer(layer: Any, what: str) -> Any:
    layer = layer if layer is not None else get_channel_layer()
    if layer is None:
        raise RuntimeError(f"{what} needs CHANNEL_LAYERS to be configured")
    return layer


async def publish(topic: str, model: BaseModel, *, i: str | None = None, layer: Any = None) -> None:
    """Push `model` now to every connection subscribed to `topic`, on every server: one
    Redis PUBLISH of the frame, encoded once (see `actors.publishing._fanout`).

    Raises `envelope.TopicsUnavailable` when Redis cannot be reached within
    `ENVELOPE_LAYER_TIMEOUT` (at once while this server's hub knows it is away)."""
    text = push_message(model, i)["text"]
    check_topic_name(topic)
    t = wire_name(model)
    with publish_span(t, topic=topic, i=i):
        async with topic_sender(_layer(layer, "publish()")) as hub:
            await hub.publish_text(topic, text)
    logger.info("push.published", i=i, t=t, topic=topic)


async def tell(address: str, model: BaseModel, *, i: str | None = None, layer: Any = None) -> None:
    """Push `model` now to one connection, by its address (its channel name), from anywhere.

    Raises `envelope.TopicsUnavailable` like `publish`."""
    t = wire_name(model)
    with publish_span(t, to=address, i=i):
        await bounded_call(_layer(layer, "tell()"), "send", address, push_message(model, i))
    logger.info("push.published", i=i, t=t, to=address)


def publish_on_commit(
    topic: str, model: BaseModel, *, i: str | None = None, using: str | None = None
) -> None:
    """From sync code: push `model` to `topic` if and when the current transaction of
    `using` commits (now, when there is no transaction). Pushes of one transaction keep
    their order; a run of three or more of one type to one topic is sent as one batch."""
    pending = Pending("topic", topic, model, _trace(i), origin=current_span_context())
    hold_until_commit(pending, send_sync, using)


def tell_on_commit(
    address: str, model: BaseModel, *, i: str | None = None, using: str | None = None
) -> None:
    """From sync code: push `model` to one connection if and when the transaction commits."""
    pending = Pending("address", address, model, _trace(i), origin=current_span_context())
    hold_until_commit(pending, send_sync, using)


def subscribe_on_commit(address: str, topic: str, *, using: str | None = None) -> None:
    """From sync code: have connection `address` join `topic` once the transaction commits.

    No permission check (the caller decided); the connection's actor does the join, so it
    lists the topic and leaves it on disconnect.
    """
    _command_on_commit(address, "join", topic, using)


def leave_on_commit(address: str, topic: str, *, using: str | None = None) -> None:
    """From sync code: have connection `address` leave `topic` once the transaction commits."""
    _command_on_commit(address, "leave", topic, using)


def _command_on_commit(address: str, op: str, topic: str, using: str | None) -> None:
    group_for(topic)  # a bad topic name fails here, in the caller's code
    message = {"type": TOPICS, "op": op, "topic": topic}
    transaction.on_commit(lambda: send_sync([("address", address, message)]), using=using)


def _trace(i: str | None) -> str | None:
    if i is not None:
        return i
    found = structlog.contextvars.get_contextvars().get("i")
    return found if isinstance(found, str) else None


_local = threading.local()


@contextmanager
def pushes_through(send: Send) -> Iterator[None]:
    """Within this block, in this thread, on-commit pushes are sent by `send(sends)`.

    The thread backend wraps its jobs with ``pushes_through(thread_sender(token))``, so
    that they reach an in-memory channel layer on the server's event loop; elsewhere
    (RQ workers, views) the pushes go through `actors.publishing._worker_loop.run_sync`.
    """
    with _thread_bound("send", send):
        yield


@contextmanager
def before_pushes(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block, in this thread, `callback()` runs before each batch of on-commit
    pushes and commands is sent: a worker sends a job's held `r` there, so that nothing
    the job causes reaches its connection before it."""
    with _thread_bound("before", callback):
        yield


@contextmanager
def _thread_bound(name: str, value: Any) -> Iterator[None]:
    previous = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


def thread_sender(token: Any) -> Send:
    """A `send` running the channel-layer calls on the event loop of `token`
    (`anyio.lowlevel.current_token()`), from a worker thread."""

    def send(sends: list[tuple[str, str, dict[str, Any]]]) -> None:
        anyio.from_thread.run(_send_all, sends, token=token)

    return send


def send_sync(sends: list[tuple[str, str, dict[str, Any]]]) -> None:
    before = getattr(_local, "before", None)
    if before is not None:
        before()
    override = getattr(_local, "send", None)
    if override is not None:
        override(sends)
    else:
        run_sync(_send_all, sends)


async def _send_all(sends: list[tuple[str, str, dict[str, Any]]], layer: Any = None) -> None:
    """Send on-commit pushes and commands in order. The first that cannot reach the layer
    ends the run: it and the rest are logged `push.lost`, each under its `i`."""
    layer = _layer(layer, "publishing")
    async with topic_sender(layer) as hub:
        for n, (kind, target, message) in enumerate(sends):
            try:
                if kind == "topic":
                    await _to_topic(hub, target, message)
                else:
                    await bounded_call(layer, "send", target, message)
            except TopicsUnavailable as exc:
                _lost(sends[n:], exc)
                return
            if message.get("type") == PUSH:
                logger.info("push.published", **_described(kind, target, message))


async def _to_topic(hub: FanoutHub, topic: str, message: dict[str, Any]) -> None:
    if message.get("type") == PUSH:
        await hub.publish_text(topic, message["text"])
    else:
        await hub.publish_message(topic, message)


def _described(kind: str, target: str, message: dict[str, Any]) -> dict[str, Any]:
    where = {"topic": target} if kind == "topic" else {"to": target}
    if message.get("type") == PUSH:
        head = loads(message["text"])
        return {"i": head.get("i"), "t": head.get("t"), **where}
    return {"op": message.get("op"), "command_topic": message.get("topic"), **where}


def _lost(sends: list[tuple[str, str, dict[str, Any]]], exc: TopicsUnavailable) -> None:
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    for kind, target, message in sends:
        logger.error("push.lost", error=type(cause).__name__, **_described(kind, target, message))


# -- to every socket of a user, and commands to actors ------------------------------------


async def close_group(topic: str, code: int, *, layer: Any = None) -> None:
    """Close every connection subscribed to `topic` with `code`, after what they have queued."""
    check_topic_name(topic)
    async with topic_sender(_layer(layer, "close_group()")) as hub:
        await hub.publish_message(topic, {"type": CLOSE, "code": code})


async def command_group(topic: str, op: str, *, layer: Any = None, **fields: Any) -> None:
    """Send a topic command (see `actors.topics._subscriptions`) to every connection in `topic`."""
    check_topic_name(topic)
    async with topic_sender(_layer(layer, "topics")) as hub:
        await hub.publish_message(topic, {"type": TOPICS, "op": op, **fields})


async def command(address: str, op: str, *, layer: Any = None, **fields: Any) -> None:
    """Send a topic command to one connection."""
    message = {"type": TOPICS, "op": op, **fields}
    await bounded_call(_layer(layer, "topics"), "send", address, message)
