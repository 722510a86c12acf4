"""topic.subscribe / topic.leave / topic.list over the consumer, with the in-memory layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from channels.layers import get_channel_layer

from actors import EnvelopeConsumer
from actors.publishing import fanout_for
from actors.testing import EnvelopeCommunicator, WithUser
from actors.topics import publish
from envelope import State
from tests.actors import topics_app
from tests.actors.topics_app import ANONYMOUS, Note, consumer_app, create_user, user


@asynccontextmanager
async def connected(who: Any = None, **options: Any) -> AsyncIterator[EnvelopeCommunicator]:
    client = EnvelopeCommunicator(consumer_app(who if who is not None else user(), **options))
    ok, _ = await client.connect()
    assert ok
    try:
        yield client
    finally:
        await client.disconnect()


async def test_subscribe_then_receive_what_is_published() -> None:
    async with connected() as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.open.a"})
        assert reply.s is State.SUCCESS
        assert reply.p == {"topic": "tt.open.a", "state": None}
        await publish("tt.open.a", Note(n=1), i="cause-1")
        push = await client.receive()
        assert (push.t, push.i, push.p, push.s) == ("tt.note", "cause-1", {"n": 1}, None)


async def test_async_permission_runs_in_the_actor_and_answers_with_the_snapshot() -> None:
    topics_app.calls.clear()
    async with connected(user(rooms={"a"})) as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.room.a"}, i="s1")
        assert [e.s for e in client.seen] == [State.SUCCESS]  # no q: no worker involved
        assert reply.p == {
            "topic": "tt.room.a",
            "state": [{"t": "tt.room.state", "p": {"room": "a", "members": 3}}],
        }
        assert topics_app.calls == ["is_member:tt.room.a"]


async def test_refused_subscribe_is_forbidden_and_reveals_nothing() -> None:
    async with connected(user(rooms=set())) as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.room.a"})
        assert reply.s is State.FAILED
        assert reply.p["code"] == "forbidden"
        assert "tp." not in str(reply.p) and "tt.room" not in str(reply.p)
        await publish("tt.room.a", Note(n=1))
        listing = await client.request("topic.list")
        assert listing.p == {"topics": ["user.1"]}
        assert all(e.t != "tt.note" for e in client.seen)


async def test_unknown_topic_is_not_found() -> None:
    async with connected() as client:
        reply = await client.request("topic.subscribe", {"topic": "nothing.here"})
        assert (reply.s, reply.p["code"]) == (State.FAILED, "not_found")
        assert reply.p["message"] == "There is no such topic."


@pytest.mark.parametrize("topic", ["", "a b", "a/b", "x" * 101])
async def test_bad_topic_name_is_invalid_payload(topic: str) -> None:
    async with connected() as client:
        reply = await client.request("topic.subscribe", {"topic": topic})
        assert reply.p["code"] == "invalid_payload"
        assert reply.p["errors"][0]["loc"] == ["topic"]


async def test_a_permission_that_crashes_answers_internal_without_details() -> None:
    async with connected() as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.crash"})
        assert [e.s for e in client.seen] == [State.QUEUED, State.FAILED]
        assert reply.p["code"] == "internal"
        assert "secret" not in str(reply.p)


async def test_a_permission_may_answer_not_found_itself() -> None:
    async with connected() as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.hidden"})
        assert reply.p["code"] == "not_found"


async def test_database_free_sync_permission_runs_in_the_actor() -> None:
    async with connected() as client:
        ok = await client.request("topic.subscribe", {"topic": "tt.short.abc"})
        no = await client.request("topic.subscribe", {"topic": "tt.short.abcdef"})
        assert [e.s for e in client.seen] == [State.SUCCESS, State.FAILED]
        assert ok.p["topic"] == "tt.short.abc" and no.p["code"] == "forbidden"


@pytest.mark.django_db(transaction=True)
async def test_database_permission_answers_q_then_s_from_a_worker() -> None:
    staffer = await create_user("staffer", is_staff=True)
    await create_user("other")
    topics_app.calls.clear()
    async with connected(user(pk=staffer.pk)) as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.db.9"}, i="d1")
        assert [(e.i, e.s, e.p) for e in client.seen[:1]] == [("d1", State.QUEUED, None)]
        assert reply.s is State.SUCCESS
        assert reply.p == {
            "topic": "tt.db.9",
            "state": [{"t": "tt.room.state", "p": {"room": "9", "members": 2}}],
        }
        assert topics_app.calls == ["db:tt.db.9"]
        await publish("tt.db.9", Note(n=5))
        assert (await client.receive()).p == {"n": 5}


@pytest.mark.django_db(transaction=True)
async def test_database_permission_refused_answers_q_then_forbidden() -> None:
    plain = await create_user("plain")
    async with connected(user(pk=plain.pk)) as client:
        reply = await client.request("topic.subscribe", {"topic": "tt.db.9"})
        assert [e.s for e in client.seen] == [State.QUEUED, State.FAILED]
        assert reply.p == {"code": "forbidden", "message": reply.p["message"]}
        assert (await client.request("topic.list")).p == {"topics": [f"user.{plain.pk}"]}


async def test_leave_stops_the_pushes_and_list_shows_subscriptions() -> None:
    async with connected() as client:
        await client.request("topic.subscribe", {"topic": "tt.open.b"})
        await client.request("topic.subscribe", {"topic": "tt.open.a"})
        assert (await client.request("topic.list")).p == {
            "topics": ["tt.open.a", "tt.open.b", "user.1"]
        }
        left = await client.request("topic.leave", {"topic": "tt.open.a"})
        assert (left.s, left.p) == (State.SUCCESS, {"topic": "tt.open.a"})
        again = await client.request("topic.leave", {"topic": "tt.open.a"})
        assert again.s is State.SUCCESS
        await publish("tt.open.a", Note(n=1))
        await publish("tt.open.b", Note(n=2))
        assert (await client.receive()).p == {"n": 2}


async def test_the_user_topic_is_joined_on_connect_and_cannot_be_left() -> None:
    async with connected(user(pk=7)) as client:
        assert (await client.request("topic.list")).p == {"topics": ["user.7"]}
        await publish("user.7", Note(n=7))
        assert (await client.receive()).p == {"n": 7}
        reply = await client.request("topic.leave", {"topic": "user.7"})
        assert reply.p["code"] == "forbidden"


async def test_another_users_topic_is_forbidden() -> None:
    async with connected(user(pk=7)) as client:
        reply = await client.request("topic.subscribe", {"topic": "user.8"})
        assert reply.p["code"] == "forbidden"


async def test_anonymous_connections_join_no_user_topic_and_default_permission_refuses() -> None:
    async with connected(ANONYMOUS) as client:
        assert (await client.request("topic.list")).p == {"topics": []}
        reply = await client.request("topic.subscribe", {"topic": "tt.staff"})
        assert reply.p["code"] == "forbidden"


async def test_too_many_topics_is_refused() -> None:
    async with connected(max_topics=2) as client:  # the user topic counts
        await client.request("topic.subscribe", {"topic": "tt.open.a"})
        reply = await client.request("topic.subscribe", {"topic": "tt.open.b"})
        assert reply.p == {
            "code": "too_many_topics",
            "message": "This connection has as many subscriptions as it may have.",
            "limit": 2,
        }
        again = await client.request("topic.subscribe", {"topic": "tt.open.a"})
        assert again.s is State.SUCCESS


async def test_disconnect_leaves_every_topic() -> None:
    hub = fanout_for(get_channel_layer())
    async with connected(user(pk=3)) as client:
        await client.request("topic.subscribe", {"topic": "tt.open.gone"})
        assert hub.local_members("tt.open.gone") == 1
    assert hub.local_members("tt.open.gone") == 0
    assert hub.local_members("user.3") == 0


async def test_builtin_routers_can_be_turned_off() -> None:
    app = EnvelopeConsumer.as_asgi(routers=[topics_app.router], builtin_routers=False)
    client = EnvelopeCommunicator(WithUser(app, user()))
    await client.connect()
    try:
        reply = await client.request("topic.list")
        assert reply.p["code"] == "unknown_type"
    finally:
        await client.disconnect()


async def test_a_worker_check_on_a_queue_rq_does_not_know_answers_queue_unavailable(
    settings: Any,
) -> None:
    settings.RQ_QUEUES = {"elsewhere": {"URL": "redis://127.0.0.1:1/0"}}
    app = EnvelopeConsumer.as_asgi(routers=[], deferred="rq")
    client = EnvelopeCommunicator(WithUser(app, user()))
    await client.connect()
    try:
        reply = await client.request("topic.subscribe", {"topic": "tt.db.1"})
        assert [e.s for e in client.seen] == [State.FAILED]  # no q: nothing was queued
        assert reply.p["code"] == "queue_unavailable"
    finally:
        await client.disconnect()


async def test_leaving_while_the_check_runs_cancels_the_subscribe() -> None:
    async with connected() as client:
        i = await client.send("topic.subscribe", {"topic": "tt.slow.a"})
        assert (await client.receive()).s is State.QUEUED
        left = await client.request("topic.leave", {"topic": "tt.slow.a"})
        assert left.s is State.SUCCESS
        reply = await client.until_terminal(i)
        assert (reply.s, reply.p["code"]) == (State.FAILED, "cancelled")
        assert (await client.request("topic.list")).p == {"topics": ["user.1"]}


async def test_pending_subscribes_count_toward_the_limit() -> None:
    async with connected(max_topics=2) as client:
        i = await client.send("topic.subscribe", {"topic": "tt.slow.b"})
        assert (await client.receive()).s is State.QUEUED
        over = await client.request("topic.subscribe", {"topic": "tt.open.c"})
        assert over.p["code"] == "too_many_topics"
        assert (await client.until_terminal(i)).s is State.SUCCESS


@pytest.mark.django_db(transaction=True)
async def test_a_deferred_handlers_pushes_arrive_batched_before_its_reply() -> None:
    publisher = await create_user("publisher")  # the worker loads the user from the database
    async with connected(user(pk=publisher.pk)) as client:
        await client.request("topic.subscribe", {"topic": "tt.open.jobs"})
        reply = await client.request(
            "tt.publish_later", {"topic": "tt.open.jobs", "count": 3}, i="job-1"
        )
        assert reply.s is State.SUCCESS
        frames = [(e.t, e.s) for e in client.seen[1:]]
        assert frames == [
            ("tt.publish_later", State.QUEUED),
            ("tt.publish_later", State.RUNNING),
            ("batch", None),
            ("tt.publish_later", State.SUCCESS),
        ]
        batch = client.seen[3]
        assert batch.i == "job-1" and [item["p"] for item in batch.p["items"]] == [
            {"n": 0},
            {"n": 1},
            {"n": 2},
        ]
