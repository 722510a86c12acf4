"""The presence node: batching joins and leaves into diffs, across nodes through a real
Redis, reaping a node that stopped beating, and Redis faults."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from actors import EnvelopeSettings
from actors.presence import (
    LocalPresence,
    PresenceDiff,
    PresenceNode,
    RedisPresence,
    store_from_settings,
)
from envelope import TopicsUnavailable

TOPIC = "room.a"


class Sent:
    """What a node sends: (topic, diff) in order."""

    def __init__(self) -> None:
        self.diffs: list[tuple[str, PresenceDiff]] = []
        self._more = anyio.Event()

    async def __call__(self, topic: str, diff: Any) -> None:
        self.diffs.append((topic, diff))
        self._more.set()
        self._more = anyio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.diffs) < count:
            await self._more.wait()

    def joins(self) -> list[str]:
        return [j.user for _, d in self.diffs for j in d.joins]

    def leaves(self) -> list[str]:
        return [j.user for _, d in self.diffs for j in d.leaves]


def local_node(sent: Sent) -> PresenceNode:
    return PresenceNode(LocalPresence(), window=60, heartbeat=60, send=sent)


async def test_500_joins_in_one_window_are_one_diff_with_500_joins() -> None:
    sent = Sent()
    node = local_node(sent)
    for n in range(500):
        node.join(TOPIC, str(n), f"conn-{n}", {"n": n})
    await node.flush()
    assert len(sent.diffs) == 1
    topic, diff = sent.diffs[0]
    assert topic == TOPIC and len(diff.joins) == 500 and diff.leaves == []
    assert sorted(j.v for j in diff.joins) == list(range(1, 501))
    assert {j.user: j.info for j in diff.joins}["7"] == {"n": 7}
    await node.close()


async def test_a_second_tab_is_no_diff_and_the_last_tab_closing_is_a_leave() -> None:
    sent = Sent()
    node = local_node(sent)
    node.join(TOPIC, "u", "tab-1", {})
    await node.flush()
    node.join(TOPIC, "u", "tab-2", {})
    await node.flush()
    node.leave(TOPIC, "u", "tab-1")
    await node.flush()
    assert (sent.joins(), sent.leaves()) == (["u"], [])
    node.leave(TOPIC, "u", "tab-2")
    await node.flush()
    assert (sent.joins(), sent.leaves()) == (["u"], ["u"])
    assert len(sent.diffs) == 2
    await node.close()


async def test_a_join_and_a_leave_in_one_window_cancel_out() -> None:
    sent = Sent()
    node = local_node(sent)
    node.join(TOPIC, "gone", "c1", {})
    node.leave(TOPIC, "gone", "c1")
    node.join(TOPIC, "stays", "c2", {})
    await node.flush()
    assert (sent.joins(), sent.leaves()) == (["stays"], [])
    node.leave(TOPIC, "stays", "c2")
    node.join(TOPIC, "stays", "c3", {})  # left and came back: nothing to say
    await node.flush()
    assert len(sent.diffs) == 1
    await node.close()


async def test_leaving_what_was_never_joined_changes_nothing() -> None:
    sent = Sent()
    node = local_node(sent)
    node.leave(TOPIC, "nobody", "c1")
    node.join(TOPIC, "u", "c1", {})
    node.leave(TOPIC, "u", "other-conn")
    await node.flush()
    assert (sent.joins(), sent.leaves()) == (["u"], [])
    await node.close()


async def test_the_window_sends_by_itself() -> None:
    sent = Sent()
    node = PresenceNode(LocalPresence(), window=0.01, heartbeat=60, send=sent)
    node.join(TOPIC, "u", "c1", {})
    node.join("room.b", "u", "c1", {})
    with anyio.fail_after(10):
        await sent.wait_for(2)
    assert sorted(topic for topic, _ in sent.diffs) == [TOPIC, "room.b"]  # one per topic
    await node.close()


# -- through Redis: several nodes --------------------------------------------------------


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"pt-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def redis_node(url: str, prefix: str, sent: Sent, *, ttl: float = 30) -> PresenceNode:
    store = RedisPresence(
        url, prefix=prefix, node=uuid.uuid4().hex[:8], ttl=ttl, timeout=2, connections=2
    )
    return PresenceNode(store, window=60, heartbeat=60, send=sent)


@pytest.fixture
async def two(
    redis_url: str, prefix: str
) -> AsyncIterator[tuple[PresenceNode, PresenceNode, Sent]]:
    sent = Sent()
    a, b = redis_node(redis_url, prefix, sent), redis_node(redis_url, prefix, sent)
    yield a, b, sent
    await a.close()
    await b.close()


async def test_a_user_on_two_nodes_is_one_entry_with_two_connections(two: Any) -> None:
    a, b, sent = two
    a.join(TOPIC, "u", "a-1", {"name": "U"})
    await a.flush()
    b.join(TOPIC, "u", "b-1", {"name": "U"})
    b.join(TOPIC, "w", "b-2", {})
    await b.flush()
    assert sent.joins() == ["u", "w"]
    version, users = await a.store.read(TOPIC)
    assert sorted(users) == [("u", 2, {"name": "U"}), ("w", 1, {})]
    assert version == max(j.v for _, d in sent.diffs for j in d.joins)
    a.leave(TOPIC, "u", "a-1")  # still on b: no leave
    await a.flush()
    assert sent.leaves() == []
    b.leave(TOPIC, "u", "b-1")
    await b.flush()
    assert sent.leaves() == ["u"]
    assert sorted((await b.store.read(TOPIC))[1]) == [("w", 1, {})]


async def test_versions_order_what_two_nodes_send(two: Any) -> None:
    a, b, sent = two
    a.join(TOPIC, "u", "a-1", {})
    await a.flush()
    a.leave(TOPIC, "u", "a-1")
    await a.flush()
    b.join(TOPIC, "u", "b-1", {})
    await b.flush()
    versions = [e.v for _, d in sent.diffs for e in (*d.joins, *d.leaves)]
    first = versions[0]
    assert versions == [first, first + 1, first + 2]
    version, users = await a.store.read(TOPIC)
    assert (version, [user for user, _, _ in users]) == (first + 2, ["u"])


async def test_versions_grow_across_a_redis_that_lost_its_data(two: Any, redis_url: str) -> None:
    a, _, sent = two
    a.join(TOPIC, "u", "a-1", {})
    await a.flush()
    before = (await a.store.read(TOPIC))[0]
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.scan_iter(match=f"{a.store.prefix}:*"))
    client.close()
    await a.beat()  # written again: a join with a version above every earlier one
    assert [j.v > before for _, d in sent.diffs[1:] for j in d.joins] == [True]


async def test_a_node_that_stops_beating_is_reaped_once_and_its_users_leave(
    redis_url: str, prefix: str
) -> None:
    sent = Sent()
    dying = redis_node(redis_url, prefix, sent, ttl=0.2)
    survivor = redis_node(redis_url, prefix, sent)
    other = redis_node(redis_url, prefix, sent)
    dying.join(TOPIC, "gone", "d-1", {})
    dying.join(TOPIC, "both", "d-2", {})
    await dying.flush()
    survivor.join(TOPIC, "both", "s-1", {})
    await survivor.flush()
    assert sent.joins() == ["both", "gone"]
    # `dying` never beats again; its expiry passes, and the next beat of the others reaps it.
    with anyio.fail_after(10):
        while not sent.leaves():
            await survivor.beat()
            await other.beat()
            await anyio.sleep(0.05)
    await survivor.beat()
    await other.beat()
    assert sent.leaves() == ["gone"]  # once, by whichever node reaped it; "both" stays
    assert (await survivor.store.read(TOPIC))[1] == [("both", 1, {})]
    for node in (dying, survivor, other):
        await node.close()


async def test_a_node_whose_entries_redis_lost_writes_them_again(two: Any, redis_url: str) -> None:
    a, _, sent = two
    a.join(TOPIC, "u", "a-1", {})
    await a.flush()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{a.store.prefix}:*"))
    client.delete(*keys)  # a Redis restarted without its data
    client.close()
    await a.beat()
    assert sent.joins() == ["u", "u"]  # announced again: members who saw it missing see it back
    assert (await a.store.read(TOPIC))[1] == [("u", 1, {})]


# -- Redis faults ----------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a hung Redis)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_a_hung_redis_fails_each_call_within_its_timeout_then_at_once(
    silent_port: int,
) -> None:
    sent = Sent()
    store = RedisPresence(
        f"redis://127.0.0.1:{silent_port}/0", prefix="p", node="n", ttl=5, timeout=0.3
    )
    node = PresenceNode(store, window=60, heartbeat=60, send=sent)
    node.join(TOPIC, "u", "c-1", {})
    with anyio.fail_after(10):
        await node.flush()  # kept for later, not raised
        with pytest.raises(TopicsUnavailable):
            await store.read(TOPIC)
        assert store.available is False
        with pytest.raises(TopicsUnavailable):
            await store.read(TOPIC)  # at once: known to be away
        await node.beat()  # tries, fails, keeps everything
    assert sent.diffs == []
    await node.close()


async def test_writes_kept_while_redis_was_away_are_done_after_the_next_beat(
    redis_url: str, prefix: str
) -> None:
    sent = Sent()
    node = redis_node(redis_url, prefix, sent)
    store = node.store
    assert isinstance(store, RedisPresence)
    store.available = False  # as after a failed call
    node.join(TOPIC, "u", "c-1", {})
    await node.flush()
    assert sent.diffs == []
    await node.beat()
    assert sent.joins() == ["u"]
    assert (await store.read(TOPIC))[1] == [("u", 1, {})]
    await node.close()


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"presence_heartbeat": 20.0}, "HEARTBEAT", id="heartbeat-longer-than-ttl"),
        pytest.param({"presence_heartbeat": 0}, "HEARTBEAT", id="heartbeat-zero"),
        pytest.param({"presence_window": 0}, "WINDOW", id="window-zero"),
    ],
)
def test_bad_presence_settings_are_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"ENVELOPE_PRESENCE_{message}"):
        EnvelopeSettings.from_django(**overrides)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("redis://h:1/0", id="url"),
        pytest.param(("h", 1), id="tuple"),
        pytest.param({"address": "redis://h:1/0"}, id="dict"),
    ],
)
async def test_presence_uses_the_redis_and_prefix_of_a_channels_redis_layer(
    settings: Any, host: Any
) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host], "prefix": "app"},
        }
    }
    store = store_from_settings(EnvelopeSettings.from_django(), "node-1")
    assert isinstance(store, RedisPresence)
    assert store.prefix == "app.presence"
    kwargs = store.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"]) == ("h", 1)
    await store.close()


async def test_an_explicit_presence_redis_wins_and_an_in_memory_layer_stays_local(
    settings: Any,
) -> None:
    assert isinstance(store_from_settings(EnvelopeSettings.from_django(), "n"), LocalPresence)
    settings.ENVELOPE_PRESENCE_REDIS = "redis://other:7/0"
    settings.ENVELOPE_PRESENCE_PREFIX = "mine"
    store = store_from_settings(EnvelopeSettings.from_django(), "n")
    assert isinstance(store, RedisPresence) and store.prefix == "mine"
    await store.close()


def scripts_run(url: str) -> int:
    """Scripts Redis has been asked to run so far (EVALSHA and EVAL, INFO commandstats)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_a_window_of_500_joins_is_one_redis_script_and_a_heartbeat_two(
    redis_url: str, prefix: str
) -> None:
    sent = Sent()
    node = redis_node(redis_url, prefix, sent)
    node.join(TOPIC, "first", "c-0", {})
    await node.flush()  # loads the scripts (EVALSHA, NOSCRIPT, EVAL) and the node's keys
    await node.beat()
    before = scripts_run(redis_url)
    for n in range(500):
        node.join(TOPIC, str(n), f"conn-{n}", {"n": n})
    await node.flush()
    after_window = scripts_run(redis_url)
    await node.beat()
    after_beat = scripts_run(redis_url)
    assert (after_window - before, after_beat - after_window) == (1, 2)  # sync; beat, reap
    assert len(sent.joins()) == 501
    await node.close()
