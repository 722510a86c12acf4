"""Where presence is kept: Redis for a fleet of servers (`RedisPresence`), or this process
alone when the channel layer is in memory (`LocalPresence`).

Keys in Redis (``P`` is the prefix, ``T`` a topic, ``N`` a server's node id):

    P:nodes             sorted set: node -> the time (ms, Redis's clock) it expires at
    P:node:N:topics     set: the presence topics node N has entries in
    P:t:T:n:N           hash: user -> that user's connections to T on node N
    P:t:T:count         hash: user -> the user's connections to T on every live node
    P:t:T:info          hash: user -> the JSON of the topic's presence_info(user)
    P:t:T:v             the topic's version: +1 for every user that joins or leaves (it
                        starts at Redis's clock in µs, so it grows across a restart)

A node writes its own entries with absolute counts (`sync`: idempotent, so a sync that
timed out can be done again), and the script turns the change into the counts of every
node; a user whose total goes from 0 to more is a join, from more to 0 a leave, each with
the next version. A node's heartbeat (`beat`) pushes its expiry forward; `reap` takes the
nodes whose expiry has passed out of the sorted set (in one script, so exactly one server
reaps a dead node) and subtracts their entries: the users left with no connection are its
leaves. Every call is one script or one transaction: O(1) commands per join or leave (per
window: one script per topic), O(its topics) per heartbeat. The data keys live 10 TTLs
(at least a minute) after the last heartbeat of a node in the topic, so nothing outlives
a fleet that is gone. One Redis (not a cluster: the scripts build key names).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import anyio
import redis.asyncio

from actors.publishing import UNREACHABLE
from envelope import TopicsUnavailable


class Transition(NamedTuple):
    joined: bool  # False: left
    user: str
    v: int


class Synced(NamedTuple):
    unknown: bool  # the node was not (any more) in the store: sync everything again
    transitions: list[Transition]


#: (user, that user's connections here, the JSON of its info or "" to keep what is kept)
Entry = tuple[str, int, str]


class PresenceStore(Protocol):
    async def sync(self, topic: str, entries: Sequence[Entry], *, full: bool) -> Synced: ...
    async def beat(self, topics: Iterable[str]) -> bool: ...
    async def reap(self) -> list[tuple[str, Transition]]: ...
    async def read(self, topic: str) -> tuple[int, list[tuple[str, int, dict[str, Any]]]]: ...
    async def close(self) -> None: ...


@dataclass(slots=True)
class LocalPresence:
    """This process is the whole fleet (an in-memory channel layer): the same rules as the
    scripts below, without Redis, expiry or other nodes."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    infos: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    async def sync(self, topic: str, entries: Sequence[Entry], *, full: bool) -> Synced:
        counts = self.counts.setdefault(topic, {})
        infos = self.infos.setdefault(topic, {})
        given = {user: (n, info) for user, n, info in entries}
        if full:
            given.update({user: (0, "") for user in counts if user not in given})
        out = []
        for user, (n, info) in given.items():
            before = counts.get(user, 0)
            if n > 0:
                counts[user] = n
                if info:
                    infos[user] = json.loads(info)
            else:
                counts.pop(user, None)
                infos.pop(user, None)
            if (before > 0) != (n > 0):
                self.versions[topic] = version = self.versions.get(topic, 0) + 1
                out.append(Transition(n > 0, user, version))
        return Synced(False, out)

    async def beat(self, topics: Iterable[str]) -> bool:
        return False

    async def reap(self) -> list[tuple[str, Transition]]:
        return []

    async def read(self, topic: str) -> tuple[int, list[tuple[str, int, dict[str, Any]]]]:
        counts, infos = self.counts.get(topic, {}), self.infos.get(topic, {})
        users = [(user, n, infos.get(user, {})) for user, n in counts.items()]
        return self.versions.get(topic, 0), users

    async def close(self) -> None:
        return None


# `now`: ms since the epoch by Redis's clock (a script may call TIME since Redis 5).
# `bump(key)`: the next version of a topic. A version key starts at Redis's time in µs, so
# that versions keep growing across a Redis that restarted empty (unless a topic had more
# than a thousand joins and leaves a millisecond over its whole life).
_NOW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, string.format('%d', t[1] * 1000000 + t[2]))
  end
  return redis.call('INCR', key)
end
"""

# KEYS: node hash, count, info, version, node topics, nodes.
# ARGV: topic, node, ttl ms, data ttl ms, full (0/1), then user, n, info triples.
_SYNC = (
    _NOW
    + """
local unknown = redis.call('ZADD', KEYS[6], 'NX', now + tonumber(ARGV[3]), ARGV[2])
local out = {unknown}
local function set(user, n, info)
  local old = tonumber(redis.call('HGET', KEYS[1], user) or '0')
  local delta = n - old
  if n > 0 then redis.call('HSET', KEYS[1], user, n) else redis.call('HDEL', KEYS[1], user) end
  local total = delta
  if delta ~= 0 then total = redis.call('HINCRBY', KEYS[2], user, delta)
  else total = tonumber(redis.call('HGET', KEYS[2], user) or '0') end
  local before = total - delta
  if total <= 0 then
    redis.call('HDEL', KEYS[2], user)
    redis.call('HDEL', KEYS[3], user)
  elseif info ~= '' then
    redis.call('HSET', KEYS[3], user, info)
  end
  if before <= 0 and total > 0 then
    table.insert(out, 'j') table.insert(out, user) table.insert(out, bump(KEYS[4]))
  elseif before > 0 and total <= 0 then
    table.insert(out, 'l') table.insert(out, user) table.insert(out, bump(KEYS[4]))
  end
end
local seen = {}
for i = 6, #ARGV, 3 do
  seen[ARGV[i]] = true
  set(ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2])
end
if ARGV[5] == '1' then
  for _, user in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not seen[user] then set(user, 0, '') end
  end
end
if redis.call('HLEN', KEYS[1]) > 0 then
  redis.call('SADD', KEYS[5], ARGV[1])
else
  redis.call('SREM', KEYS[5], ARGV[1])
end
for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return out
"""
)

# KEYS: nodes, then the keys to keep (this node's topics). ARGV: node, ttl ms, data ttl ms.
_BEAT = (
    _NOW
    + """
local unknown = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return unknown
"""
)

# KEYS: nodes. ARGV: prefix. At most 16 dead nodes a call (the next heartbeat takes more).
_REAP = (
    _NOW
    + """
local out = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 16)) do
  redis.call('ZREM', KEYS[1], node)
  local tkey = ARGV[1] .. ':node:' .. node .. ':topics'
  for _, topic in ipairs(redis.call('SMEMBERS', tkey)) do
    local base = ARGV[1] .. ':t:' .. topic
    local nkey = base .. ':n:' .. node
    local kv = redis.call('HGETALL', nkey)
    for i = 1, #kv, 2 do
      local total = redis.call('HINCRBY', base .. ':count', kv[i], -tonumber(kv[i + 1]))
      if total <= 0 then
        redis.call('HDEL', base .. ':count', kv[i])
        redis.call('HDEL', base .. ':info', kv[i])
        table.insert(out, topic) table.insert(out, kv[i])
        table.insert(out, bump(base .. ':v'))
      end
    end
    redis.call('DEL', nkey)
  end
  redis.call('DEL', tkey)
end
return out
"""
)


class RedisPresence:
    """Presence in Redis, for node `node`. Every call is bounded by `timeout` (the socket's
    and a deadline around it) and runs on at most `connections` Redis connections; one
    that fails raises `TopicsUnavailable`, and so does every call while the store is known
    to be away, at once, until a heartbeat (`beat`, which always tries) reaches it."""

    def __init__(
        self, url: str, *, prefix: str, node: str, ttl: float, timeout: float, connections: int = 4
    ) -> None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._pool = pool
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self.prefix, self.node, self.timeout = prefix, node, timeout
        self.ttl_ms = int(ttl * 1000)
        self.data_ttl_ms = max(10 * self.ttl_ms, 60_000)
        self.available = True
        self._sync = self.client.register_script(_SYNC)
        self._beat = self.client.register_script(_BEAT)
        self._reap = self.client.register_script(_REAP)

    def _keys(self, topic: str) -> list[str]:
        base = f"{self.prefix}:t:{topic}"
        return [
            f"{base}:n:{self.node}",
            f"{base}:count",
            f"{base}:info",
            f"{base}:v",
            f"{self.prefix}:node:{self.node}:topics",
            f"{self.prefix}:nodes",
        ]

    async def _bounded(self, script: Any, keys: list[str], args: list[Any], probe: bool) -> Any:
        if not (self.available or probe):
            raise TopicsUnavailable()
        try:
            with anyio.fail_after(self.timeout):
                out = await script(keys=keys, args=args)
        except UNREACHABLE as exc:
            self.available = False
            raise TopicsUnavailable() from exc
        self.available = True
        return out

    async def sync(self, topic: str, entries: Sequence[Entry], *, full: bool) -> Synced:
        args: list[Any] = [topic, self.node, self.ttl_ms, self.data_ttl_ms, int(full)]
        for entry in entries:
            args.extend(entry)
        out = await self._bounded(self._sync, self._keys(topic), args, probe=False)
        return Synced(bool(out[0]), _transitions(out[1:]))

    async def beat(self, topics: Iterable[str]) -> bool:
        keys = [f"{self.prefix}:nodes", f"{self.prefix}:node:{self.node}:topics"]
        for topic in topics:
            keys.extend(self._keys(topic)[:4])
        args = [self.node, self.ttl_ms, self.data_ttl_ms]
        return bool(await self._bounded(self._beat, keys, args, probe=True))

    async def reap(self) -> list[tuple[str, Transition]]:
        out = await self._bounded(self._reap, [f"{self.prefix}:nodes"], [self.prefix], False)
        return [
            (_text(out[n]), Transition(False, _text(out[n + 1]), int(out[n + 2])))
            for n in range(0, len(out), 3)
        ]

    async def read(self, topic: str) -> tuple[int, list[tuple[str, int, dict[str, Any]]]]:
        if not self.available:
            raise TopicsUnavailable()
        keys = self._keys(topic)
        try:
            with anyio.fail_after(self.timeout):
                async with self.client.pipeline(transaction=True) as pipe:
                    pipe.hgetall(keys[1])
                    pipe.hgetall(keys[2])
                    pipe.get(keys[3])
                    counts, infos, version = await pipe.execute()
        except UNREACHABLE as exc:
            self.available = False
            raise TopicsUnavailable() from exc
        users = [
            (_text(user), int(n), json.loads(infos.get(user, b"{}")))
            for user, n in counts.items()
            if int(n) > 0
        ]
        return int(version or 0), users

    async def close(self) -> None:
        await self.client.aclose()
        await self._pool.disconnect()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _transitions(flat: list[Any]) -> list[Transition]:
    return [
        Transition(_text(flat[n]) == "j", _text(flat[n + 1]), int(flat[n + 2]))
        for n in range(0, len(flat), 3)
    ]
