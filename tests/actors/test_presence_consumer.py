"""Presence over the consumer (in-memory layer: this process is the whole fleet):
`presence.list`, `presence.diff`, who may ask, and the app's info hook."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.presence import running_node
from actors.testing import EnvelopeCommunicator
from actors.topics import Topic, TopicDefinitionError
from envelope import Envelope, State
from tests.actors.topics_app import ANONYMOUS, consumer_app, user

info_threads: list[str] = []


async def user_info(user: Any) -> dict[str, Any]:
    return {"name": f"user-{user.pk}"}


def info_from_database(user: Any) -> dict[str, Any]:
    info_threads.append(threading.current_thread().name)
    return {"pk": user.pk}


def broken_info(user: Any) -> dict[str, Any]:
    raise RuntimeError("secret detail")


room = Topic("tp.room.{name}", permission=None, presence=True, presence_info=user_info)
db_room = Topic("tp.db.{name}", permission=None, presence=True, presence_info=info_from_database)
broken_room = Topic("tp.broken", permission=None, presence=True, presence_info=broken_info)
plain = Topic("tp.plain", permission=None)


@pytest.fixture(autouse=True)
async def close_node() -> AsyncIterator[None]:
    yield
    node = running_node()
    if node is not None:
        await node.close()


async def connect(who: Any, *topics: str) -> EnvelopeCommunicator:
    client = EnvelopeCommunicator(consumer_app(who))
    ok, _ = await client.connect()
    assert ok
    for topic in topics:
        assert (await client.request("topic.subscribe", {"topic": topic})).s is State.SUCCESS
    return client


DIFF_WAIT = 10.0  # seconds a diff may take to arrive (a bound, not a measure)
_taken: dict[int, int] = {}  # id(client) -> diffs returned so far


def payload(env: Envelope) -> dict[str, Any]:
    assert env.p is not None
    return env.p


async def next_diff(client: EnvelopeCommunicator) -> dict[str, Any]:
    """The next `presence.diff` this client got, whether it came in while it waited for a
    reply (kept in `seen`) or comes now."""
    while True:
        diffs = [env for env in client.seen if env.t == "presence.diff"]
        taken = _taken.get(id(client), 0)
        if len(diffs) > taken:
            _taken[id(client)] = taken + 1
            assert diffs[taken].s is None  # a push
            return payload(diffs[taken])
        # A diff waits for the presence batch and, with a sync info hook, a thread: on a
        # loaded 2-core machine that took over the default 2 s once.
        client.seen.append(await client.receive(timeout=DIFF_WAIT))


async def test_list_counts_a_user_once_with_each_of_its_connections() -> None:
    tab1 = await connect(user(pk=101), "tp.room.a")
    tab2 = await connect(user(pk=101), "tp.room.a")
    bob = await connect(user(pk=102), "tp.room.a")
    joined: set[str] = set()
    while joined != {"101", "102"}:  # one diff, unless a slow machine split the window
        joined.update(j["user"] for j in (await next_diff(bob))["joins"])
    answer = await bob.request("presence.list", {"topic": "tp.room.a"})
    assert answer.s is State.SUCCESS
    assert answer.p == {
        "topic": "tp.room.a",
        "version": 2,
        "users": [
            {"user": "101", "connections": 2, "info": {"name": "user-101"}},
            {"user": "102", "connections": 1, "info": {"name": "user-102"}},
        ],
    }
    for client in (tab1, tab2, bob):
        await client.disconnect()


async def test_the_last_tab_closing_is_a_leave_and_the_others_are_nothing() -> None:
    watcher = await connect(user(pk=201), "tp.room.b")
    await next_diff(watcher)
    tab1 = await connect(user(pk=202), "tp.room.b")
    tab2 = await connect(user(pk=202), "tp.room.b")
    diff = await next_diff(watcher)
    assert [j["user"] for j in diff["joins"]] == ["202"]
    await tab1.disconnect()
    await tab2.request("topic.leave", {"topic": "tp.room.b"})
    diff = await next_diff(watcher)
    assert (diff["joins"], [e["user"] for e in diff["leaves"]]) == ([], ["202"])
    assert diff["leaves"][0]["v"] == 3
    await tab2.disconnect()
    await watcher.disconnect()


@pytest.mark.parametrize(
    ("topic", "subscribe", "code"),
    [
        pytest.param("tp.room.c", False, "forbidden", id="not-subscribed-forbidden"),
        pytest.param("tp.plain", True, "not_found", id="no-presence-not-found"),
        pytest.param("tp.nothing", False, "not_found", id="undeclared-not-found"),
    ],
)
async def test_who_may_list(topic: str, subscribe: bool, code: str) -> None:
    client = await connect(user(pk=301), *([topic] if subscribe else []))
    answer = await client.request("presence.list", {"topic": topic})
    assert (answer.s, payload(answer)["code"]) == (State.FAILED, code)
    await client.disconnect()


async def test_an_anonymous_connection_gets_diffs_but_is_in_no_list() -> None:
    anonymous = await connect(ANONYMOUS, "tp.room.d")
    member = await connect(user(pk=401), "tp.room.d")
    diff = await next_diff(anonymous)
    assert [j["user"] for j in diff["joins"]] == ["401"]
    users = payload(await anonymous.request("presence.list", {"topic": "tp.room.d"}))["users"]
    assert [u["user"] for u in users] == ["401"]
    await member.disconnect()
    await anonymous.disconnect()


async def test_a_sync_info_hook_runs_in_a_thread() -> None:
    client = await connect(user(pk=501), "tp.db.x")
    diff = await next_diff(client)
    assert diff["joins"] == [{"user": "501", "info": {"pk": 501}, "v": 1}]
    assert info_threads and info_threads[-1] != threading.current_thread().name
    await client.disconnect()


async def test_a_failing_info_hook_is_logged_and_the_subscription_stands() -> None:
    client = await connect(user(pk=601), "tp.broken")
    diff = await next_diff(client)
    assert diff["joins"] == [{"user": "601", "info": {}, "v": 1}]
    await client.disconnect()


def test_presence_info_needs_presence() -> None:
    with pytest.raises(TopicDefinitionError, match="presence_info"):
        Topic("tp.wrong", presence_info=user_info)
