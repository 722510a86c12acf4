"""The worker side of a subscribe whose checks need the database (an RQ job).

The job runs the topic's permission and snapshot with the user loaded from the database,
then sends its verdict to the connection's actor (`envelope.topics`, `op="answer"`) with
the reply already encoded; the actor joins the group (when allowed) and sends the reply.
Nothing reaches the client from here directly, so a connection that closed meanwhile is
never added to a group.
"""

from __future__ import annotations

import importlib
from typing import Any

import structlog
from asgiref.sync import async_to_sync

from actors._database import database_work
from actors._users import load_user
from actors.publishing import TOPICS, send_sync, topics
from actors.topics._checks import CheckContext, run_checks_sync
from actors.topics._subscriptions import answer_text, no_such_topic
from actors.tracing import logger
from envelope import Envelope, Failure, Forbidden, Internal


def check_subscription(
    address: str, topic: str, i: str | None, user_pk: Any, module: str = ""
) -> None:
    """RQ job: may the user of connection `address` subscribe to `topic`? Tell the actor.

    `module` declared the topic: it is imported first, so the worker knows the topic
    without configuration."""
    log = logger.bind(i=i, conn=address, user=user_pk, t="topic.subscribe", topic=topic)
    join = False
    with database_work():
        try:
            with structlog.contextvars.bound_contextvars(i=i):
                if module and module != "__main__":
                    importlib.import_module(module)
                match = topics.match(topic)
                if match is None:
                    raise no_such_topic()
                ctx = CheckContext(
                    user=load_user(user_pk),
                    connection=address,
                    log=log,
                    envelope=Envelope("topic.subscribe", i, {"topic": topic}),
                )
                verdict = run_checks_sync(match, ctx, lambda fn, *args: async_to_sync(fn)(*args))
                if verdict is False:
                    raise Forbidden()
                text = answer_text(topic, i, verdict)
                join = True
        except Failure as exc:
            text = answer_text(topic, i, exc)
        except Exception as exc:
            log.error("topic.check_failed", exc_info=exc)
            text = answer_text(topic, i, Internal())
    log.info("topic.checked", joined=join)
    message = {"type": TOPICS, "op": "answer", "topic": topic, "i": i, "join": join, "text": text}
    send_sync([("address", address, message)])
