"""Enqueueing a deferred request on RQ from the server's event loop.

RQ's client is blocking. A server enqueued each request in a thread (`run_blocking`):
a thread hop per request, which cost a server about as much CPU as the rest of the
request. Here RQ builds the job as it always does, into a pipeline that only collects
its commands (RQ sends nothing until the pipeline is executed), and those commands go
to Redis from the event loop, in one round trip, on a connection of an asyncio Redis
client with the queue's address, database, credentials and timeouts, packed and read
here. They run in one Lua script (`EVALSHA` of `_rq_scripts.RUN`, the commands as its
ARGV; `EVAL` once when Redis does not hold the script, after a restart or a `SCRIPT
FLUSH`): as atomic as the MULTI/EXEC that carried them before, and one reply to read
instead of five (MULTI's, a QUEUED per command, EXEC's), each read under its own
asyncio timeout. What lands in Redis is what `queue.enqueue` writes.

Queues whose connection is not a plain TCP connection pool (Sentinel, TLS, Unix socket,
a client-side cache) are enqueued as before, in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import weakref
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Callback
from rq import Retry as JobRetry

from actors._blocking import MAX_THREADS, run_blocking
from actors._settings import EnvelopeSettings
from actors.deferred._rq_scripts import RUN
from actors.deferred._rq_template import JobTemplate, encoded, words_of

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


class _Connections:
    """An asyncio client's connections for the enqueue, at most `MAX_THREADS` (as many
    as the threads that enqueued before: a burst waits for one; the enqueue's deadline
    still answers in time), kept here between enqueues rather than given back to the
    pool. The pool checks each connection it hands out for unread data (a non-blocking
    read under a timeout of its own) and takes its condition, lock and bookkeeping on
    the way out and back in: tens of thousands of instructions per enqueue. A
    connection is kept only with no answer left unread: its one reply read, or
    disconnected (redis-py disconnects on a failed or interrupted write or read; so does
    `enqueue` when it did not get to the reply); a disconnected one connects again when
    next used."""

    __slots__ = ("_idle", "_pool")

    def __init__(self, pool: redis.asyncio.ConnectionPool) -> None:
        self._pool = pool
        # Connections last in, first out; None: one still to take from the pool.
        self._idle: asyncio.LifoQueue[Any] = asyncio.LifoQueue()
        for _ in range(MAX_THREADS):
            self._idle.put_nowait(None)

    async def get(self) -> Any:
        conn = await self._idle.get()
        if conn is None:
            try:
                pool = self._pool
                conn = await (pool.get_connection("_") if _NAMED_GET else pool.get_connection())
            except BaseException:
                self._idle.put_nowait(None)
                raise
        return conn

    def put(self, conn: Any) -> None:
        self._idle.put_nowait(conn)


# Event loop -> queue name -> its asyncio client's connections (None: the queue is
# enqueued in a thread). An asyncio client's connections belong to the loop that made
# them.
_clients: weakref.WeakKeyDictionary[Any, dict[str, _Connections | None]] = (
    weakref.WeakKeyDictionary()
)


def _connections(queue: Any) -> _Connections | None:
    by_name = _clients.setdefault(asyncio.get_running_loop(), {})
    if queue.name not in by_name:
        pool = queue.connection.connection_pool
        kept = None
        if type(pool) is redis.ConnectionPool and pool.connection_class is redis.Connection:
            kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in _KEPT}
            # Never waited on: `_Connections` takes at most this many.
            connections = redis.asyncio.BlockingConnectionPool(
                max_connections=MAX_THREADS,
                timeout=None,
                retry=AsyncRetry(NoBackoff(), 1),
                **kwargs,
            )
            kept = _Connections(connections)
        by_name[queue.name] = kept
    return by_name[queue.name]


async def enqueue(queue: Any, fn: Callable[..., Any], req: Any, options: dict[str, Any]) -> None:
    """`queue.enqueue(fn, req, **options)` in one round trip, from the event loop when
    the queue's connection allows it (else in a thread). Raises what redis-py raises
    when Redis cannot be reached. A job of a shape seen before is written from its
    template (see `actors.deferred._rq_template`), without RQ's building."""
    kept = _connections(queue)
    if kept is None:
        await run_blocking(_enqueue_blocking, queue, fn, req, options)
        return
    conn = await kept.get()
    answered = False
    try:
        argv, count = _commands(queue, fn, req, options, conn.encoder)
        try:
            # As redis-py's pipeline: a connection error is retried once, on a new
            # connection.
            await conn.retry.call_with_retry(
                lambda: _run(conn, argv, count), lambda error: conn.disconnect()
            )
        except redis.exceptions.ResponseError:
            answered = True  # refused: its reply was read
            raise
        answered = True
    finally:
        try:
            if not answered:
                # Not sent, or its reply not read (a failure, a cancellation): redis-py
                # disconnects then, and so does this, so that no connection kept has an
                # answer left unread. Without waiting: this may run while cancelled.
                await conn.disconnect(nowait=True)
        finally:
            kept.put(conn)


# (queue, function, options but the job's id) -> its job's template; None: RQ builds
# each job of that shape.
_templates: dict[tuple[Any, ...], JobTemplate | None] = {}
_MAX_TEMPLATES = 1024


def _commands(
    queue: Any, fn: Callable[..., Any], req: Any, options: dict[str, Any], encoder: Any
) -> tuple[bytes, int]:
    """The script's ARGV that enqueues the job, packed, and its count of words."""
    job_id = options.get("job_id")
    shape = _shape(queue, fn, options) if isinstance(job_id, str) else None
    template = _templates.get(shape) if shape is not None else None
    description = options.get("description")
    if template is not None and template.queue is queue:
        packed = template.packed(job_id, req, encoder, description)  # type: ignore[arg-type]
        return packed, template.words
    collected = queue.connection.pipeline()  # collects; sends nothing until executed
    try:
        queue.enqueue(fn, req, pipeline=collected, **options)
        commands = [args for args, _ in collected.command_stack]
    finally:
        collected.reset()
    if shape is not None and (shape not in _templates or template is not None):
        if len(_templates) >= _MAX_TEMPLATES:
            _templates.clear()
        _templates[shape] = JobTemplate.learn(
            commands,
            queue,
            job_id,  # type: ignore[arg-type]
            req,
            encoder,
            description,
        )
    return _packed(commands, encoder)


def _shape(queue: Any, fn: Callable[..., Any], options: dict[str, Any]) -> tuple[Any, ...] | None:
    """What makes two jobs' hashes alike but for their own values; None for options
    not known here (their jobs are built by RQ)."""
    # The queue by identity (RQ's queues are equal by name): its job class, serializer
    # and default timeout are in the template.
    shape: list[Any] = [id(queue), fn]
    for name, value in sorted(options.items()):
        if name == "job_id":
            continue
        if name == "description" and isinstance(value, str):
            shape.append((name, str))  # each job's own, put in as its id is
            continue
        if isinstance(value, Callback):
            value = ("callback", value.func, value.timeout)
        elif isinstance(value, JobRetry):
            value = ("retry", value.max, tuple(value.intervals), value.enqueue_at_front)
        elif value is not None and type(value) not in (int, str, bool):
            return None
        shape.append((name, value))
    return tuple(shape)


# redis-py < 6 wants a command name to hand out a pooled connection.
_NAME = inspect.signature(redis.asyncio.ConnectionPool.get_connection).parameters.get(
    "command_name"
)
_NAMED_GET = _NAME is not None and _NAME.default is inspect.Parameter.empty
_SCRIPT = RUN.encode()
_SHA = hashlib.sha1(_SCRIPT).hexdigest().encode()
_EVALSHA = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n" + _SHA + b"\r\n$1\r\n0\r\n"
_EVAL = b"*%%d\r\n$4\r\nEVAL\r\n$%d\r\n%%b\r\n$1\r\n0\r\n" % len(_SCRIPT)


def _packed(commands: list[tuple[Any, ...]], encoder: Any) -> tuple[bytes, int]:
    """`commands` as the ARGV of `_rq_scripts.RUN` (each command's count of words, then
    its words) in the Redis protocol, and the count of words: the bytes redis-py would
    send for them as a script's arguments, made in one pass (redis-py's packing and its
    pipeline's bookkeeping were a fifth of the enqueue's CPU). Values are encoded as
    redis-py encodes them (`encoder`: its rules and refusals, and its encoding)."""
    argv = words_of(commands)
    out = []
    for arg in argv:
        data = encoded(arg, encoder)
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out), len(argv)


async def _run(conn: Any, argv: bytes, count: int) -> None:
    """Run the commands of `argv` (`count` words, see `_packed`) in one script and read
    its one reply: raises the first failing command's error, as redis-py's pipeline did
    (the script stops there; as in a MULTI/EXEC, what ran before it stays). A Redis
    that does not hold the script (NOSCRIPT: nothing ran) is sent the script itself.
    redis-py disconnects a connection whose read or write failed or was cancelled, so
    none goes back to the pool with an answer left unread."""
    await conn.send_packed_command(_evalsha(argv, count))
    try:
        await conn.read_response()
    except redis.exceptions.NoScriptError:
        await conn.send_packed_command(_EVAL % (count + 3, _SCRIPT) + argv)
        await conn.read_response()


def _evalsha(argv: bytes, count: int) -> bytes:
    """The call of `_rq_scripts.RUN` by its SHA1 with `argv` (`count` words, see
    `_packed`), no keys."""
    return _EVALSHA % (count + 3) + argv


def _enqueue_blocking(
    queue: Any, fn: Callable[..., Any], req: Any, options: dict[str, Any]
) -> None:
    # One round trip to Redis instead of two (RQ registers the queue, then saves and
    # pushes the job), in one MULTI/EXEC: the request's `q` waits for it.
    with queue.connection.pipeline() as pipe:
        queue.enqueue(fn, req, pipeline=pipe, **options)
        pipe.execute()
