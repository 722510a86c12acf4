"""`LayerInbox`: the messages of a server process's connections, read from the channel
layer in batches by one task, instead of one channels_redis `receive` per message.

channels_redis reads a process's messages (all its connections share one sorted set in
Redis) one at a time: for each, four round trips (put back what an interrupted read
left, a blocking pop, a copy into an "in flight" set, and its removal after) and a
wake-up of every waiting `receive`. In a burst of deferred jobs that was about a third
of a server's CPU per job. Here one task per event loop reads for every connection of
the process: while messages wait, one script takes up to `BATCH` of them in one round
trip; when none waits, one blocking pop. Each message goes to its connection's queue, in
the order Redis holds them (the order they were sent).

Nothing is lost that channels_redis would keep: a batch is copied into an "in flight"
set by the same script that takes it, and deleted from there by the next call only
once its reply has been read; after a failed call (Redis away, a timeout, the read
cancelled), the next one puts what is in flight back first, with its scores, so the
batch is read again in order. As with channels_redis, a message popped by the blocking
read whose answer never arrives (the connection dropped in that instant) is lost, and a
connection's queue holds at most the layer's `capacity` (past it the oldest message is
dropped, as channels_redis drops from its buffer, but logged: `layer.message_dropped`).

The inbox uses channel names of its own prefix (`specific.<prefix>!<id>`): every sender
(channels_redis' `send` and `group_send`, `DirectSender`) writes them to the inbox's key,
and channels_redis' own `receive` (other consumers of the process) never takes its
messages. Used for a plain `RedisChannelLayer` on one host (`inbox_for`); for other
layers consumers use the layer's `receive`. Every Redis call is bounded: the script by
`ENVELOPE_LAYER_TIMEOUT`, the blocking pop by its own wait plus that; a failure goes
to the layer's gate (`layer.unavailable`), and reading resumes when it recovers.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from typing import Any

import redis.asyncio
from channels_redis.core import RedisChannelLayer

from actors.publishing._gate import UNREACHABLE, gate_for
from actors.tracing import logger

#: Messages taken by one call of the script, at most.
BATCH = 100
#: The name of the reader's connection to Redis (`CLIENT LIST`).
CLIENT_NAME = "envelope-inbox"

# KEYS[1]: the inbox's sorted set; KEYS[2]: its "in flight" set. ARGV[1]: "1" to put what
# is in flight back first (the previous answer was not read), else it is deleted (it was);
# ARGV[2]: how many to take; ARGV[3]: the layer's expiry (of what a dead process left in
# flight). Returns the taken members, oldest first.
_TAKE = """
if ARGV[1] == '1' then
    local back = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
    for i = 1, #back, 2 do
        redis.call('ZADD', KEYS[1], back[i + 1], back[i])
    end
end
redis.call('DEL', KEYS[2])
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[2])
local members = {}
for i = 1, #taken, 2 do
    redis.call('ZADD', KEYS[2], taken[i + 1], taken[i])
    members[#members + 1] = taken[i]
end
if #members > 0 then
    redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return members
"""


class LayerInbox:
    """One event loop's reader of a `RedisChannelLayer` for its connections."""

    def __init__(self, layer: RedisChannelLayer, timeout: float) -> None:
        self.layer = layer
        self.timeout = timeout
        self.wait = float(layer.brpop_timeout)  # seconds of one blocking pop
        self.local = f"specific.{uuid.uuid4().hex}!"
        self.key = layer.prefix + self.local
        self.in_flight = self.key + "$inflight"
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def open(self) -> tuple[str, asyncio.Queue[dict[str, Any]]]:
        """A new channel name and the queue its messages arrive in (read from now on)."""
        name = self.local + uuid.uuid4().hex
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[name] = queue
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._read())
        return name, queue

    def close(self, name: str) -> None:
        """Stop reading for `name`; the last one stops the reading task (what arrives for
        a closed channel is dropped, as the layer drops messages nobody reads)."""
        self._queues.pop(name, None)
        if not self._queues and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _read(self) -> None:
        host = dict(self.layer.hosts[0])
        host["socket_timeout"] = self.wait + self.timeout
        host.setdefault("socket_connect_timeout", self.timeout)
        host.setdefault("client_name", CLIENT_NAME)  # as CLIENT LIST shows it
        address = host.pop("address", None)
        client = (
            redis.asyncio.Redis.from_url(address, **host)
            if address is not None
            else redis.asyncio.Redis(**host)
        )
        take = client.register_script(_TAKE)
        gate = gate_for(self.layer)
        keys = [self.key, self.in_flight]
        expiry = int(self.layer.expiry)
        put_back = "1"  # what a reader before this one left in flight
        me = asyncio.current_task()
        assert me is not None
        try:
            while True:
                try:
                    # asyncio's own timeout: this task is not anyio's, and its
                    # cancellation (`close`) must not be taken for the scope's.
                    async with asyncio.timeout(self.timeout):
                        members = await take(keys=keys, args=[put_back, BATCH, expiry])
                    if me.cancelling():
                        # redis-py may finish a command it was cancelled in and return
                        # its answer: the cancellation (`close`) stands, and the batch
                        # stays in flight for the next reader, undelivered (a reader
                        # started meanwhile may be putting it back already).
                        raise asyncio.CancelledError()
                    put_back = "0"
                    for member in members:
                        self._deliver(member)
                    if members:
                        continue
                    popped = await client.bzpopmin(self.key, timeout=self.wait)
                    if popped is not None:
                        self._deliver(popped[1])
                except UNREACHABLE as exc:
                    put_back = "1"
                    gate.lost(exc)
                    await gate.wait_available()
                except Exception:  # a bug must not leave the process's connections deaf
                    put_back = "1"
                    logger.exception("layer.read_failed")
                    await asyncio.sleep(1.0)
        finally:
            await asyncio.shield(client.aclose())

    def _deliver(self, member: bytes) -> None:
        try:
            message = self.layer.deserialize(member)
        except Exception:  # another key, a corrupt message: not a reason to stop reading
            logger.exception("layer.message_unreadable")
            return
        to = message.pop("__asgi_channel__", None)
        names = to if isinstance(to, list) else [to]  # a list from `group_send`
        for name in names:
            queue = self._queues.get(name)
            if queue is None:
                continue
            if queue.qsize() >= self.layer.capacity:
                queue.get_nowait()
                logger.warning("layer.message_dropped", conn=name, capacity=self.layer.capacity)
            queue.put_nowait(message if len(names) == 1 else dict(message))


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LayerInbox]] = (
    weakref.WeakKeyDictionary()
)


def inbox_for(layer: Any, timeout: float) -> LayerInbox | None:
    """The running loop's `LayerInbox` for `layer`, or None when `layer` is not a plain
    `RedisChannelLayer` on one host (Sentinel, several hosts, another layer)."""
    if type(layer) is not RedisChannelLayer or len(layer.hosts) != 1:
        return None
    if "master_name" in layer.hosts[0]:
        return None
    inboxes = _inboxes.setdefault(asyncio.get_running_loop(), {})
    inbox = inboxes.get(id(layer))
    if inbox is None or inbox.layer is not layer:
        inbox = inboxes[id(layer)] = LayerInbox(layer, timeout)
    return inbox
