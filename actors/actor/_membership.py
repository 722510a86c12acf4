"""A connection's topics: joining and leaving channel-layer groups, publishing to them."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel

from actors import presence
from actors.publishing import LayerGate, gate_for, group_for, push_message, user_topic_name
from envelope import TopicsUnavailable, wire_name


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
    _metrics: Any  # actors.metrics.Metrics, or None

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def _gate(self, what: str = "topics") -> LayerGate:
        if self.layer is None or (self.address is None and what == "topics"):
            raise RuntimeError(f"{what} need CHANNEL_LAYERS to be configured")
        return gate_for(self.layer)

    async def publish(self, topic: str, model: BaseModel, *, i: str | None = None) -> None:
        """Push to `topic` now; `TopicsUnavailable` when the layer is away or too slow."""
        await self._gate("publishing").call("group_send", group_for(topic), push_message(model, i))
        if self._log_info:
            self.log.info("push.published", i=i, t=wire_name(model), topic=topic)

    async def subscribe(self, topic: str) -> None:
        await self._gate().join(self, group_for(topic))
        self._track(topic, True)
        await presence.joined(self, topic)

    async def leave(self, topic: str) -> None:
        await self._gate().leave(group_for(topic), self.address)
        self._track(topic, False)
        presence.left(self, topic)

    def _track(self, topic: str, joined: bool) -> None:
        """Add or drop `topic` from the connection's set (and from the subscribers gauge
        when the set changed)."""
        topics = self.topics
        if (topic in topics) is joined:
            return
        if joined:
            topics.add(topic)
        else:
            topics.discard(topic)
        if self._metrics is not None:
            self._metrics.subscribed(1 if joined else -1)

    async def _join_user_topic(self) -> None:
        # Before the socket is accepted: a logout can then never miss a connection. When
        # the layer is away, the handshake goes on: the join is done when it is back.
        if self.authenticated and self.layer is not None and self.address is not None:
            topic = user_topic_name(self.user)
            try:
                await self.subscribe(topic)
            except TopicsUnavailable:
                self._track(topic, True)
                self._gate().remember(self)
                self.log.warning("topic.join_deferred", topic=topic)

    async def _leave_all(self) -> None:
        if self.layer is None or self.address is None or not self.topics:
            return
        groups = [group_for(topic) for topic in self.topics]
        if self._metrics is not None:
            self._metrics.left(len(self.topics))
        for topic in self.topics:
            presence.left(self, topic)
        self.topics.clear()
        with anyio.CancelScope(shield=True):
            await self._gate().leave_for_good(groups, self.address)
