"""One channel-layer message from sync code, in one round trip to Redis.

channels_redis' `send` runs four commands, each its own round trip (drop the channel's
expired messages, count them, add the message, renew the channel's expiry), and from
sync code it needs an event loop too: a worker hands it to its loop's thread and waits.
A job's replies are sent that way, one after the other, from the job's thread.

For a plain `RedisChannelLayer` (hosts given by URL, or host and port) `direct_sender`
gives a `DirectSender`, which runs the same four commands as one Lua script on a
blocking Redis client of this process: the same key, the message serialized by the
layer itself (its encryption included), the same capacity and expiry, `ChannelFull`
past the capacity. For any other layer (Sentinel hosts, the pub/sub layer, the
in-memory one) it gives None, and the layer's own `send` is used.

A sender on the same Redis (server and database) as the caller's other keys can make
the send conditional and record it, in the same script (`send(..., unless=, mark=)`):
nothing is sent while the `unless` key exists, and the `mark` hash field is written
with the message or not at all. A worker sends a job's last reply that way: no second
reply after a crash between the two writes, one round trip for both (`same_redis`).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import redis
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

from actors._scripts import run_script
from actors.publishing._worker_loop import worker_loop

# KEYS[1]: the channel's key; ARGV: message, score (now), expired before, capacity, expiry.
# KEYS[2] (optional; '' for none): nothing is sent while it exists (-1). KEYS[3]
# (optional): a hash whose field ARGV[6] is set to ARGV[7] with the message.
_SEND = """
if KEYS[2] and KEYS[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
    return -1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[4]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if KEYS[3] then
    redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
end
return 1
"""
_WHERE = ("host", "port", "db", "path")


class DirectSender:
    """Sends to one `RedisChannelLayer`'s channels from sync code (thread-safe)."""

    def __init__(self, layer: RedisChannelLayer, timeout: float) -> None:
        self.layer = layer
        self._timeout = timeout
        self._scripts: dict[int, Any] = {}
        self._lock = threading.Lock()
        # In a worker process (its jobs send one at a time, from one thread): each host's
        # sends on one connection kept from its pool (`_kept_client`).
        self._keep = worker_loop() is not None
        self._kept: dict[int, redis.Redis] = {}

    def _script(self, index: int) -> Any:
        script = self._scripts.get(index)
        if script is None:
            with self._lock:
                script = self._scripts.get(index)
                if script is None:
                    host = dict(self.layer.hosts[index])
                    host.setdefault("socket_timeout", self._timeout)
                    host.setdefault("socket_connect_timeout", self._timeout)
                    address = host.pop("address", None)
                    client = (
                        redis.Redis.from_url(address, **host)
                        if address is not None
                        else redis.Redis(**host)
                    )
                    script = self._scripts[index] = client.register_script(_SEND)
        return script

    def _kept_client(self, index: int, script: Any) -> redis.Redis:
        """A client of host `index` on one connection of its pool, kept: redis-py's pool
        checks a connection for unread data each time it hands it out (a non-blocking
        read, two switches of the socket's mode, an exception), a kept one is not."""
        client = self._kept.get(index)
        if client is None:
            with self._lock:
                client = self._kept.get(index)
                if client is None:
                    # Connects now: raises what a send raises when Redis is away.
                    client = self._kept[index] = redis.Redis(
                        connection_pool=script.registered_client.connection_pool,
                        single_connection_client=True,
                    )
        return client

    def same_redis(self, channel: str, client: Any) -> bool:
        """Do `channel`'s messages live on the Redis server and database of the blocking
        client `client` (so that `send`'s `unless` and `mark` may name its keys)?"""
        mine = self._script(self.layer.consistent_hash(channel)).registered_client
        ours = mine.connection_pool.connection_kwargs
        theirs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
        if theirs is None:
            return False
        return all(ours.get(k) == theirs.get(k) for k in _WHERE)

    def send(
        self,
        channel: str,
        message: dict[str, Any],
        *,
        unless: str | None = None,
        mark: tuple[str, str, bytes] | None = None,
    ) -> bool:
        """What `await layer.send(channel, message)` does, in one round trip. Sends
        nothing and returns False when the key `unless` exists; sets the hash field
        `mark` (key, field, value) with the message (see `same_redis`)."""
        layer = self.layer
        assert layer.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        name = channel
        if "!" in channel:  # process-local: the server's key, the full name inside
            message = {**message, "__asgi_channel__": channel}
            name = layer.non_local_name(channel)
        # Any host serves a general channel (its receivers take turns); a process-local
        # one lives where its server reads it.
        index = layer.consistent_hash(channel)
        script = self._script(index)
        now = time.time()
        expiry = int(layer.expiry)
        args = [layer.serialize(message), now, int(now) - expiry, layer.get_capacity(channel)]
        keys = [layer.prefix + name, unless or ""]
        args.append(expiry)
        if mark is not None:
            keys.append(mark[0])
            args.extend(mark[1:])
        if not self._keep:
            done = run_script(script.registered_client, script, keys, args)
        else:
            kept = self._kept_client(index, script)
            try:
                done = run_script(kept, script, keys, args)
            except BaseException:
                # Failed or interrupted (a job's timeout, raised by a signal's handler):
                # an answer may be left unread, which the next send would take for its
                # own. A new connection for the next one, as the pool would.
                if kept.connection is not None:
                    kept.connection.disconnect()
                raise
        if done == 0:
            raise ChannelFull()
        return bool(done == 1)


_senders: weakref.WeakKeyDictionary[Any, DirectSender | None] = weakref.WeakKeyDictionary()


def direct_sender(layer: Any, timeout: float) -> DirectSender | None:
    """The process's `DirectSender` for `layer` (Redis socket timeouts of `timeout`
    seconds), or None when `layer` is not a plain `RedisChannelLayer`."""
    if layer is None:
        return None
    try:
        return _senders[layer]
    except KeyError:
        pass
    sender = None
    plain = all("master_name" not in host for host in getattr(layer, "hosts", ()))
    if type(layer) is RedisChannelLayer and plain:
        sender = DirectSender(layer, timeout)
    _senders[layer] = sender
    return sender
