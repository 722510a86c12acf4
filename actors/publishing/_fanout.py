"""`FanoutHub`: a publish reaches each server process once; the process hands the push,
encoded once, to its own subscribers.

    publish(topic, model) ── PUBLISH <prefix>.fanout.<topic> "p"+frame ──► Redis
    Redis ── one message per subscribed process ──► that process's hub (one reader)
    hub ── member.push_nowait(frame) ──► each local subscriber's mailbox

A server process (an event loop serving connections) has one hub per channel layer. It
holds one Redis pub/sub connection, SUBSCRIBEs to a topic's channel when the topic's
first local member joins and UNSUBSCRIBEs when its last one leaves: subscribing writes
nothing to Redis per publish, and a publish is one PUBLISH whatever the number of
subscribers or servers. Commands to a topic's members (close them, re-check their
subscriptions) travel the same way, as the channel-layer message they would have been.
With a channel layer that is not Redis (the in-memory layer of development and tests)
the fan-out is in-process only.

Redis is the channel layer's first host under its prefix (`ENVELOPE_FANOUT_REDIS`, a
URL, names another). Every Redis operation is bounded by `ENVELOPE_LAYER_TIMEOUT`, and
publishes share at most `ENVELOPE_LAYER_CONNECTIONS` connections. When Redis cannot be
reached the hub is away: publishes and joins fail at once with `TopicsUnavailable`
(a join at handshake is kept instead), and one recovery task reconnects with backoff
(0.05 s doubling up to 5 s), SUBSCRIBEs every local topic again, and only then lets
publishes go on. What was published while a process was not subscribed is not delivered
to it: delivery is at most once, like Phoenix PubSub's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import orjson
from redis.asyncio import Redis

from actors.publishing._fanout_redis import redis_client
from actors.publishing._gate import UNREACHABLE
from actors.tracing import logger
from envelope import TopicsUnavailable

_FAILED: tuple[type[Exception], ...] = (*UNREACHABLE, TopicsUnavailable)
#: Hands `(layer, channel, data)` to the hubs of this process (`_fanout_hubs`).
InProcess = Callable[[Any, bytes, bytes], None]
PUSH_KIND = b"p"  # the rest is the frame, sent as it is
MESSAGE_KIND = b"m"  # the rest is a channel-layer message (close, topic commands), JSON
_READ_WAIT = 1.0  # seconds a read waits before it looks again (never a socket timeout)
#: Seconds the pub/sub connection may be silent before the reader PINGs Redis through it:
#: a frozen Redis, or a connection a network dropped without a reset, would otherwise
#: leave the server deaf to every topic without a word.
HEALTH_EVERY = 15.0
_SUBSCRIBE_CHUNK = 1000
_FIRST_DELAY = 0.05
_MAX_DELAY = 5.0


class FanoutMember(Protocol):
    """A connection as the hub sees it (`ConnectionActor`)."""

    def push_nowait(self, text: str) -> None: ...

    def message_nowait(self, message: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class FanoutStatistics:
    available: bool
    redis: bool  # False: in-process only (a channel layer that is not Redis)
    topics: int  # topics with a local member now
    members: int  # local subscriptions now
    received: int  # publishes that reached this process with a local member
    delivered: int  # pushes handed to local members
    outages: int
    resubscribed: int  # topics SUBSCRIBEd again by recoveries


class FanoutHub:
    """The fan-out of one channel layer in one event loop (see the module)."""

    def __init__(
        self,
        layer: Any,
        target: tuple[dict[str, Any], str] | None,
        *,
        connections: int,
        timeout: float,
        lasting: bool = True,
        in_process: InProcess | None = None,
        health_every: float = HEALTH_EVERY,
    ) -> None:
        self.layer = layer
        self.health_every = health_every
        self._lasting = lasting  # False: made for one block (`topic_sender`), no recovery
        self._in_process = in_process  # the in-process fan-out, when not on Redis
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self._options = target[0] if target is not None else None
        self._prefix = f"{target[1] if target is not None else 'asgi'}.fanout."
        self._connections = connections
        self._members: dict[bytes, set[FanoutMember]] = {}  # channel -> local members
        self._subscribing: dict[bytes, asyncio.Future[None]] = {}  # awaiting confirmation
        self._publisher: Redis | None = None
        self._subscriber: Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self.available = True
        self._back: anyio.Event | None = None
        self._received = self._delivered = self._outages = self._resubscribed = 0
        self._down_since = 0.0

    @property
    def redis(self) -> bool:
        return self._options is not None

    def channel(self, topic: str) -> bytes:
        return (self._prefix + topic).encode()

    # -- local members -------------------------------------------------------------------

    async def join(self, topic: str, member: FanoutMember, *, keep: bool = False) -> None:
        """`member` receives what is published to `topic` from now on. `TopicsUnavailable`
        when Redis cannot be reached in time; with `keep`, the join is kept instead and
        the channel SUBSCRIBEd when Redis is back (a connection's user topic)."""
        channel = self.channel(topic)
        members = self._members.get(channel)
        first = members is None
        if members is None:
            members = self._members[channel] = set()
        members.add(member)
        if not self.redis:
            return
        try:
            if first:
                await self._subscribe([channel])
            else:
                pending = self._subscribing.get(channel)
                if pending is not None:  # another join's SUBSCRIBE is on its way
                    with anyio.fail_after(self.timeout):
                        await asyncio.wait([pending])
                    if pending.cancelled():
                        raise TopicsUnavailable()
        except _FAILED as exc:
            if keep:
                logger.warning("topic.join_deferred", topic=topic)
                return
            self.leave(topic, member)
            if not isinstance(exc, TopicsUnavailable):
                self._lost(exc)
            raise TopicsUnavailable() from None

    def leave(self, topic: str, member: FanoutMember) -> None:
        """`member` receives nothing more of `topic`. Never fails: the UNSUBSCRIBE of a
        topic's last local member is sent beside, and a stale one costs only messages
        nobody here receives (none after a reconnection)."""
        channel = self.channel(topic)
        members = self._members.get(channel)
        if members is None:
            return
        members.discard(member)
        if not members:
            del self._members[channel]
            if self.redis and self.available and self._pubsub is not None:
                self.loop.create_task(self._unsubscribe(channel))

    def leave_all(self, topics: Iterable[str], member: FanoutMember) -> None:
        for topic in topics:
            self.leave(topic, member)

    def local_channel(self, channel: bytes) -> bool:
        """Has this process a member of the topic of `channel`?"""
        return channel in self._members

    def local_members(self, topic: str) -> int:
        """How many connections of this process are in `topic`."""
        return len(self._members.get(self.channel(topic), ()))

    # -- publishing ----------------------------------------------------------------------

    async def publish_text(self, topic: str, text: str) -> None:
        """Deliver the encoded push `text` to every member of `topic`, on every server."""
        await self.publish_data(self.channel(topic), PUSH_KIND + text.encode())

    async def publish_message(self, topic: str, message: dict[str, Any]) -> None:
        """Hand a channel-layer message (close, topic command) to every member of `topic`."""
        await self.publish_data(self.channel(topic), MESSAGE_KIND + orjson.dumps(message))

    async def publish_data(self, channel: bytes, data: bytes) -> None:
        if self._options is None:
            assert self._in_process is not None
            self._in_process(self.layer, channel, data)
            return
        if not self.available:
            raise TopicsUnavailable()
        if self._publisher is None:
            self._publisher = self._new_client(read=False)
        try:
            with anyio.fail_after(self.timeout):
                await self._publisher.publish(channel, data)
        except UNREACHABLE as exc:
            self._lost(exc)
            raise TopicsUnavailable() from None

    # -- delivery ------------------------------------------------------------------------

    def dispatch(self, channel: bytes, data: bytes) -> None:
        """What reached this process for `channel`: to each of its local members."""
        members = self._members.get(channel)
        if not members:
            return
        self._received += 1
        if data[:1] == PUSH_KIND:
            text = data[1:].decode()
            for member in tuple(members):
                try:
                    member.push_nowait(text)
                except Exception:
                    logger.exception("fanout.delivery_failed")
            self._delivered += len(members)
        elif data[:1] == MESSAGE_KIND:
            message = orjson.loads(data[1:])
            for member in tuple(members):
                try:
                    member.message_nowait(message)
                except Exception:
                    logger.exception("fanout.delivery_failed")

    async def _read(self, pubsub: Any) -> None:
        dispatch = self.dispatch
        clock = self.loop.time
        heard = clock()  # when Redis last said anything on this connection
        pinged = 0.0  # when a PING went out unanswered (0: none)
        try:
            while True:
                message = await pubsub.get_message(timeout=min(_READ_WAIT, self.health_every))
                now = clock()
                if message is None:
                    if pinged and now - pinged > self.timeout:
                        raise TimeoutError("Redis did not answer a PING on the pub/sub connection")
                    if not pinged and now - heard > self.health_every:
                        pinged = now
                        with anyio.fail_after(self.timeout):
                            await pubsub.ping()
                    continue
                heard, pinged = now, 0.0
                kind = message["type"]
                if kind == "message":
                    dispatch(message["channel"], message["data"])
                elif kind == "subscribe":
                    pending = self._subscribing.pop(message["channel"], None)
                    if pending is not None and not pending.done():
                        pending.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._pubsub is pubsub:
                self._lost(exc)

    # -- Redis ---------------------------------------------------------------------------

    def _new_client(self, *, read: bool) -> Redis:
        assert self._options is not None
        return redis_client(
            self._options,
            connections=1 if read else self._connections,
            timeout=self.timeout,
            read=read,
        )

    async def _subscribe(self, channels: list[bytes]) -> None:
        """SUBSCRIBE `channels` and wait for Redis to confirm them."""
        if not self.available:
            raise TopicsUnavailable()
        if self._pubsub is None:
            self._subscriber = self._new_client(read=True)
            self._pubsub = self._subscriber.pubsub()
        pubsub = self._pubsub
        waits = []
        for channel in channels:
            pending = self._subscribing.get(channel)
            if pending is None:
                pending = self._subscribing[channel] = self.loop.create_future()
            waits.append(pending)
        try:
            with anyio.fail_after(self.timeout):
                await pubsub.subscribe(*channels)
                if self._reader is None or self._reader.done():
                    self._reader = self.loop.create_task(self._read(pubsub))
                # `wait` neither raises when a confirmation is cancelled nor cancels them
                # when the deadline cancels it: other joiners may be waiting on them.
                await asyncio.wait(waits)
            if any(pending.cancelled() for pending in waits):
                raise TopicsUnavailable()  # the connection was dropped meanwhile
        except BaseException:
            for channel in channels:
                pending = self._subscribing.pop(channel, None)
                if pending is not None and not pending.done():
                    pending.cancel()
            raise

    async def _unsubscribe(self, channel: bytes) -> None:
        pubsub = self._pubsub
        if channel in self._members or pubsub is None:
            return  # joined again meanwhile
        try:
            with anyio.fail_after(self.timeout):
                await pubsub.unsubscribe(channel)
        except UNREACHABLE as exc:
            if pubsub is self._pubsub:
                self._lost(exc)

    # -- outages -------------------------------------------------------------------------

    def _lost(self, error: BaseException) -> None:
        """Redis could not be reached: away until a recovery, started here unless one is
        under way, has reconnected and SUBSCRIBEd every local topic again."""
        if not self._lasting or (self._recovery is not None and not self._recovery.done()):
            return
        self._outages += 1
        self._down_since = time.monotonic()
        logger.warning("fanout.unavailable", error=type(error).__name__, detail=str(error))
        self.available = False
        self._back = anyio.Event()
        self._recovery = self.loop.create_task(self._recover())

    async def _recover(self) -> None:
        delay = _FIRST_DELAY
        await self._drop_connections()
        try:
            while True:
                await anyio.sleep(delay * (0.5 + random.random()))
                try:
                    await self._reconnect()
                except _FAILED:
                    await self._drop_connections()
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                break
        finally:
            logger.info(
                "fanout.recovered",
                down_s=round(time.monotonic() - self._down_since, 3),
                topics=len(self._members),
            )
            assert self._back is not None
            self._back.set()

    async def _reconnect(self) -> None:
        self._publisher = self._new_client(read=False)
        with anyio.fail_after(self.timeout):
            await self._publisher.execute_command("PING")
        self.available = True
        try:
            channels = list(self._members)
            for start in range(0, len(channels), _SUBSCRIBE_CHUNK):
                chunk = channels[start : start + _SUBSCRIBE_CHUNK]
                await self._subscribe(chunk)
                self._resubscribed += len(chunk)
        except BaseException:
            self.available = False
            raise

    async def _drop_connections(self) -> None:
        reader, self._reader = self._reader, None
        pubsub, self._pubsub = self._pubsub, None
        clients = (self._subscriber, self._publisher)
        self._subscriber = self._publisher = None
        for pending in self._subscribing.values():
            if not pending.done():
                pending.cancel()
        self._subscribing.clear()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
            if pubsub is not None:
                await _quietly(pubsub.aclose())
            for client in clients:
                if client is not None:
                    await _quietly(client.aclose())

    async def wait_available(self) -> None:
        while not self.available:
            assert self._back is not None
            await self._back.wait()

    async def aclose(self) -> None:
        """Close the hub's Redis connections (tests, and loops that end)."""
        if self._recovery is not None:
            self._recovery.cancel()
        await self._drop_connections()

    def statistics(self) -> FanoutStatistics:
        return FanoutStatistics(
            available=self.available,
            redis=self.redis,
            topics=len(self._members),
            members=sum(len(m) for m in self._members.values()),
            received=self._received,
            delivered=self._delivered,
            outages=self._outages,
            resubscribed=self._resubscribed,
        )


async def _quietly(closing: Any) -> None:
    try:
        await closing
    except Exception:
        pass
