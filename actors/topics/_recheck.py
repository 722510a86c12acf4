"""Re-checking a user's subscriptions after their rights changed.

    recheck_subscriptions(user)          # sync code: when the transaction commits
    await arecheck_subscriptions(user)   # async code: now

Every connection of the user (on every server, through the user topic ``user.<pk>``)
runs each of its topics' permissions again, with the user loaded afresh from the
database, leaves the topics it may no longer have and pushes ``topic.left`` for each
(`reason`: "forbidden"; "gone" when no declared topic matches it any more). Database
checks run in a worker thread of the server holding the connection.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
from django.db import transaction

from actors._database import database_work
from actors._users import load_user
from actors.publishing import TOPICS, command_group, send_sync, topics, user_topic_name
from actors.topics._checks import CheckContext, run_checks_sync
from actors.topics._subscriptions import TopicLeft


def recheck_subscriptions(user: Any, *, i: str | None = None, using: str | None = None) -> None:
    """From sync code: re-check `user`'s subscriptions once the transaction commits."""
    message = {"type": TOPICS, "op": "recheck", "i": i}
    target = user_topic_name(user)
    transaction.on_commit(lambda: send_sync([("topic", target, message)]), using=using, robust=True)


async def arecheck_subscriptions(user: Any, *, i: str | None = None, layer: Any = None) -> None:
    """Re-check `user`'s subscriptions now (`user` may also be its topic name)."""
    topic = user if isinstance(user, str) else user_topic_name(user)
    await command_group(topic, "recheck", i=i, layer=layer)


async def recheck(actor: Any, i: str | None = None) -> None:
    """In the actor's task group: leave what the user may no longer subscribe to."""
    if not actor.authenticated or actor.closed:
        return
    own = user_topic_name(actor.user)
    candidates = sorted(t for t in actor.topics if t != own)
    if not candidates:
        return
    log = actor.log.bind(i=i)
    verdicts = await anyio.to_thread.run_sync(_verdicts, actor, candidates, log)
    for topic, reason in verdicts:
        if topic in actor.topics and not actor.closed:
            await actor.leave(topic)
            await actor.send_model(TopicLeft(topic=topic, reason=reason), i)
            log.info("topic.removed", topic=topic, reason=reason)


def _verdicts(actor: Any, candidates: list[str], log: Any) -> list[tuple[str, str]]:
    with database_work():
        ctx = CheckContext(
            user=load_user(actor.user.pk), connection=actor.address, log=log, scope=actor.scope
        )
        out = []
        for topic in candidates:
            match = topics.match(topic)
            if match is None:
                out.append((topic, "gone"))
                continue
            if match.spec.permission is None:
                continue
            try:
                allowed = run_checks_sync(match, ctx, anyio.from_thread.run, snapshot=False)
            except Exception as exc:
                log.error("topic.recheck_failed", topic=topic, exc_info=exc)
                allowed = False
            if allowed is False:
                out.append((topic, "forbidden"))
        return out
