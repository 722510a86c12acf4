"""A connection's topics: its membership in its process's fan-out (`FanoutHub`),
publishing to them, and taking what the hub hands it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from actors import presence
from actors.actor._state import ActorState
from actors.publishing import FanoutHub, fanout_for, push_message, user_topic_name
from actors.tracing import publish_span
from envelope import wire_name


class TopicMembership(ActorState):
    """The topic side of `ConnectionActor` (its state: `ActorState`)."""

    __slots__ = ()

    log: Any

    @property
    def closed(self) -> bool:
        raise NotImplementedError

    def push_nowait(self, text: str) -> None:
        raise NotImplementedError

    def message_nowait(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def _hub(self, what: str = "topics") -> FanoutHub:
        if self.layer is None or (self.address is None and what == "topics"):
            raise RuntimeError(f"{what} need CHANNEL_LAYERS to be configured")
        return fanout_for(self.layer)

    async def publish(self, topic: str, model: BaseModel, *, i: str | None = None) -> None:
        """Push to `topic` now; `TopicsUnavailable` when Redis is away or too slow."""
        t = wire_name(model)
        with publish_span(t, topic=topic, i=i):
            await self._hub("publishing").publish_text(topic, push_message(model, i)["text"])
        if self._log_info:
            self.log.info("push.published", i=i, t=t, topic=topic)

    async def subscribe(self, topic: str) -> None:
        await self._hub().join(topic, self)
        if self.closed:  # it went while the join was on its way: no dead member
            self._hub().leave(topic, self)
            return
        self._track(topic, True)
        await presence.joined(self, topic)

    async def leave(self, topic: str) -> None:
        self._hub().leave(topic, self)
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
        # Redis is away, the handshake goes on: the hub subscribes when it is back.
        if self.authenticated and self.layer is not None and self.address is not None:
            topic = user_topic_name(self.user)
            await self._hub().join(topic, self, keep=True)
            self._track(topic, True)
            await presence.joined(self, topic)

    async def _leave_all(self) -> None:
        if self.layer is None or self.address is None or not self.topics:
            return
        self._hub().leave_all(self.topics, self)
        if self._metrics is not None:
            self._metrics.left(len(self.topics))
        for topic in self.topics:
            presence.left(self, topic)
        self.topics.clear()
