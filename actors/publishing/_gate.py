"""`LayerGate`: the channel layer as this process's connections use it — bounded, timed,
and outliving the layer's outages.

channels_redis opens a pool connection for every operation running at once and keeps it:
5,000 sockets leaving at once opened 4,950 Redis connections. And a Redis restart made
every consumer's reader fail, which ended every consumer with 4012. Every operation of a
connection on the layer (a push to one connection, a drain marker; topics go through the
fan-out, `actors.publishing._fanout`) goes through its process's gate instead, which

- runs at most `ENVELOPE_LAYER_CONNECTIONS` of them at once, so the layer never opens
  more Redis connections than that plus its shared blocking read (and its cleaners);
- gives each `ENVELOPE_LAYER_TIMEOUT` seconds;
- notices an outage (an operation or a reader that cannot reach the layer): while the
  layer is down, operations fail at once with `TopicsUnavailable` (`topics_unavailable`)
  and readers wait. One recovery task probes the layer with backoff (0.05 s doubling up
  to 5 s) and, when it answers, lets everything go on.

The gate of a layer is per event loop (daphne and uvicorn run one).
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from dataclasses import dataclass
from typing import Any

import anyio
from redis.exceptions import RedisError

from actors._settings import EnvelopeSettings
from actors.tracing import logger
from envelope import TopicsUnavailable

#: What a layer raises when it cannot be reached (redis-py's errors, sockets, timeouts).
UNREACHABLE: tuple[type[Exception], ...] = (RedisError, OSError, TimeoutError)
_RETRY_LATER: tuple[type[Exception], ...] = (*UNREACHABLE, TopicsUnavailable)

_PROBE_GROUP = "envelope.probe"
_PROBE_CHANNEL = "envelope.probe"
_FIRST_DELAY = 0.05
_MAX_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class GateStatistics:
    available: bool
    running: int  # operations on the layer now
    limit: int  # at most this many at once
    outages: int  # since the process started


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
        self._down_since = 0.0
        self._outages = 0

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
        try:
            while True:
                await anyio.sleep(delay * (0.5 + random.random()))
                try:
                    probe = (_PROBE_GROUP, _PROBE_CHANNEL)
                    await self._call("group_discard", probe, recovering=True)
                except _RETRY_LATER:
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                break
        except Exception:
            logger.exception("layer.recovery_failed")
        finally:
            self.available = True
            logger.info("layer.recovered", down_s=round(time.monotonic() - self._down_since, 3))
            assert self._back is not None
            self._back.set()

    def statistics(self) -> GateStatistics:
        return GateStatistics(
            available=self.available,
            running=self._running,
            limit=self.limit,
            outages=self._outages,
        )


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LayerGate]] = (
    weakref.WeakKeyDictionary()
)


async def bounded_call(layer: Any, operation: str, *args: Any) -> Any:
    """`layer.<operation>(*args)` for code outside a connection (`publish`, `tell`,
    on-commit pushes): through the gate of the running loop when it has one (a server's),
    else timed with `ENVELOPE_LAYER_TIMEOUT` (a worker's or a view's short-lived loop,
    where a recovery task would not outlive the call). `TopicsUnavailable` when the layer
    cannot be reached in time; never redis-py's own errors."""
    gate = _gates.get(asyncio.get_running_loop(), {}).get(id(layer))
    if gate is not None and gate.layer is layer:
        return await gate.call(operation, *args)
    timeout = EnvelopeSettings.from_django().layer_timeout
    try:
        with anyio.fail_after(timeout):
            return await getattr(layer, operation)(*args)
    except UNREACHABLE as exc:
        raise TopicsUnavailable() from exc


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
