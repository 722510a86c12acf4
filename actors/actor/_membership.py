"""A connection's topics: joining and leaving channel-layer groups, publishing to them."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel

from actors.publishing import group_for, push_message, user_topic_name
from envelope import wire_name


class TopicMembership:
    """The topic side of `ConnectionActor` (which holds the state named here)."""

    __slots__ = ()

    address: str | None
    authenticated: bool
    layer: Any
    log: Any
    topics: set[str]
    user: Any
    _log_info: bool

    def _group(self, topic: str) -> tuple[Any, str]:
        if self.layer is None or self.address is None:
            raise RuntimeError("topics need CHANNEL_LAYERS to be configured")
        return self.layer, group_for(topic)

    async def publish(self, topic: str, model: BaseModel, *, i: str | None = None) -> None:
        if self.layer is None:
            raise RuntimeError("publishing needs CHANNEL_LAYERS to be configured")
        await self.layer.group_send(group_for(topic), push_message(model, i))
        if self._log_info:
            self.log.info("push.published", i=i, t=wire_name(model), topic=topic)

    async def subscribe(self, topic: str) -> None:
        layer, group = self._group(topic)
        await layer.group_add(group, self.address)
        self.topics.add(topic)

    async def leave(self, topic: str) -> None:
        layer, group = self._group(topic)
        await layer.group_discard(group, self.address)
        self.topics.discard(topic)

    async def _join_user_topic(self) -> None:
        # Before the socket is accepted: a logout can then never miss a connection.
        if self.authenticated and self.layer is not None and self.address is not None:
            await self.subscribe(user_topic_name(self.user))

    async def _leave_all(self) -> None:
        if self.layer is None or self.address is None:
            return
        with anyio.CancelScope(shield=True):
            for topic in list(self.topics):
                try:
                    await self.layer.group_discard(group_for(topic), self.address)
                except Exception:
                    self.log.warning("topic.leave_failed", topic=topic, exc_info=True)
            self.topics.clear()
