"""`LayerGate`: the channel layer as this process's connections use it — bounded, timed,
and outliving the layer's outages.

channels_redis opens a pool connection for every operation running at once and keeps it:
5,000 sockets leaving at once opened 4,950 Redis connections. And a Redis restart made
every consumer's reader fail, which ended every consumer with 4012. Every join, leave,
publish and send of a connection goes through its process's gate instead, which

- runs at most `ENVELOPE_LAYER_CONNECTIONS` of them at once, so the layer never opens
  more Redis connections than that plus its shared blocking read (and its cleaners);
- gives each `ENVELOPE_LAYER_TIMEOUT` seconds;
- notices an outage (an operation or a reader that cannot reach the layer): while the
  layer is down, operations fail at once with `TopicsUnavailable` (`topics_unavailable`)
  and readers wait. One recovery task probes the layer with backoff (0.05 s doubling up
  to 5 s). When it answers, the task retries the leaves that failed (groups of closed
  connections, so that no dead member stays behind), joins every live connection to its
  topics again (the layer may have come back empty; joins made during the outage, such
  as a user topic at handshake, wait for this), and only then lets everything go on.

A leave that fails because the layer is full or away is never dropped: it waits for the
recovery. The gate of a layer is per event loop (daphne and uvicorn run one).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from redis.exceptions import RedisError

from actors._settings import EnvelopeSettings
from actors.publishing._topics import group_for
from actors.tracing import logger
from envelope import TopicsUnavailable

#: What a layer raises when it cannot be reached (redis-py's errors, sockets, timeouts).
UNREACHABLE: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)
_RETRY_LATER: tuple[type[Exception], ...] = (*UNREACHABLE, TopicsUnavailable)

_PROBE_GROUP = "envelope.probe"
_PROBE_CHANNEL = "envelope.probe"
_FIRST_DELAY = 0.05
_MAX_DELAY = 5.0


class Member(Protocol):
    """A connection as the gate sees it (`ConnectionActor`)."""

    address: str | None
    topics: set[str]

    @property
    def closed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class GateStatistics:
    available: bool
    running: int  # operations on the layer now
    limit: int  # at most this many at once
    outages: int  # since the process started
    leaves_pending: int  # failed leaves waiting for the recovery
    leaves_retried: int  # failed leaves done by a recovery
    rejoined: int  # joins redone by recoveries


class LayerGate:
    """The one way a process's connections reach their channel layer (see the module)."""

    def __init__(self, layer: Any, *, connections: int, timeout: float) -> None:
        self.layer = layer
        self.timeout = timeout
        self.limit = connections
        self.available = True
        self._slots = anyio.Semaphore(connections)
        self._running = 0
        self._back: anyio.Event | None = None  # set when a recovery is over
        self._recovery: asyncio.Task[None] | None = None
        self._members: weakref.WeakSet[Any] = weakref.WeakSet()
        self._leaves: set[tuple[str, str]] = set()  # (group, channel) to retry
        self._again = False  # a join or leave was kept while a recovery ran: once more
        self._down_since = 0.0
        self._outages = 0
        self._leaves_retried = 0
        self._rejoined = 0

    # -- operations ----------------------------------------------------------------------

    async def call(self, operation: str, *args: Any) -> Any:
        """`layer.<operation>(*args)`, bounded and timed; `TopicsUnavailable` when the
        layer is down or does not answer in time."""
        if not self.available:
            raise TopicsUnavailable()
        try:
            return await self._call(operation, args, recovering=False)
        except UNREACHABLE as exc:
            self.lost(exc)
            raise TopicsUnavailable() from None

    async def _call(self, operation: str, args: tuple[Any, ...], *, recovering: bool) -> Any:
        async with self._slots:
            if not recovering and not self.available:  # it went down while this waited
                raise TopicsUnavailable()
            self._running += 1
            try:
                with anyio.fail_after(self.timeout):
                    return await getattr(self.layer, operation)(*args)
            finally:
                self._running -= 1

    async def join(self, member: Member, group: str) -> None:
        """Add `member` to `group`; remembered, so that a recovery joins it again."""
        self._members.add(member)
        await self.call("group_add", group, member.address)
        if member.closed:  # it left while the join was on its way: no dead member
            await self.leave_for_good([group], member.address)

    async def leave(self, group: str, channel: str | None) -> None:
        await self.call("group_discard", group, channel)

    async def leave_for_good(self, groups: Iterable[str], channel: str | None) -> int:
        """A closed connection leaves `groups`: each leave that fails is kept and done by
        the next recovery, never dropped. Returns how many were kept for later."""
        kept = 0
        for group in groups:
            try:
                await self.call("group_discard", group, channel)
            except TopicsUnavailable:
                self._leaves.add((group, channel or ""))
                self._again = True
                kept += 1
        if kept:
            logger.warning("topic.leave_deferred", conn=channel, groups=kept)
        return kept

    def remember(self, member: Member) -> None:
        """`member` has topics the layer may not know yet (joined while it was away):
        the recovery under way joins them."""
        self._members.add(member)
        self._again = True

    # -- outages -------------------------------------------------------------------------

    def lost(self, error: BaseException) -> None:
        """The layer could not be reached: operations fail at once until a recovery,
        started here unless one is under way, finds it back."""
        if self._recovery is not None and not self._recovery.done():
            return
        self._outages += 1
        self._down_since = time.monotonic()
        logger.warning("layer.unavailable", error=type(error).__name__, detail=str(error))
        self.available = False
        self._back = anyio.Event()
        self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def wait_available(self) -> None:
        """Return once the layer is available again (at once when it is)."""
        while not self.available:
            assert self._back is not None
            await self._back.wait()

    async def _recover(self) -> None:
        delay = _FIRST_DELAY
        retried = rejoined = 0
        try:
            while True:
                await anyio.sleep(delay * (0.5 + random.random()))
                self._again = False
                try:
                    probe = (_PROBE_GROUP, _PROBE_CHANNEL)
                    await self._call("group_discard", probe, recovering=True)
                    retried += await self._retry_leaves()
                    rejoined += await self._rejoin()
                except _RETRY_LATER:
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                if not self._again:  # else a join or leave was kept meanwhile
                    break
                delay = _FIRST_DELAY
        except Exception:
            logger.exception("layer.recovery_failed")
        finally:
            self.available = True
            logger.info(
                "layer.recovered",
                down_s=round(time.monotonic() - self._down_since, 3),
                leaves_retried=retried,
                rejoined=rejoined,
            )
            assert self._back is not None
            self._back.set()

    async def _retry_leaves(self) -> int:
        leaves = list(self._leaves)
        await self._each(leaves, self._retry_leave)
        self._leaves_retried += len(leaves)
        return len(leaves)

    async def _retry_leave(self, leave: tuple[str, str]) -> None:
        await self._call("group_discard", leave, recovering=True)
        self._leaves.discard(leave)

    async def _rejoin(self) -> int:
        joins = [
            (member, topic)
            for member in list(self._members)
            if not member.closed
            for topic in list(member.topics)
        ]
        await self._each(joins, self._rejoin_one)
        self._rejoined += len(joins)
        return len(joins)

    async def _rejoin_one(self, join: tuple[Any, str]) -> None:
        member, topic = join
        group = group_for(topic)
        await self._call("group_add", (group, member.address), recovering=True)
        if member.closed:
            await self._call("group_discard", (group, member.address), recovering=True)

    async def _each(self, items: list[Any], fn: Any) -> None:
        """`fn(item)` for every item, `limit` at a time; `TopicsUnavailable` when one
        could not reach the layer (the others stop too)."""
        pending = iter(items)
        failed: list[BaseException] = []

        async def work() -> None:
            for item in pending:
                if failed:
                    return
                try:
                    await fn(item)
                except UNREACHABLE as exc:
                    failed.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.limit, len(items))):
                tg.start_soon(work)
        if failed:
            raise TopicsUnavailable()

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            available=self.available,
            running=self._running,
            limit=self.limit,
            outages=self._outages,
            leaves_pending=len(self._leaves),
            leaves_retried=self._leaves_retried,
            rejoined=self._rejoined,
        )


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LayerGate]] = (
    weakref.WeakKeyDictionary()
)


def gate_for(layer: Any) -> LayerGate:
    """The gate of `layer` on the running event loop (made with the Django settings)."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(id(layer))
    if gate is None or gate.layer is not layer:
        settings = EnvelopeSettings.from_django()
        gate = gates[id(layer)] = LayerGate(
            layer, connections=settings.layer_connections, timeout=settings.layer_timeout
        )
    return gate
