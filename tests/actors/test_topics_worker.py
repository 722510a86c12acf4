"""The worker side of a database-checked subscribe (`check_subscription`), in-process:
its verdict travels over the channel layer to the connection's actor, which joins (unless
the topic was left meanwhile) and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from channels.layers import get_channel_layer

from actors.publishing import fanout_for, pushes_through, thread_sender
from actors.testing import ActorHarness
from actors.topics import TopicCommand
from actors.topics._subscriptions import pending_of
from actors.topics._worker import check_subscription
from envelope import State
from tests.actors import topics_app
from tests.actors.topics_app import create_user, user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def harness() -> AsyncIterator[tuple[ActorHarness, int]]:
    staffer = await create_user("worker-staff", is_staff=True)
    layer = get_channel_layer()
    address = await layer.new_channel()
    async with ActorHarness(
        routers=[topics_app.router], layer=layer, address=address, user=user(pk=staffer.pk)
    ) as h:
        yield h, staffer.pk


async def verdict(h: ActorHarness, topic: str, i: str, user_pk: Any) -> None:
    """Run the job in a thread (as a worker would), then hand its message to the actor
    (as the consumer would)."""
    token = anyio.lowlevel.current_token()
    actor = h.actor
    pending_of(actor).setdefault(topic, set()).add(i)  # what topic.subscribe did before `q`

    def job() -> None:
        with pushes_through(thread_sender(token)):
            check_subscription(actor.address, topic, i, user_pk, "tests.actors.topics_app")

    await anyio.to_thread.run_sync(job)
    with anyio.fail_after(2):
        message = await actor.layer.receive(actor.address)
    assert message["type"] == "envelope.topics" and message["op"] == "answer"
    await actor.post(TopicCommand(message))


async def test_an_allowed_check_joins_and_answers_with_the_snapshot(
    harness: tuple[ActorHarness, int],
) -> None:
    h, staff_pk = harness
    await verdict(h, "tt.db.5", "w1", staff_pk)
    reply = await h.until_terminal("w1")
    assert reply.s is State.SUCCESS
    assert reply.p["topic"] == "tt.db.5" and reply.p["state"][0]["t"] == "tt.room.state"
    assert "tt.db.5" in h.actor.topics
    assert fanout_for(h.actor.layer).local_members("tt.db.5") == 1


@pytest.mark.parametrize(
    ("topic", "user_pk", "code"),
    [
        ("tt.db.5", None, "forbidden"),  # anonymous: not staff
        ("nothing.here", 1, "not_found"),
        ("tt.crash", 1, "internal"),
    ],
)
async def test_a_refused_or_failed_check_answers_f_and_joins_nothing(
    harness: tuple[ActorHarness, int], topic: str, user_pk: object, code: str
) -> None:
    h, _ = harness
    await verdict(h, topic, "w2", user_pk)
    reply = await h.until_terminal("w2")
    assert (reply.t, reply.s, reply.p["code"]) == ("topic.subscribe", State.FAILED, code)
    assert "secret" not in str(reply.p)
    assert topic not in h.actor.topics


async def test_a_topic_left_before_the_verdict_is_not_joined(
    harness: tuple[ActorHarness, int],
) -> None:
    h, staff_pk = harness
    actor = h.actor
    pending_of(actor).setdefault("tt.db.6", set()).add("w3")
    assert (await h.request("topic.leave", {"topic": "tt.db.6"})).s is State.SUCCESS
    token = anyio.lowlevel.current_token()

    def job() -> None:
        with pushes_through(thread_sender(token)):
            check_subscription(actor.address, "tt.db.6", "w3", staff_pk, "")

    await anyio.to_thread.run_sync(job)
    await actor.post(TopicCommand(await actor.layer.receive(actor.address)))
    reply = await h.until_terminal("w3")
    assert (reply.s, reply.p["code"]) == (State.FAILED, "cancelled")
    assert "tt.db.6" not in actor.topics
