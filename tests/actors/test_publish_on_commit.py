"""publish_on_commit / tell_on_commit: sent if and when the transaction commits, in order,
with runs of three or more of one type to one target sent as one batch frame."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from pydantic import BaseModel

from actors.publishing import fanout_for, pushes_through, thread_sender
from actors.topics import publish_on_commit, tell_on_commit
from envelope import loads, message

pytestmark = pytest.mark.django_db(transaction=True)


@message("tp.a")
class A(BaseModel):
    n: int


@message("tp.b")
class B(BaseModel):
    n: int


class Inbox:
    """A member of the in-process fan-out in `topics`, and a channel of the in-memory
    layer (for pushes to one connection), read back as frames."""

    def __init__(self, *topics: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        self.topics = topics
        self.texts: list[str] = []
        # A loop of its own, not running: what is published reaches its hub at once.
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._join())

    async def _join(self) -> None:
        for topic in self.topics:
            await fanout_for(self.layer).join(topic, self)

    def push_nowait(self, text: str) -> None:
        self.texts.append(text)

    def message_nowait(self, message: dict[str, Any]) -> None:
        raise AssertionError(f"no command expected, got {message!r}")

    def frames(self) -> list[dict[str, Any]]:
        out = [loads(text) for text in self.texts]
        self.texts.clear()
        queue = self.layer.channels.get(self.channel)
        while queue is not None and not queue.empty():
            msg = async_to_sync(self.layer.receive)(self.channel)
            assert msg["type"] == "envelope.push"
            out.append(loads(msg["text"]))
        return out

    def close(self) -> None:
        async def leave() -> None:
            fanout_for(self.layer).leave_all(self.topics, self)

        self.loop.run_until_complete(leave())
        self.loop.close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox("pc.x", "pc.y")
    yield box
    box.close()


def test_outside_a_transaction_it_is_sent_at_once(inbox: Inbox) -> None:
    publish_on_commit("pc.x", A(n=1), i="c1")
    assert inbox.frames() == [{"t": "tp.a", "i": "c1", "p": {"n": 1}}]


def test_nothing_is_sent_before_commit_and_all_after(inbox: Inbox) -> None:
    with transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        publish_on_commit("pc.x", B(n=2))
        assert inbox.frames() == []
    assert inbox.frames() == [{"t": "tp.a", "p": {"n": 1}}, {"t": "tp.b", "p": {"n": 2}}]


def test_nothing_is_sent_when_the_transaction_rolls_back(inbox: Inbox) -> None:
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        1 / 0  # noqa: B018
    assert inbox.frames() == []
    publish_on_commit("pc.x", A(n=2))  # the next transaction starts clean
    assert inbox.frames() == [{"t": "tp.a", "p": {"n": 2}}]


def test_a_rolled_back_savepoint_drops_exactly_its_pushes(inbox: Inbox) -> None:
    with transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            publish_on_commit("pc.x", A(n=2))
            publish_on_commit("pc.x", A(n=3))
            1 / 0  # noqa: B018
        publish_on_commit("pc.x", B(n=4))
    assert [(f["t"], f["p"]["n"]) for f in inbox.frames()] == [("tp.a", 1), ("tp.b", 4)]


def test_pushes_survive_when_the_first_ones_savepoint_rolled_back(inbox: Inbox) -> None:
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            publish_on_commit("pc.x", A(n=1))
            1 / 0  # noqa: B018
        with transaction.atomic():
            publish_on_commit("pc.x", A(n=2))
        publish_on_commit("pc.x", A(n=3))
    assert [f["p"]["n"] for f in inbox.frames()] == [2, 3]


def test_three_of_one_type_to_one_topic_are_one_batch(inbox: Inbox) -> None:
    with transaction.atomic():
        publish_on_commit("pc.x", A(n=1), i="r1")
        publish_on_commit("pc.x", A(n=2), i="r2")
        publish_on_commit("pc.x", A(n=3))
    assert inbox.frames() == [
        {
            "t": "batch",
            "p": {
                "t": "tp.a",
                "items": [{"p": {"n": 1}, "i": "r1"}, {"p": {"n": 2}, "i": "r2"}, {"p": {"n": 3}}],
            },
        }
    ]


def test_a_batch_whose_items_share_an_i_carries_it(inbox: Inbox) -> None:
    with transaction.atomic():
        for n in range(4):
            publish_on_commit("pc.x", A(n=n), i="same")
    (frame,) = inbox.frames()
    assert frame["i"] == "same"
    assert [item["i"] for item in frame["p"]["items"]] == ["same"] * 4


def test_two_are_not_batched(inbox: Inbox) -> None:
    with transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        publish_on_commit("pc.x", A(n=2))
    assert [f["t"] for f in inbox.frames()] == ["tp.a", "tp.a"]


def test_batching_never_reorders(inbox: Inbox) -> None:
    with transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        publish_on_commit("pc.x", B(n=2))
        for n in range(3, 6):
            publish_on_commit("pc.x", A(n=n))
        publish_on_commit("pc.y", A(n=6))
        publish_on_commit("pc.x", A(n=7))
        publish_on_commit("pc.x", A(n=8))
    frames = inbox.frames()
    summary = [
        (f["t"], [i["p"]["n"] for i in f["p"]["items"]] if f["t"] == "batch" else f["p"]["n"])
        for f in frames
    ]
    assert summary == [
        ("tp.a", 1),
        ("tp.b", 2),
        ("batch", [3, 4, 5]),
        ("tp.a", 6),
        ("tp.a", 7),
        ("tp.a", 8),
    ]


def test_tell_on_commit_goes_to_one_connection_and_batches_too(inbox: Inbox) -> None:
    other = Inbox()
    try:
        with transaction.atomic():
            for n in range(3):
                tell_on_commit(other.channel, B(n=n))
            publish_on_commit("pc.x", A(n=9))
        assert [f["t"] for f in other.frames()] == ["batch"]
    finally:
        other.close()
    assert inbox.frames() == [{"t": "tp.a", "p": {"n": 9}}]


def test_the_trace_id_comes_from_the_bound_context(inbox: Inbox) -> None:
    with structlog.contextvars.bound_contextvars(i="job-7"), transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
    assert inbox.frames()[0]["i"] == "job-7"


def test_a_bad_topic_fails_in_the_caller_at_once() -> None:
    with pytest.raises(ValueError, match="topic name"), transaction.atomic():
        publish_on_commit("no spaces", A(n=1))


def test_consecutive_transactions_are_separate(inbox: Inbox) -> None:
    for n in range(2):
        with transaction.atomic():
            publish_on_commit("pc.x", A(n=n))
            publish_on_commit("pc.x", A(n=n))
    assert [f["t"] for f in inbox.frames()] == ["tp.a"] * 4


def test_pushes_through_sends_what_commits_with_the_given_function() -> None:
    sent: list[list[tuple[str, str, dict[str, Any]]]] = []
    with pushes_through(sent.append), transaction.atomic():
        publish_on_commit("pc.x", A(n=1))
        tell_on_commit("some-channel", B(n=2))
        assert sent == []
    assert [[(kind, target) for kind, target, _ in batch] for batch in sent] == [
        [("topic", "pc.x"), ("address", "some-channel")]
    ]
    publish_on_commit("pc.x", A(n=3))  # outside the block: the layer again, not `sent`
    assert len(sent) == 1


async def test_a_job_thread_reaches_a_waiting_receiver_on_the_servers_loop() -> None:
    received: list[str] = []
    arrived = anyio.Event()

    class Receiver:
        def push_nowait(self, text: str) -> None:
            received.append(text)
            arrived.set()

        def message_nowait(self, message: dict[str, Any]) -> None:
            raise AssertionError(message)

    receiver = Receiver()
    hub = fanout_for(get_channel_layer())
    await hub.join("pc.thread", receiver)
    token = anyio.lowlevel.current_token()

    def job() -> None:
        with pushes_through(thread_sender(token)), transaction.atomic():
            for n in range(3):
                publish_on_commit("pc.thread", A(n=n), i="job")

    with anyio.fail_after(5):
        await anyio.to_thread.run_sync(job)
        await arrived.wait()
    hub.leave("pc.thread", receiver)
    frame = loads(received[0])
    assert (frame["t"], frame["i"], len(frame["p"]["items"])) == ("batch", "job", 3)
