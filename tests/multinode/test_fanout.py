"""Node-level fan-out with real processes: two daphne servers (conftest's `fleet`), a
Redis, real websocket clients (the `websockets` package, and the benchmarks' raw client
for a thousand).

A publish is one Redis PUBLISH whatever the number of subscribers; each server holds one
SUBSCRIBE per topic with a local member (checked with `PUBSUB NUMSUB`) and hands the push
to its subscribers' mailboxes, in order with their replies. A Redis restart closes no
socket; publishing resumes once it is back; what was published while a server was not
subscribed is not delivered (at most once, see docs/topics.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from benchmarks._rawws import RawConnection, text_frame
from benchmarks._redis import RedisServer
from envelope import State
from tests.actors.rq_support import WsClient, wait_until
from tests.multinode.support import ASGI_APP, SETTINGS, make_users, new_run, run_python
from tests.multinode.test_two_servers import client
from tests.processes import asgi_server

pytestmark = pytest.mark.slow

CHANNEL_PREFIX = "mn-{run}.fanout."


def numsub(redis_url: str, env: dict[str, str], topic: str) -> int:
    """How many connections to Redis (servers) are SUBSCRIBEd to `topic`'s channel."""
    channel = CHANNEL_PREFIX.format(run=env["MN_RUN"]) + topic
    client_ = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        ((_, count),) = client_.pubsub_numsub(channel)
        return int(count)
    finally:
        client_.close()


def publishes(redis_url: str) -> int:
    """PUBLISH commands Redis has run so far (`INFO commandstats`)."""
    client_ = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return int(client_.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
    finally:
        client_.close()


async def subscribed(ws: WsClient, topic: str) -> None:
    reply = await ws.request("topic.subscribe", {"topic": topic})
    assert reply.s is State.SUCCESS, reply


async def pushes_until(ws: WsClient, marker: str) -> list[Any]:
    """The `mn.said` pushes received up to the one whose text is `marker` (included)."""
    out = [env for env in ws.seen if env.t == "mn.said" and env.s is None]
    while not out or out[-1].p["text"] != marker:
        env = await ws.receive()
        if env.t == "mn.said" and env.s is None:
            out.append(env)
    return out


PUBLISH_FROM_SCRIPT = """
import django
django.setup()
from actors.topics import publish_on_commit
from tests.multinode.app import Said
publish_on_commit({topic!r}, Said(text="from-script", by="script"), i="script")
"""


async def test_a_publish_from_either_server_or_sync_code_reaches_each_subscriber_once_in_order(
    servers: tuple[int, int], users: dict[str, Any], env: dict[str, str], redis_url: str
) -> None:
    a, b = servers
    topic = "mn.room.both"
    session = users["alice"]["session"]
    async with (
        client(a, session) as a1,
        client(a, session) as a2,
        client(b, session) as b1,
        client(b, session) as b2,
    ):
        subscribers = [a1, a2, b1, b2]
        for ws in subscribers:
            await subscribed(ws, topic)
        assert numsub(redis_url, env, topic) == 2  # one SUBSCRIBE per server
        before = publishes(redis_url)

        # From a connection on each server: its own reply comes before its own push.
        reply = await a1.request("mn.say", {"topic": topic, "text": "from-a"}, i="pa")
        assert reply.s is State.SUCCESS
        await b1.request("mn.say", {"topic": topic, "text": "from-b"}, i="pb")
        # From sync code in another process (a management command, a view, a job).
        await anyio.to_thread.run_sync(
            lambda: run_python(env, "-c", PUBLISH_FROM_SCRIPT.format(topic=topic))
        )
        await a2.request("mn.say", {"topic": topic, "text": "end"}, i="pe")

        expected = [("pa", "from-a", "A"), ("pb", "from-b", "B"), ("script", "from-script")]
        for ws in subscribers:
            got = await pushes_until(ws, "end")
            seen = [(env.i, env.p["text"], env.p["by"]) for env in got]
            assert [s[:2] for s in seen] == [(e[0], e[1]) for e in expected] + [("pe", "end")]
            assert [s[2] for s in seen] == ["A", "B", "script", "A"]
        # Each sender's reply left before the push it caused reached it.
        for ws, i in ((a1, "pa"), (b1, "pb"), (a2, "pe")):
            indices = [n for n, env in enumerate(ws.seen) if env.i == i]
            assert [ws.seen[n].s for n in indices] == [State.SUCCESS, None]
        # Four publishes, four PUBLISH commands: not one per subscriber.
        assert publishes(redis_url) - before == 4


async def open_raw(port: int, session: str) -> RawConnection:
    """A raw client connection (benchmarks._rawws), logged in by its session cookie."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(RawConnection, "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert conn.transport is not None
    conn.transport.write(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(conn.opened, 30)
    return conn


async def test_a_thousand_subscribers_over_two_servers_all_receive_every_push(
    servers: tuple[int, int], users: dict[str, Any], env: dict[str, str], redis_url: str
) -> None:
    a, b = servers
    topic = "mn.room.thousand"
    session = users["bob"]["session"]
    gate = asyncio.Semaphore(50)
    subscribe = text_frame(json.dumps({"t": "topic.subscribe", "i": "s", "p": {"topic": topic}}))

    async def one(port: int) -> RawConnection:
        async with gate:
            conn = await open_raw(port, session)
            reply = json.loads(await asyncio.wait_for(conn.request(subscribe), 30))
            assert (reply["i"], reply["s"]) == ("s", "s"), reply
            return conn

    conns = await asyncio.gather(*(one(a if n % 2 else b) for n in range(1000)))
    try:
        assert numsub(redis_url, env, topic) == 2
        before = publishes(redis_url)
        async with client(a, users["alice"]["session"]) as publisher:
            for n in range(3):
                await publisher.request("mn.say", {"topic": topic, "text": f"n{n}"})

        async def three(conn: RawConnection) -> list[str]:
            frames = [json.loads(await asyncio.wait_for(conn.receive(), 60)) for _ in range(3)]
            return [frame["p"]["text"] for frame in frames]

        received = await asyncio.gather(*(three(conn) for conn in conns))
        assert received == [["n0", "n1", "n2"]] * 1000
        assert publishes(redis_url) - before == 3
    finally:
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)
    # Every member left: neither server is subscribed any more.
    await wait_until(lambda: numsub(redis_url, env, topic) == 0)


async def test_leaving_and_closing_stop_delivery_and_unsubscribe_the_last_local_member(
    servers: tuple[int, int], users: dict[str, Any], env: dict[str, str], redis_url: str
) -> None:
    a, b = servers
    topic, marker = "mn.room.leave", "mn.room.marker"
    session = users["alice"]["session"]
    async with client(a, session) as on_a, client(b, session) as on_b:
        for ws in (on_a, on_b):
            await subscribed(ws, topic)
        await subscribed(on_b, marker)
        assert numsub(redis_url, env, topic) == 2

        assert (await on_b.request("topic.leave", {"topic": topic})).s is State.SUCCESS
        await wait_until(lambda: numsub(redis_url, env, topic) == 1)
        # Published from A in this order, so B's server gets them in this order too.
        await on_a.request("mn.say", {"topic": topic, "text": "after-leave"})
        await on_a.request("mn.say", {"topic": marker, "text": "end"})
        got = await pushes_until(on_b, "end")
        assert [env.p["text"] for env in got] == ["end"]
        assert [env.p["text"] for env in await pushes_until(on_a, "after-leave")] == ["after-leave"]
    # The last member on A closed: A unsubscribed too.
    await wait_until(lambda: numsub(redis_url, env, topic) == 0)
    await wait_until(lambda: numsub(redis_url, env, marker) == 0)


async def test_a_redis_restart_while_publishing_closes_no_socket_and_publishing_resumes(
    tmp_path: Path,
) -> None:
    topic = "mn.room.restart"
    with RedisServer() as redis_server:
        env = new_run(redis_server.url, tmp_path)
        session = make_users(env)["alice"]["session"]
        with (
            asgi_server(ASGI_APP, SETTINGS, server="daphne", **env, MN_NAME="A") as a,
            asgi_server(ASGI_APP, SETTINGS, server="daphne", **env, MN_NAME="B") as b,
        ):
            async with (
                client(a, session) as publisher,
                client(a, session) as on_a,
                client(b, session) as on_b,
            ):
                for ws in (on_a, on_b):
                    await subscribed(ws, topic)
                answered: list[str] = []  # publishes answered `s`, in order

                async def say(text: str) -> bool:
                    reply = await publisher.request("mn.say", {"topic": topic, "text": text})
                    if reply.s is State.SUCCESS:
                        answered.append(text)
                        return True
                    assert reply.p["code"] == "topics_unavailable"
                    return False

                for n in range(5):
                    assert await say(f"before-{n}")
                redis_server.stop()
                for n in range(5):  # answered at once with a documented code
                    assert not await say(f"during-{n}")
                redis_server.start()
                # Back: each server's hub reconnects and SUBSCRIBEs its topics again.
                n = 0
                with anyio.fail_after(30):
                    while not await say(f"after-{n}"):
                        n += 1
                        await anyio.sleep(0.2)
                await wait_until(lambda: numsub(redis_server.url, env, topic) == 2)
                last = f"last-{n}"
                assert await say(last)

                for ws in (on_a, on_b):
                    got = [env.p["text"] for env in await pushes_until(ws, last)]
                    # Nothing twice, nothing out of order, nothing that was refused.
                    assert got == [text for text in answered if text in got]
                    assert [t for t in got if t.startswith("before")] == [
                        f"before-{k}" for k in range(5)
                    ]
                    assert not any(t.startswith("during") for t in got)
                    assert all(env.t != "connection.closing" for env in ws.seen)
                # The sockets are the same ones: still answering.
                for ws in (publisher, on_a, on_b):
                    assert (await ws.request("connection.ping")).p == {"pong": True}
