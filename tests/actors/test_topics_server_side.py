"""Joins and leaves decided by server code, the actor's own bookkeeping, bad snapshots."""

from __future__ import annotations

import anyio
import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.db import transaction

from actors.publishing import fanout_for
from actors.testing import ActorHarness, EnvelopeCommunicator
from actors.topics import leave_on_commit, subscribe_on_commit, tell
from envelope import State
from tests.actors import topics_app
from tests.actors.topics_app import Note, consumer_app, user


async def wait_for_topics(client: EnvelopeCommunicator, expected: list[str]) -> None:
    """The join arrives over the channel layer after the commit: ask until it shows."""
    for _ in range(150):
        topics = (await client.request("topic.list")).p["topics"]
        if topics == expected:
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"topics {topics} never became {expected}")


@pytest.mark.django_db(transaction=True)
async def test_server_code_joins_and_leaves_a_connection_on_commit() -> None:
    client = EnvelopeCommunicator(consumer_app(user(pk=21)))
    await client.connect()
    try:
        address = (await client.request("tt.address")).p["address"]

        def join_then_roll_back_then_join() -> None:
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                subscribe_on_commit(address, "tt.open.rolled-back")
                1 / 0  # noqa: B018
            with transaction.atomic():
                subscribe_on_commit(address, "tt.open.joined")

        await sync_to_async(join_then_roll_back_then_join)()
        await wait_for_topics(client, ["tt.open.joined", "user.21"])
        await sync_to_async(leave_on_commit)(address, "tt.open.joined")
        await wait_for_topics(client, ["user.21"])
    finally:
        await client.disconnect()


def test_server_side_joins_refuse_bad_topic_names() -> None:
    with pytest.raises(ValueError, match="topic name"):
        subscribe_on_commit("some-channel", "not a topic")


async def test_a_snapshot_that_is_not_models_answers_internal() -> None:
    client = EnvelopeCommunicator(consumer_app(user()))
    await client.connect()
    try:
        reply = await client.request("topic.subscribe", {"topic": "tt.badsnap"})
        assert (reply.s, reply.p["code"]) == (State.FAILED, "internal")
    finally:
        await client.disconnect()


async def test_the_actor_keeps_its_topics_and_leaves_them_when_it_stops() -> None:
    layer = InMemoryChannelLayer()
    address = await layer.new_channel()
    hub = fanout_for(layer)
    async with ActorHarness(
        routers=[topics_app.router], layer=layer, address=address, user=user(pk=31)
    ) as harness:
        assert hub.local_members("user.31") == 1
        reply = await harness.request("topic.subscribe", {"topic": "tt.open.h"})
        assert reply.s is State.SUCCESS
        assert harness.actor.topics == {"user.31", "tt.open.h"}
        assert hub.local_members("tt.open.h") == 1
    assert hub.local_members("tt.open.h") == 0
    assert hub.local_members("user.31") == 0


async def test_tell_pushes_to_one_connection_by_its_address() -> None:
    one = EnvelopeCommunicator(consumer_app(user(pk=41)))
    other = EnvelopeCommunicator(consumer_app(user(pk=41)))
    await one.connect()
    await other.connect()
    try:
        address = (await one.request("tt.address")).p["address"]
        await tell(address, Note(n=1), i="told")
        push = await one.receive()
        assert (push.t, push.i, push.p) == ("tt.note", "told", {"n": 1})
        assert await other.receive_nothing(0.1)
    finally:
        await one.disconnect()
        await other.disconnect()
