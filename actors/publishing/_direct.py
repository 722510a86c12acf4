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
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import redis
from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer

# KEYS[1]: the channel's key; ARGV: message, score (now), expired before, capacity, expiry.
_SEND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[3])
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') >= tonumber(ARGV[4]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class DirectSender:
    """Sends to one `RedisChannelLayer`'s channels from sync code (thread-safe)."""

    def __init__(self, layer: RedisChannelLayer, timeout: float) -> None:
        self.layer = layer
        self._timeout = timeout
        self._scripts: dict[int, Any] = {}
        self._lock = threading.Lock()

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

    def send(self, channel: str, message: dict[str, Any]) -> None:
        """What `await layer.send(channel, message)` does, in one round trip."""
        layer = self.layer
        assert layer.require_valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        name = channel
        if "!" in channel:  # process-local: the server's key, the full name inside
            message = {**message, "__asgi_channel__": channel}
            name = layer.non_local_name(channel)
        # Any host serves a general channel (its receivers take turns); a process-local
        # one lives where its server reads it.
        script = self._script(layer.consistent_hash(channel))
        now = time.time()
        expiry = int(layer.expiry)
        args = [layer.serialize(message), now, int(now) - expiry, layer.get_capacity(channel)]
        if not script(keys=[layer.prefix + name], args=[*args, expiry]):
            raise ChannelFull()


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
