"""The built-in topic messages: `topic.subscribe`, `topic.leave`, `topic.list`.

They are ordinary handlers in `router` (served by every consumer unless
`ENVELOPE_BUILTIN_ROUTERS = False`). A subscription lives in the connection's actor
(`actor.topics`); only the actor joins and leaves groups, so a connection that is gone
can never be left in one.

Subscribing to a topic whose checks all run in the actor (async, or marked
`database_free`) answers `s` at once. Otherwise the request is answered `q`, the checks
run on a worker with the database (an RQ job when the deferred backend is RQ, else a
thread of this process), and the worker's verdict comes back to the actor, which joins
the group and answers `s` (or `f`). Neither `q` nor `f` say anything about the topic.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel, Field

from actors import stages
from actors._database import database_work
from actors._settings import configured_queues
from actors._users import user_pk
from actors.deferred import backend_kind, get_backend
from actors.publishing import TOPIC_PATTERN, TopicMatch, topics, user_topic_name
from actors.request import Later, Queued, RequestContext
from actors.topics._checks import CheckContext, run_checks, run_checks_sync
from envelope import (
    Cancelled,
    Failure,
    Forbidden,
    NotFound,
    QueueUnavailable,
    State,
    encode,
    message,
    wire_name,
)
from handlers import Router

router = Router("topics")

TopicName = Field(..., regex=TOPIC_PATTERN.pattern, max_length=100)


@message("topic.subscribe")
class TopicSubscribe(BaseModel):
    topic: str = TopicName


@message("topic.leave")
class TopicLeave(BaseModel):
    topic: str = TopicName


@message("topic.list")
class TopicList(BaseModel):
    pass


@message("topic.left")
class TopicLeft(BaseModel):
    """Pushed when the server removes a subscription (`reason`: "forbidden", "gone")."""

    topic: str
    reason: str


class Subscribed(BaseModel):
    topic: str
    state: list[dict[str, Any]] | None = None  # the snapshot: [{"t": ..., "p": ...}, ...]


class Left(BaseModel):
    topic: str


class Subscriptions(BaseModel):
    topics: list[str]


class TooManyTopics(Failure):
    code = "too_many_topics"
    message = "This connection has as many subscriptions as it may have."


class UserTopicLeave(Forbidden):
    message = "A connection stays in its user's topic."


def no_such_topic() -> NotFound:
    return NotFound("There is no such topic.")


def left_meanwhile() -> Cancelled:
    return Cancelled("The topic was left before the subscription was confirmed.")


# Subscribes answered `q` and not yet answered, per actor: topic -> their `i`s. A leave
# cancels them, so a verdict arriving after it joins nothing.
_pending: weakref.WeakKeyDictionary[Any, dict[str, set[str | None]]] = weakref.WeakKeyDictionary()


def pending_of(actor: Any) -> dict[str, set[str | None]]:
    found = _pending.get(actor)
    if found is None:
        found = _pending[actor] = {}
    return found


def take_pending(actor: Any, topic: str, i: str | None) -> bool:
    """Was the subscribe `i` to `topic` still waiting (not cancelled by a leave)? Forgets it."""
    waiting = pending_of(actor).get(topic)
    if not waiting or i not in waiting:
        return False
    waiting.discard(i)
    if not waiting:
        del pending_of(actor)[topic]
    return True


@router.handler
async def subscribe(msg: TopicSubscribe, ctx: RequestContext) -> Subscribed | None:
    """Join a declared topic if its permission allows; answer with its snapshot."""
    match = topics.match(msg.topic)
    if match is None:
        raise no_such_topic()
    actor = ctx.actor
    limit = actor.config.settings.max_topics
    pending = pending_of(actor)
    if (
        msg.topic not in actor.topics
        and msg.topic not in pending
        and len(actor.topics) + len(pending.keys() - actor.topics) >= limit
    ):
        raise TooManyTopics(limit=limit)
    if match.spec.checks_in_actor:
        state = await run_checks(match, ctx)
        if state is False:
            raise Forbidden()
        await actor.subscribe(match.topic)
        return Subscribed(topic=match.topic, state=state)
    # `q` once the checks are really queued (a job that cannot be enqueued answers `f`).
    pending.setdefault(match.topic, set()).add(ctx.envelope.i)
    try:
        on_rq = await _enqueue_on_rq(ctx, match)
    except BaseException:
        take_pending(actor, match.topic, ctx.envelope.i)
        raise
    if on_rq:
        # `q`, its one envelope.handled; the worker's verdict comes back as a TopicCommand.
        ctx.outcome = Queued()
    else:
        # `q`, then the checks in a thread; envelope.handled when they answer.
        ctx.outcome = Later(State.QUEUED, partial(stages.run_and_answer, ctx, _checked(match)))
    return None


@router.handler
async def leave(msg: TopicLeave, ctx: RequestContext) -> Left:
    """Leave a topic (a topic the connection is not in is left already)."""
    actor = ctx.actor
    if actor.authenticated and msg.topic == user_topic_name(actor.user):
        raise UserTopicLeave()
    pending_of(actor).pop(msg.topic, None)
    if msg.topic in actor.topics:
        await actor.leave(msg.topic)
    return Left(topic=msg.topic)


@router.handler
async def list_topics(msg: TopicList, ctx: RequestContext) -> Subscriptions:
    """The topics this connection is subscribed to, sorted."""
    return Subscriptions(topics=sorted(ctx.actor.topics))


# -- checks off the actor --------------------------------------------------------------


async def _enqueue_on_rq(ctx: RequestContext, match: TopicMatch) -> bool:
    """Send the checks to an RQ worker when the deferred backend is RQ; False otherwise."""
    settings = ctx.actor.config.settings
    if backend_kind(settings) != "rq":
        return False
    actor = ctx.actor
    queue = match.spec.queue
    if queue not in configured_queues():
        ctx.log.error(
            "topic.queue_missing",
            pattern=match.spec.pattern,
            queue=queue,
            fix="add the queue to RQ_QUEUES or give the Topic queue= one of them",
        )
        raise QueueUnavailable()
    backend = get_backend(settings, "rq")
    await backend.aenqueue_call(
        queue,
        "actors.topics._worker.check_subscription",
        actor.address,
        match.topic,
        ctx.envelope.i,
        user_pk(actor.user),
        match.spec.module,
    )
    ctx.log.info("topic.check_queued", queue=queue)
    return True


def _checked(match: TopicMatch) -> Callable[[RequestContext], Awaitable[None]]:
    """The step of a subscription whose checks run in a worker thread of this process:
    the checks there, the join and the result here."""

    async def step(ctx: RequestContext) -> None:
        check_ctx = CheckContext.of_request(ctx)
        try:
            state = await anyio.to_thread.run_sync(_run_sync_checks, match, check_ctx)
        finally:
            waiting = take_pending(ctx.actor, match.topic, ctx.envelope.i)
        if state is False:
            raise Forbidden()
        if not waiting:
            raise left_meanwhile()
        await ctx.actor.subscribe(match.topic)
        ctx.result = Subscribed(topic=match.topic, state=state)

    return step


def _run_sync_checks(match: TopicMatch, ctx: CheckContext) -> Any:
    with database_work():
        return run_checks_sync(match, ctx, anyio.from_thread.run)


def answer_text(topic: str, i: str | None, state: Any) -> str:
    """The `s` reply to a subscribe, or its `f` when `state` is a `Failure`."""
    t = wire_name(TopicSubscribe)
    if isinstance(state, Failure):
        return encode(t, i, state.payload(), State.FAILED)
    return encode(t, i, Subscribed(topic=topic, state=state), State.SUCCESS)
