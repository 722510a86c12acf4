"""Enqueueing a deferred request on RQ from the server's event loop.

RQ's client is blocking. A server enqueued each request in a thread (`run_blocking`):
a thread hop per request, which cost a server about as much CPU as the rest of the
request. Here RQ builds the job as it always does, into a pipeline that only collects
its commands (RQ sends nothing until the pipeline is executed), and those commands go
to Redis from the event loop, in one MULTI/EXEC round trip, on an asyncio Redis client
with the queue's address, database, credentials and timeouts. What lands in Redis is
what `queue.enqueue` writes.

Queues whose connection is not a plain TCP connection pool (Sentinel, TLS, Unix socket,
a client-side cache) are enqueued as before, in a thread.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from actors._blocking import MAX_THREADS, run_blocking
from actors._settings import EnvelopeSettings

_queues: dict[str, Any] = {}


def _queue(name: str) -> Any:
    """The django-rq queue `name`, made once per process: `get_queue` makes a new Redis
    client (and so a new TCP connection) on every call."""
    queue = _queues.get(name)
    if queue is None:
        # Imported when first used: django_rq reads Django settings at import.
        import django_rq

        connection = _without_waits(django_rq.get_connection(name))
        queue = _queues[name] = django_rq.get_queue(name, commit_mode="auto", connection=connection)
    return queue


def _without_waits(client: redis.Redis) -> redis.Redis:
    """`client` with socket timeouts (`ENVELOPE_QUEUE_TIMEOUT`) and no retries: redis-py
    otherwise waits forever on a Redis that hangs, and retries a refused connection three
    times with backoff, while a client waits for `q` (one immediate retry stays: a pooled
    connection may be left over from before a Redis restart). Only plain connection pools (URL,
    host and port) are rebuilt; Sentinel and cache-backed connections are used as they are
    (the enqueue's own deadline still answers the client in time)."""
    pool = client.connection_pool
    if type(pool) is not redis.ConnectionPool:
        return client
    seconds = EnvelopeSettings.from_django().queue_timeout
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(
        socket_timeout=kwargs.get("socket_timeout") or seconds,
        socket_connect_timeout=kwargs.get("socket_connect_timeout") or seconds,
        retry=Retry(NoBackoff(), 1),  # once at once: a pooled connection may be stale
    )
    return redis.Redis(connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs))


#: What an asyncio client takes from a plain TCP connection's settings.
_KEPT = ("host", "port", "db", "username", "password", "socket_timeout", "socket_connect_timeout")

# Event loop -> queue name -> its asyncio client (None: the queue is enqueued in a
# thread). An asyncio client's connections belong to the loop that made them.
_clients: weakref.WeakKeyDictionary[Any, dict[str, redis.asyncio.Redis | None]] = (
    weakref.WeakKeyDictionary()
)


def _async_client(queue: Any) -> redis.asyncio.Redis | None:
    by_name = _clients.setdefault(asyncio.get_running_loop(), {})
    if queue.name not in by_name:
        pool = queue.connection.connection_pool
        client = None
        if type(pool) is redis.ConnectionPool and pool.connection_class is redis.Connection:
            kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _KEPT}
            # As many connections as the threads that enqueued before (a burst waits for
            # one; the enqueue's deadline still answers in time).
            connections = redis.asyncio.BlockingConnectionPool(
                max_connections=MAX_THREADS,
                timeout=None,
                retry=AsyncRetry(NoBackoff(), 1),
                **kwargs,
            )
            client = redis.asyncio.Redis(connection_pool=connections)
        by_name[queue.name] = client
    return by_name[queue.name]


async def enqueue(queue: Any, fn: Callable[..., Any], req: Any, options: dict[str, Any]) -> None:
    """`queue.enqueue(fn, req, **options)` in one round trip, from the event loop when
    the queue's connection allows it (else in a thread). Raises what redis-py raises
    when Redis cannot be reached."""
    client = _async_client(queue)
    if client is None:
        await run_blocking(_enqueue_blocking, queue, fn, req, options)
        return
    collected = queue.connection.pipeline()  # collects; sends nothing until executed
    try:
        queue.enqueue(fn, req, pipeline=collected, **options)
        commands = list(collected.command_stack)
    finally:
        collected.reset()
    async with client.pipeline(transaction=True) as pipe:
        for args, kwargs in commands:
            pipe.execute_command(*args, **kwargs)
        await pipe.execute()


def _enqueue_blocking(
    queue: Any, fn: Callable[..., Any], req: Any, options: dict[str, Any]
) -> None:
    # One round trip to Redis instead of two (RQ registers the queue, then saves and
    # pushes the job), in one MULTI/EXEC: the request's `q` waits for it.
    with queue.connection.pipeline() as pipe:
        queue.enqueue(fn, req, pipeline=pipe, **options)
        pipe.execute()
