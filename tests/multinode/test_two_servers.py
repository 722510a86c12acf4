"""Two servers (daphne and uvicorn, both ways round) on channels_redis, RQ workers, real
websocket clients.

A client on server A receives what a client on server B publishes, what an RQ job and a
deferred handler publish on a worker, gets its database-checked subscription answered
by a worker, and is closed with 4001 when its user logs out through server B.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import weakref
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis
from rq import Queue
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from envelope import State
from tests.actors.rq_support import WsClient
from tests.multinode.support import run_python

pytestmark = pytest.mark.slow


@pytest.fixture(
    scope="module",
    # A mixed fleet, both ways round: every test has each server on each side.
    params=[("daphne", "uvicorn"), ("uvicorn", "daphne")],
    ids=["daphne-uvicorn", "uvicorn-daphne"],
)
def fleet(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The servers A and B run under; each fleet gets a run (database, queue, prefix) of its own."""
    a, b = request.param
    return a, b


def burst_worker(env: dict[str, str]) -> None:
    """A real `rqworker --burst`: runs what is queued, then exits."""
    run_python(env, "-m", "django", "rqworker", "--burst", env["MN_QUEUE"])


@contextlib.asynccontextmanager
async def client(port: int, session: str) -> AsyncIterator[WsClient]:
    headers = {"Cookie": f"sessionid={session}"}
    async with connect(
        f"ws://127.0.0.1:{port}/ws/", open_timeout=10, additional_headers=headers
    ) as ws:
        yield WsClient(ws)


# Per client, the indices in `seen` of the pushes `next_push` returned already.
_taken: weakref.WeakKeyDictionary[WsClient, set[int]] = weakref.WeakKeyDictionary()


async def next_push(ws: WsClient, t: str) -> Any:
    """The first push of type `t` not taken yet, whether it already arrived (while waiting
    for a reply: jobs of two servers run in the order they were enqueued) or arrives now."""
    taken = _taken.setdefault(ws, set())
    seen = 0
    while True:
        for index in range(seen, len(ws.seen)):
            env = ws.seen[index]
            if env.t == t and env.s is None and index not in taken:
                taken.add(index)
                return env
        seen = len(ws.seen)
        await ws.receive()


async def test_a_push_published_on_b_reaches_a_subscriber_on_a(
    servers: tuple[int, int], users: dict[str, Any]
) -> None:
    a, b = servers
    async with (
        client(a, users["alice"]["session"]) as on_a,
        client(b, users["bob"]["session"]) as on_b,
    ):
        reply = await on_a.request("topic.subscribe", {"topic": "mn.room.x"})
        assert reply.s is State.SUCCESS
        await on_b.request("mn.say", {"topic": "mn.room.x", "text": "hello"}, i="from-b")
        push = await next_push(on_a, "mn.said")
        assert (push.i, push.p) == ("from-b", {"text": "hello", "by": "B"})


async def test_worker_checks_a_database_permission_and_publishes_on_commit(
    servers: tuple[int, int], users: dict[str, Any], env: dict[str, str], redis_url: str
) -> None:
    a, b = servers
    async with (
        client(a, users["alice"]["session"]) as alice,
        client(b, users["bob"]["session"]) as bob,
    ):
        await alice.request("topic.subscribe", {"topic": "mn.room.y"})
        sub = await alice.send("topic.subscribe", {"topic": "mn.staff.y"})
        refused = await bob.send("topic.subscribe", {"topic": "mn.staff.y"})
        later = await bob.send("mn.later", {"topic": "mn.room.y", "count": 3})
        for who, i in ((alice, sub), (bob, refused), (bob, later)):
            while who.states(i) == []:
                await who.receive()
            assert who.states(i) == ["q"]
        await anyio.to_thread.run_sync(burst_worker, env)

        answer = await alice.until_terminal(sub)
        assert alice.states(sub) == ["q", "s"]
        assert answer.p == {"topic": "mn.staff.y", "state": None}
        denied = await bob.until_terminal(refused)
        assert (denied.s, denied.p["code"]) == (State.FAILED, "forbidden")
        assert "mn-" not in json.dumps(denied.p)  # no group or queue names

        batch = await next_push(alice, "batch")
        assert batch.i == later
        assert batch.p == {
            "t": "mn.said",
            "items": [{"p": {"text": f"later-{n}", "by": "worker"}, "i": later} for n in range(3)],
        }
        assert (await bob.until_terminal(later)).s is State.SUCCESS

        # A plain RQ job publishing into the topic alice joined through the worker.
        connection = redis.Redis.from_url(redis_url)
        try:
            Queue(env["MN_QUEUE"], connection=connection).enqueue(
                "tests.multinode.app.announce", "mn.staff.y", "news"
            )
        finally:
            connection.close()
        await anyio.to_thread.run_sync(burst_worker, env)
        first = await next_push(alice, "mn.said")
        second = await next_push(alice, "mn.said")
        assert [(first.i, first.p["text"]), (second.i, second.p["text"])] == [
            ("job-1", "news-on-commit"),
            ("job-2", "news-now"),
        ]


async def test_logging_out_through_server_b_closes_the_socket_on_server_a(
    servers: tuple[int, int], users: dict[str, Any]
) -> None:
    a, b = servers
    session = users["bob"]["session"]
    async with client(a, session) as bob:
        listing = await bob.request("topic.list")
        assert listing.p == {"topics": [f"user.{users['bob']['pk']}"]}

        def log_out() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{b}/logout/",
                method="POST",
                headers={"Cookie": f"sessionid={session}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)

        assert await anyio.to_thread.run_sync(log_out) == 200
        closing = await next_push(bob, "connection.closing")
        assert closing.p == {"code": 4001, "reason": "logged_out"}
        with pytest.raises(ConnectionClosed) as closed:
            await bob.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
