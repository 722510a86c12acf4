"""`LayerGate`: bounded, timed channel-layer operations that outlive the layer's outages.

The layer here is Channels' in-memory one behind a switch that makes it unreachable (as
redis-py raises when Redis is away); the same behaviours over a real Redis that is
stopped and frozen are in tests/faults/.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from channels.layers import InMemoryChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError

from actors.publishing import LayerGate
from envelope import TopicsUnavailable


class SwitchedLayer(InMemoryChannelLayer):
    """The in-memory layer, unreachable while `down`, counting operations at once."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.running = 0
        self.most = 0

    async def _op(self, method: Any, *args: Any) -> Any:
        if self.down:
            raise RedisConnectionError("Connection refused.")
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await anyio.sleep(0.001)
            return await method(*args)
        finally:
            self.running -= 1

    async def group_add(self, group: str, channel: str) -> None:
        await self._op(super().group_add, group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self._op(super().group_discard, group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._op(super().group_send, group, message)

    def members(self, group: str) -> set[str]:
        return set(self.groups.get(group, {}))


@pytest.fixture
def layer() -> SwitchedLayer:
    return SwitchedLayer()


async def test_operations_run_at_most_the_cap_at_once(layer: SwitchedLayer) -> None:
    gate = LayerGate(layer, connections=4, timeout=2)
    channels = [f"c.{n}" for n in range(100)]
    async with anyio.create_task_group() as tg:
        for channel in channels:
            tg.start_soon(gate.call, "group_add", "tp.room", channel)
    assert layer.members("tp.room") == set(channels)
    async with anyio.create_task_group() as tg:
        for channel in channels:
            tg.start_soon(gate.call, "group_discard", "tp.room", channel)
    assert layer.members("tp.room") == set()
    assert layer.most == 4


async def test_while_the_layer_is_away_operations_fail_at_once(layer: SwitchedLayer) -> None:
    gate = LayerGate(layer, connections=4, timeout=2)
    layer.down = True
    with pytest.raises(TopicsUnavailable):
        await gate.call("group_send", "tp.room", {"type": "x"})
    assert not gate.available
    with anyio.fail_after(0.5), pytest.raises(TopicsUnavailable):  # no second attempt
        await gate.call("group_send", "tp.room", {"type": "x"})
    layer.down = False
    with anyio.fail_after(5):
        await gate.wait_available()
    await gate.call("group_send", "tp.room", {"type": "x"})
    assert gate.statistics().outages == 1


async def test_an_operation_that_hangs_is_answered_after_the_timeout(
    layer: SwitchedLayer,
) -> None:
    async def hang(*args: Any) -> None:
        await anyio.sleep_forever()

    gate = LayerGate(layer, connections=4, timeout=0.05)
    layer.group_send = hang  # type: ignore[method-assign]
    with anyio.fail_after(2), pytest.raises(TopicsUnavailable):
        await gate.call("group_send", "tp.room", {"type": "x"})
    assert not gate.available
