"""The user topic: logging out closes the user's sockets; re-checking drops subscriptions."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction

from actors import CLOSE_LOGGED_OUT
from actors.testing import EnvelopeCommunicator
from actors.topics import (
    Topic,
    aclose_user_connections,
    arecheck_subscriptions,
    publish,
    recheck_subscriptions,
    topics,
)
from envelope import State
from tests.actors import topics_app
from tests.actors.topics_app import Note, consumer_app, create_user, user


async def open_client(who: object) -> EnvelopeCommunicator:
    client = EnvelopeCommunicator(consumer_app(who))
    ok, _ = await client.connect()
    assert ok
    return client


async def test_closing_a_users_connections_pushes_closing_then_closes_with_4001() -> None:
    mine, other = await open_client(user(pk=5)), await open_client(user(pk=6))
    try:
        await aclose_user_connections(user(pk=5))
        push = await mine.receive()
        assert (push.t, push.p, push.s) == (
            "connection.closing",
            {"code": CLOSE_LOGGED_OUT, "reason": "logged_out"},
            None,
        )
        closed = await mine.receive_output(2)
        assert closed == {"type": "websocket.close", "code": 4001}
        assert (await other.request("topic.list")).s is State.SUCCESS  # others live on
    finally:
        await other.disconnect()
        await mine.wait()


async def test_djangos_user_logged_out_signal_closes_the_sockets() -> None:
    client = await open_client(user(pk=11))
    try:
        await sync_to_async(user_logged_out.send)(sender=None, request=None, user=user(pk=11))
        assert (await client.receive()).t == "connection.closing"
        assert (await client.receive_output(2))["code"] == CLOSE_LOGGED_OUT
    finally:
        await client.wait()


async def test_an_anonymous_logout_closes_nothing() -> None:
    client = await open_client(user(pk=12))
    try:
        anonymous = user(pk=None)
        anonymous.is_authenticated = False
        await sync_to_async(user_logged_out.send)(sender=None, request=None, user=anonymous)
        assert (await client.request("topic.list")).p == {"topics": ["user.12"]}
    finally:
        await client.disconnect()


update_user = sync_to_async(
    lambda pk, **fields: get_user_model()._default_manager.filter(pk=pk).update(**fields)
)


@pytest.mark.django_db(transaction=True)
async def test_recheck_leaves_what_the_user_may_no_longer_have() -> None:
    staffer = await create_user("rechecked", is_staff=True)
    client = await open_client(user(pk=staffer.pk, rooms={"a"}))
    try:
        for topic in ("tt.db.1", "tt.room.a", "tt.open.a"):
            reply = await client.request("topic.subscribe", {"topic": topic})
            assert reply.s is State.SUCCESS, reply
        await update_user(staffer.pk, is_staff=False)
        await arecheck_subscriptions(staffer, i="why-1")
        # Checked again with the user as the database has it now: no longer staff, and
        # (for the async check) without the rooms the connection's user object had.
        left = sorted([(await client.receive()).p["topic"] for _ in range(2)])
        assert left == ["tt.db.1", "tt.room.a"]
        listing = await client.request("topic.list")
        assert listing.p == {"topics": ["tt.open.a", f"user.{staffer.pk}"]}
        await publish("tt.db.1", Note(n=1))
        await publish("tt.open.a", Note(n=2))
        assert (await client.receive()).p == {"n": 2}
    finally:
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_recheck_pushes_topic_left_with_the_reason_and_cause() -> None:
    staffer = await create_user("pushed", is_staff=True)
    client = await open_client(user(pk=staffer.pk))
    try:
        await client.request("topic.subscribe", {"topic": "tt.db.2"})
        await update_user(staffer.pk, is_staff=False)
        await arecheck_subscriptions(staffer, i="why-2")
        push = await client.receive()
        assert (push.t, push.i, push.p, push.s) == (
            "topic.left",
            "why-2",
            {"topic": "tt.db.2", "reason": "forbidden"},
            None,
        )
    finally:
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_recheck_from_sync_code_waits_for_the_commit() -> None:
    staffer = await create_user("committed", is_staff=True)
    client = await open_client(user(pk=staffer.pk))
    try:
        await client.request("topic.subscribe", {"topic": "tt.db.3"})

        def demote() -> None:
            with transaction.atomic():
                get_user_model()._default_manager.filter(pk=staffer.pk).update(is_staff=False)
                recheck_subscriptions(staffer)

        await sync_to_async(demote)()
        push = await client.receive()
        assert push.p == {"topic": "tt.db.3", "reason": "forbidden"}
    finally:
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_recheck_keeps_what_is_still_allowed() -> None:
    staffer = await create_user("kept", is_staff=True)
    client = await open_client(user(pk=staffer.pk))
    try:
        await client.request("topic.subscribe", {"topic": "tt.db.4"})
        await arecheck_subscriptions(staffer)
        await publish("tt.db.4", Note(n=4))
        assert (await client.receive()).p == {"n": 4}  # no topic.left before it
    finally:
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_topic_no_longer_declared_is_left_as_gone() -> None:
    someone = await create_user("gone")
    temporary = Topic("tt.temporary", permission=None)
    client = await open_client(user(pk=someone.pk))
    try:
        await client.request("topic.subscribe", {"topic": "tt.temporary"})
        topics.discard(temporary)
        await arecheck_subscriptions(someone)
        assert (await client.receive()).p == {"topic": "tt.temporary", "reason": "gone"}
    finally:
        topics.discard(temporary)
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_check_that_fails_on_recheck_removes_the_subscription() -> None:
    someone = await create_user("flaky")
    client = await open_client(user(pk=someone.pk))
    try:
        assert (await client.request("topic.subscribe", {"topic": "tt.flaky"})).s is State.SUCCESS
        topics_app.flaky["broken"] = True
        await arecheck_subscriptions(someone)
        assert (await client.receive()).p == {"topic": "tt.flaky", "reason": "forbidden"}
    finally:
        topics_app.flaky["broken"] = False
        await client.disconnect()
