"""The worker side of a database-checked subscribe (`check_subscription`), in-process:
its verdict reaches the connection's actor, which joins and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from actors._publishing import pushes_through, thread_sender
from actors._topic_worker import check_subscription
from actors.testing import EnvelopeCommunicator
from actors.topics import publish
from envelope import State
from tests.actors.topics_app import Note, consumer_app, create_user, user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def connected() -> AsyncIterator[tuple[EnvelopeCommunicator, str, int]]:
    staffer = await create_user("worker-staff", is_staff=True)
    client = EnvelopeCommunicator(consumer_app(user(pk=staffer.pk)))
    await client.connect()
    address = (await client.request("tt.address")).p["address"]
    try:
        yield client, address, staffer.pk
    finally:
        await client.disconnect()


async def run_job(address: str, topic: str, i: str, user_pk: object) -> None:
    token = anyio.lowlevel.current_token()

    def job() -> None:
        with pushes_through(thread_sender(token)):
            check_subscription(address, topic, i, user_pk, "tests.actors.topics_app")

    await anyio.to_thread.run_sync(job)


async def test_an_allowed_check_joins_and_answers_with_the_snapshot(
    connected: tuple[EnvelopeCommunicator, str, int],
) -> None:
    client, address, staff_pk = connected
    await run_job(address, "tt.db.5", "w1", staff_pk)
    reply = await client.until_terminal("w1")
    assert reply.s is State.SUCCESS
    assert reply.p["topic"] == "tt.db.5" and reply.p["state"][0]["t"] == "tt.room.state"
    await publish("tt.db.5", Note(n=5))
    assert (await client.receive()).p == {"n": 5}


@pytest.mark.parametrize(
    ("topic", "user_pk", "code"),
    [
        ("tt.db.5", None, "forbidden"),  # anonymous: not staff
        ("nothing.here", 1, "not_found"),
        ("tt.crash", 1, "internal"),
    ],
)
async def test_a_refused_or_failed_check_answers_f_and_joins_nothing(
    connected: tuple[EnvelopeCommunicator, str, int], topic: str, user_pk: object, code: str
) -> None:
    client, address, _ = connected
    await run_job(address, topic, "w2", user_pk)
    reply = await client.until_terminal("w2")
    assert (reply.t, reply.s, reply.p["code"]) == ("topic.subscribe", State.FAILED, code)
    assert "secret" not in str(reply.p)
    assert len((await client.request("topic.list")).p["topics"]) == 1  # the user topic
