"""What an actor does with a topic command from the channel layer (`envelope.topics`)."""

from __future__ import annotations

from typing import Any

from actors.publishing import topics
from actors.topics._recheck import recheck
from actors.topics._subscriptions import answer_text, left_meanwhile, take_pending


class TopicCommand:
    """A mailbox item from the channel layer (`envelope.topics`): a worker's verdict on a
    subscribe (`op="answer"`), a join or leave decided by server code (`"join"`,
    `"leave"`, no permission check), or a re-check of the subscriptions (`"recheck"`)."""

    __slots__ = ("message",)

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message

    async def __call__(self, actor: Any) -> None:
        msg = self.message
        op = msg.get("op")
        if op == "answer":
            await self._answer(actor, msg)
        elif op in ("join", "leave"):
            topic = msg.get("topic")
            if isinstance(topic, str) and not actor.closed:
                if op == "join" and topic not in actor.topics:
                    await actor.subscribe(topic)
                elif op == "leave" and topic in actor.topics:
                    await actor.leave(topic)
        elif op == "recheck":
            actor.start_soon(recheck, actor, msg.get("i"))
        else:
            actor.log.warning("topic.unknown_command", op=op)

    @staticmethod
    async def _answer(actor: Any, msg: dict[str, Any]) -> None:
        topic, i = msg.get("topic"), msg.get("i")
        if not isinstance(topic, str) or actor.closed:
            return
        text = msg["text"]
        waiting = take_pending(actor, topic, i)
        joined = bool(msg.get("join") and waiting and topics.match(topic) is not None)
        if joined:
            await actor.subscribe(topic)
        elif msg.get("join"):
            text = answer_text(topic, i, left_meanwhile())
        actor.log.info("topic.answered", i=i, topic=topic, joined=joined)
        await actor.send_text(text)
