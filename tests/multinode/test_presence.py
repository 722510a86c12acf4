"""Presence across two daphne servers and a Redis the test controls: one list for users on
both servers, a user with two tabs counted once, joins batched into few frames, a server
killed with SIGKILL whose users leave within TTL + heartbeat + window while the other
keeps working, and a hung Redis answered with `topics_unavailable`."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect

from benchmarks._redis import RedisServer
from envelope import Envelope, State
from tests import processes
from tests.actors.rq_support import WsClient
from tests.processes import Server, server_process

pytestmark = pytest.mark.slow

SETTINGS = "tests.multinode.settings"
ASGI_APP = "tests.multinode.asgi:application"
HEARTBEAT, TTL, WINDOW = 0.5, 2.0, 0.2
MANY = 500

MAKE_USERS = """
import json, sys
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction

out = {}
with transaction.atomic():
    for n in range(int(sys.argv[1])):
        user = get_user_model().objects.create(username=f"u{n}")
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        out[f"u{n}"] = {"pk": str(user.pk), "session": session.session_key}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    run = uuid.uuid4().hex[:10]
    tmp: Path = tmp_path_factory.mktemp("presence")
    values = {
        "MN_DB": str(tmp / "db.sqlite3"),
        "MN_REDIS": redis_server.url,
        "MN_QUEUE": f"mn-{run}",
        "MN_RUN": run,
        "MN_PRESENCE_HEARTBEAT": str(HEARTBEAT),
        "MN_PRESENCE_TTL": str(TTL),
        "MN_PRESENCE_WINDOW": str(WINDOW),
    }
    processes.run_python(SETTINGS, values, "-m", "django", "migrate", "--noinput", timeout=120)
    return values


@pytest.fixture(scope="module")
def users(env: dict[str, str]) -> dict[str, Any]:
    code = f"import django\ndjango.setup()\n{MAKE_USERS}"
    out = processes.run_python(SETTINGS, env, "-c", code, str(MANY), timeout=300)
    return dict(json.loads(out))


@contextlib.contextmanager
def two_servers(env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    with (
        server_process(ASGI_APP, SETTINGS, None, **env, MN_NAME="A") as a,
        server_process(ASGI_APP, SETTINGS, None, **env, MN_NAME="B") as b,
    ):
        yield a, b


@contextlib.asynccontextmanager
async def client(port: int, user: dict[str, str]) -> AsyncIterator[WsClient]:
    headers = {"Cookie": f"sessionid={user['session']}"}
    async with connect(
        f"ws://127.0.0.1:{port}/ws/", open_timeout=30, additional_headers=headers
    ) as ws:
        yield WsClient(ws)


async def subscribe(ws: WsClient, topic: str) -> None:
    assert (await ws.request("topic.subscribe", {"topic": topic})).s is State.SUCCESS


def diffs(ws: WsClient) -> list[dict[str, Any]]:
    return [env.p for env in ws.seen if env.t == "presence.diff" and env.p is not None]


async def until(ws: WsClient, done: Any, timeout: float = 30) -> None:
    """Read frames until `done()` holds (at most `timeout` seconds)."""
    with anyio.fail_after(timeout):
        while not done():
            await ws.receive(timeout)


def present(ws: WsClient) -> set[str]:
    """Who is here as the client sees it, by the rule of the docs: its last
    `presence.list` answer, then each diff entry whose `v` is newer than that answer's
    version and than the user's last entry, whatever order they arrived in."""
    last: dict[str, int] = {}
    here: dict[str, bool] = {}
    version = 0
    for env in ws.seen:
        if env.t == "presence.list" and env.s is State.SUCCESS and env.p is not None:
            version = env.p["version"]
            here = {u["user"]: True for u in env.p["users"]}
            last = {}
    for diff in diffs(ws):
        entries = [(j, True) for j in diff["joins"]] + [(e, False) for e in diff["leaves"]]
        for entry, joined in entries:
            if entry["v"] > max(version, last.get(entry["user"], 0)):
                last[entry["user"]] = entry["v"]
                here[entry["user"]] = joined
    return {user for user, yes in here.items() if yes}


async def listed_once_back(ws: WsClient, topic: str, count: int) -> list[str]:
    """Ask `presence.list` every heartbeat until it is answered with `count` users (Redis
    is back and the servers wrote their members again); those users."""
    with anyio.fail_after(60):
        while True:
            answer = await ws.request("presence.list", {"topic": topic}, timeout=20)
            if answer.s is State.SUCCESS and len(payload(answer)["users"]) == count:
                return [u["user"] for u in payload(answer)["users"]]
            await anyio.sleep(HEARTBEAT)


def payload(env: Envelope) -> dict[str, Any]:
    assert env.p is not None
    return env.p


async def test_the_list_shows_users_of_both_servers_and_two_tabs_as_one_user(
    env: dict[str, str], users: dict[str, Any]
) -> None:
    topic = "mn.presence.list"
    u0, u1 = users["u0"], users["u1"]
    with two_servers(env) as (a, b):
        async with (
            client(a.port, u0) as tab_a,
            client(b.port, u0) as tab_b,
            client(b.port, u1) as other,
        ):
            for ws in (tab_a, tab_b, other):
                await subscribe(ws, topic)
            await until(tab_a, lambda: present(tab_a) == {u0["pk"], u1["pk"]})
            answer = await tab_a.request("presence.list", {"topic": topic})
            assert answer.s is State.SUCCESS
            listed = payload(answer)
            assert listed["users"] == sorted(
                [
                    {"user": u0["pk"], "connections": 2, "info": {"name": "u0"}},
                    {"user": u1["pk"], "connections": 1, "info": {"name": "u1"}},
                ],
                key=lambda u: u["user"],
            )
            # Two joins, though three connections came; the list holds the last version.
            versions = sorted(j["v"] for d in diffs(tab_a) for j in d["joins"])
            assert len(versions) == 2 and listed["version"] == versions[-1]
            joins = [j["user"] for d in diffs(tab_a) for j in d["joins"]]
            assert sorted(joins) == sorted([u0["pk"], u1["pk"]])  # u0 once, not per tab

            await tab_b.ws.close()  # u0's other tab stays: no leave
            await other.ws.close()
            await until(tab_a, lambda: present(tab_a) == {u0["pk"]})
            leaves = [e["user"] for d in diffs(tab_a) for e in d["leaves"]]
            assert leaves == [u1["pk"]]
            listed = payload(await tab_a.request("presence.list", {"topic": topic}))
            assert listed["users"] == [{"user": u0["pk"], "connections": 1, "info": {"name": "u0"}}]


async def test_many_joins_reach_a_member_in_a_few_frames(
    env: dict[str, str], users: dict[str, Any]
) -> None:
    topic = "mn.presence.many"
    people = [users[f"u{n}"] for n in range(1, MANY)]
    with two_servers(env) as (a, b):
        async with contextlib.AsyncExitStack() as stack:
            watcher = await stack.enter_async_context(client(a.port, users["u0"]))
            await subscribe(watcher, topic)
            await until(watcher, lambda: present(watcher) == {users["u0"]["pk"]})
            before = len(diffs(watcher))
            sockets = []
            for n, person in enumerate(people):
                port = (a, b)[n % 2].port
                sockets.append(await stack.enter_async_context(client(port, person)))
            # Every subscribe is sent before any answer is read: one burst of joins.
            sent = [await ws.send("topic.subscribe", {"topic": topic}) for ws in sockets]
            for ws, i in zip(sockets, sent, strict=True):
                assert (await ws.until_terminal(i)).s is State.SUCCESS
            everyone = {p["pk"] for p in people} | {users["u0"]["pk"]}
            await until(watcher, lambda: present(watcher) == everyone, timeout=120)
            frames = len(diffs(watcher)) - before
            # 499 joins through two servers: a diff per server per window, not one per join.
            print(f"presence: {len(people)} joins reached a member in {frames} diffs")
            assert frames <= 40
            listed = payload(await watcher.request("presence.list", {"topic": topic}))
            assert len(listed["users"]) == MANY


async def test_a_killed_servers_users_leave_and_the_other_server_keeps_working(
    env: dict[str, str], users: dict[str, Any]
) -> None:
    topic = "mn.presence.kill"
    gone, both, watcher_user, late = (users[f"u{n}"] for n in range(4))
    with two_servers(env) as (a, b):
        async with (
            client(a.port, gone) as on_a,
            client(a.port, both) as both_a,
            client(b.port, both) as both_b,
            client(b.port, watcher_user) as watcher,
        ):
            for ws in (on_a, both_a, both_b, watcher):
                await subscribe(ws, topic)
            await watcher.request("presence.list", {"topic": topic})  # then its diffs
            expected = {gone["pk"], both["pk"], watcher_user["pk"]}
            await until(watcher, lambda: present(watcher) == expected)

            a.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            a.process.wait(10)
            bound = TTL + HEARTBEAT + WINDOW
            await until(watcher, lambda: gone["pk"] not in present(watcher), timeout=bound + 20)
            took = time.monotonic() - killed
            print(
                f"presence: the killed server's user left {took:.2f}s after SIGKILL "
                f"(bound {bound}s)"
            )
            assert present(watcher) == {both["pk"], watcher_user["pk"]}  # `both` is still on B
            listed = payload(await watcher.request("presence.list", {"topic": topic}))
            assert [(u["user"], u["connections"]) for u in listed["users"]] == sorted(
                [(both["pk"], 1), (watcher_user["pk"], 1)]
            )
            # B goes on: requests are answered, and a newcomer is announced.
            assert (await watcher.request("connection.ping")).s is State.SUCCESS
            async with client(b.port, late) as newcomer:
                await subscribe(newcomer, topic)
                await until(watcher, lambda: late["pk"] in present(watcher))


async def test_a_hung_redis_is_answered_topics_unavailable_and_nothing_hangs(
    env: dict[str, str], users: dict[str, Any], redis_server: RedisServer
) -> None:
    topic = "mn.presence.hung"
    with two_servers(env) as (a, _b):
        async with client(a.port, users["u0"]) as ws:
            await subscribe(ws, topic)
            await until(ws, lambda: present(ws) == {users["u0"]["pk"]})
            redis_server.pause()
            try:
                with anyio.fail_after(20):  # the layer timeout (2 s) and then at once
                    answer = await ws.request("presence.list", {"topic": topic}, timeout=20)
                    again = await ws.request("presence.list", {"topic": topic}, timeout=20)
                    ping = await ws.request("connection.ping", timeout=20)
            finally:
                redis_server.resume()
            assert (answer.s, payload(answer)["code"]) == (State.FAILED, "topics_unavailable")
            assert (again.s, payload(again)["code"]) == (State.FAILED, "topics_unavailable")
            assert ping.s is State.SUCCESS
            # Back once a heartbeat reaches Redis again.
            assert await listed_once_back(ws, topic, 1) == [users["u0"]["pk"]]


async def test_a_server_stopped_with_sigterm_sends_its_users_leaves_itself(
    env: dict[str, str], users: dict[str, Any]
) -> None:
    topic = "mn.presence.stop"
    gone, watcher_user = users["u0"], users["u1"]
    # A TTL of 5 minutes: the leave can only come from the stopping server itself.
    slow_reaping = {**env, "MN_PRESENCE_TTL": "300", "MN_PRESENCE_HEARTBEAT": "100"}
    with two_servers(slow_reaping) as (a, b):
        async with client(a.port, gone) as on_a, client(b.port, watcher_user) as watcher:
            await subscribe(on_a, topic)
            await subscribe(watcher, topic)
            await watcher.request("presence.list", {"topic": topic})
            await until(watcher, lambda: present(watcher) == {gone["pk"], watcher_user["pk"]})
            a.process.send_signal(signal.SIGTERM)
            await until(watcher, lambda: present(watcher) == {watcher_user["pk"]})
            assert a.process.wait(30) == 0


async def test_after_a_redis_restart_the_servers_write_their_members_again(
    env: dict[str, str], users: dict[str, Any], redis_server: RedisServer
) -> None:
    topic = "mn.presence.restart"
    u0, u1 = users["u0"], users["u1"]
    with two_servers(env) as (a, b):
        async with client(a.port, u0) as on_a, client(b.port, u1) as on_b:
            await subscribe(on_a, topic)
            await subscribe(on_b, topic)
            await on_a.request("presence.list", {"topic": topic})
            await until(on_a, lambda: present(on_a) == {u0["pk"], u1["pk"]})
            redis_server.stop()
            try:
                answer = await on_a.request("presence.list", {"topic": topic})
                assert (answer.s, payload(answer)["code"]) == (State.FAILED, "topics_unavailable")
            finally:
                redis_server.start()  # empty, as after a crash
            assert await listed_once_back(on_a, topic, 2) == sorted([u0["pk"], u1["pk"]])
