"""Where the topic fan-out reaches Redis: the channel layer's first host under its prefix,
or `ENVELOPE_FANOUT_REDIS`; and its redis-py clients, every operation bounded in time."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def redis_options(layer: Any, url: str | None = None) -> tuple[dict[str, Any], str] | None:
    """redis-py keywords for the fan-out of `layer` and its channel prefix, or None when
    the fan-out is in-process only (the layer is not a Redis one)."""
    prefix = getattr(layer, "prefix", None)
    hosts = getattr(layer, "hosts", None)
    if url is not None:
        return {"address": url}, prefix if isinstance(prefix, str) else "asgi"
    if not isinstance(prefix, str) or not isinstance(hosts, list | tuple) or not hosts:
        return None
    host = dict(hosts[0])
    if "master_name" in host:
        raise ImproperlyConfigured(
            "The topic fan-out does not follow Redis Sentinel: set ENVELOPE_FANOUT_REDIS "
            "to the URL of the Redis it publishes through"
        )
    return host, prefix


def redis_client(options: dict[str, Any], *, connections: int, timeout: float, read: bool) -> Redis:
    kwargs = dict(options)
    address = kwargs.pop("address", None)
    kwargs.update(
        socket_connect_timeout=timeout,
        # The reader waits with its own timeout: a socket timeout would end an idle read.
        socket_timeout=None if read else timeout,
        retry=Retry(NoBackoff(), 0),  # the hub reconnects itself
        max_connections=connections,
        timeout=timeout,  # for a free connection of the pool
    )
    if address is not None:
        pool = BlockingConnectionPool.from_url(address, **kwargs)
    else:
        pool = BlockingConnectionPool(**kwargs)
    return Redis.from_pool(pool)  # closing the client closes the pool's connections
