"""Deferred handlers on the thread backend: states, results, failures, guarantees.

The actor runs in-process (ActorHarness); the jobs run in the backend's real thread
pool against the test database.
"""

from __future__ import annotations

import anyio
import pytest
from django.contrib.auth.models import Group, User

from actors import EnvelopeConsumer
from actors.deferred import ThreadBackend
from actors.testing import ActorHarness, EnvelopeCommunicator
from actors.tracing import capture_trace
from envelope import State
from tests.actors import deferred_app
from tests.actors.deferred_app import jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def attempts_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENVELOPE_TEST_TMP", str(tmp_path))


def states(frames: list, i: str) -> list[str]:  # type: ignore[type-arg]
    return [env.s.value for env in frames if env.i == i and env.s is not None]


async def test_state_sequence_with_progress_and_result(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request("dtest.add", {"a": 2, "b": 3, "steps": 2}, i="add-1")
        assert reply.s is State.SUCCESS
        assert reply.p == {"total": 5}
        assert states(client.seen, "add-1") == ["q", "r", "r", "r", "s"]
        progress = [env.p for env in client.seen if env.s is State.RUNNING and env.p]
        assert progress == [{"done": 1, "of": 2}, {"done": 2, "of": 2}]
        assert all(env.t == "dtest.add" for env in client.seen)


async def test_failing_handler_answers_job_failed_without_the_exception_text(
    backend: ThreadBackend,
) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request("dtest.boom", {}, i="boom-1")
        assert reply.s is State.FAILED
        assert reply.p["code"] == "job_failed"
        assert "hunter2" not in str(reply.p) and "secret" not in str(reply.p)
        assert states(client.seen, "boom-1") == ["q", "r", "f"]
        # The connection lives on.
        assert (await client.request("dtest.echo", {"text": "hi"})).p == {"text": "hi"}


async def test_failure_answers_its_own_code_and_fields(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request("dtest.refuse", {"why": "closed"})
        assert reply.s is State.FAILED
        assert reply.p == {
            "code": "app.refused",
            "message": "The app refused this.",
            "reason": "closed",
        }


async def test_writes_are_committed_only_on_success_and_pushes_only_after_commit(
    backend: ThreadBackend,
) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        ok = await client.request("dtest.write", {"name": "thr-ok"}, i="w-ok")
        assert ok.s is State.SUCCESS
        bad = await client.request("dtest.write", {"name": "thr-bad", "fail": True}, i="w-bad")
        assert bad.p["code"] == "app.refused"
        # The push of the successful job came before its `s`; the failed job pushed nothing.
        pushes = [env for env in client.seen if env.s is None]
        assert [(env.t, env.i, env.p) for env in pushes] == [
            ("dtest.written", "w-ok", {"name": "thr-ok"})
        ]
        kinds = [(env.s, env.t) for env in client.seen if env.i == "w-ok"]
        assert kinds.index((None, "dtest.written")) < kinds.index((State.SUCCESS, "dtest.write"))
    names = set(
        await anyio.to_thread.run_sync(
            lambda: list(
                Group.objects.filter(name__startswith="thr-").values_list("name", flat=True)
            )
        )
    )
    assert names == {"thr-ok"}


async def test_permission_runs_on_the_worker_with_the_database(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        refused = await client.request("dtest.guarded", {"key": "thr-key"}, i="g-1")
        assert refused.p["code"] == "forbidden"
        assert states(client.seen, "g-1") == ["q", "r", "f"]
        await client.request("dtest.write", {"name": "thr-key"})
        allowed = await client.request("dtest.guarded", {"key": "thr-key"})
        assert allowed.s is State.SUCCESS and allowed.p == {"name": "thr-key"}


async def test_timeout_answers_timeout_and_rolls_back(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request(
            "dtest.slow", {"seconds": 1.6, "name": "thr-slow"}, i="slow-1", timeout=5
        )
        assert reply.s is State.FAILED and reply.p["code"] == "timeout"
        assert reply.p["timeout"] == 1
        await anyio.sleep(1.0)  # the thread ends; its late result is rolled back
        assert client.pending() == []
    exists = await anyio.to_thread.run_sync(lambda: Group.objects.filter(name="thr-slow").exists())
    assert not exists


async def test_job_that_cannot_start_in_time_answers_timeout_without_running() -> None:
    pool = ThreadBackend(workers=1)
    try:
        async with ActorHarness([jobs], backend=pool) as client:
            await client.send("dtest.sleep", {"seconds": 1.0}, i="busy")
            reply = await client.request("dtest.late", {"name": "thr-late"}, i="late-1", timeout=5)
            assert reply.s is State.FAILED and reply.p["code"] == "timeout"
            assert reply.p["start_timeout"] == 0.5
            assert states(client.seen, "late-1") == ["q", "f"]
            assert states(client.seen, "busy") == ["q", "r", "r", "s"]  # came first
    finally:
        pool.shutdown()
    assert not await anyio.to_thread.run_sync(
        lambda: Group.objects.filter(name="thr-late").exists()
    )


async def test_retries_run_the_job_again_after_an_unexpected_error(
    backend: ThreadBackend,
) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request("dtest.flaky", {"name": "thr-flaky"}, i="fl-1")
        assert reply.s is State.SUCCESS and reply.p == {"total": 2}
        assert states(client.seen, "fl-1") == ["q", "r", "r", "s"]


async def test_user_is_loaded_from_the_database_by_pk(backend: ThreadBackend) -> None:
    user = await anyio.to_thread.run_sync(lambda: User.objects.create_user("ada", password="x"))
    async with ActorHarness([jobs], backend=backend, user=user) as client:
        reply = await client.request("dtest.whoami", {})
        assert reply.p == {"username": "ada", "authenticated": True}
    async with ActorHarness([jobs], backend=backend) as anonymous:
        reply = await anonymous.request("dtest.whoami", {})
        assert reply.p == {"username": "", "authenticated": False}


async def test_reply_false_sends_only_a_failure(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        await client.send("dtest.quiet", {}, i="quiet-ok")
        failed = await client.request("dtest.quiet", {"fail": True}, i="quiet-f")
        assert failed.p["code"] == "app.refused"
        assert states(client.seen, "quiet-ok") == []
        assert states(client.seen, "quiet-f") == ["f"]


async def test_target_runs_a_function_instead_of_the_handler(backend: ThreadBackend) -> None:
    pipeline = deferred_app.TARGET_PIPELINE
    async with ActorHarness([jobs], backend=backend, pipeline=pipeline) as client:
        reply = await client.request("dtest.count", {"prefix": "nothing-"}, i="tg-1")
        assert reply.s is State.SUCCESS and reply.p == {"total": 1000}
        assert states(client.seen, "tg-1") == ["q", "r", "s"]
        wrong = await client.request("dtest.whoami", {}, i="tg-2")
        assert wrong.p["code"] == "job_failed"  # a target must return a model, a dict or None


async def test_job_of_a_closed_connection_logs_its_outcome_and_sends_nothing(
    backend: ThreadBackend,
) -> None:
    with capture_trace() as events:
        async with ActorHarness([jobs], backend=backend) as client:
            await client.send("dtest.sleep", {"seconds": 0.4, "name": "thr-gone"}, i="gone-1")
            assert (await client.receive()).s is State.QUEUED
            actor = client.actor
        # The connection is gone while the job sleeps; the job still commits its work.
        for _ in range(100):
            if any(e["event"] == "job.finished" and e.get("i") == "gone-1" for e in events):
                break
            await anyio.sleep(0.05)
    assert actor.mailbox.statistics().closed
    gone = [e for e in events if e["event"] == "job.connection_gone" and e.get("i") == "gone-1"]
    assert gone and gone[-1]["state"] == "s"  # and any `r` sent after the close before it
    outcome = [e for e in events if e["event"] == "job.finished" and e.get("i") == "gone-1"]
    assert outcome[0]["outcome"] == "s"
    assert not [e for e in events if e["event"] in ("job.failed", "job.call_failed")]
    assert await anyio.to_thread.run_sync(lambda: Group.objects.filter(name="thr-gone").exists())


async def test_through_the_consumer_pushes_keep_their_order_and_three_become_a_batch(
    backend: ThreadBackend,
) -> None:
    """With a channel layer, replies and on-commit pushes both go through it, in order."""
    client = EnvelopeCommunicator(EnvelopeConsumer.as_asgi(routers=[jobs], backend=backend))
    await client.connect()
    try:
        joined = await client.request("dtest.join", {"topic": "dtest.room"}, timeout=5)
        assert joined.s is State.SUCCESS
        listed = await client.request("topic.list", {}, timeout=5)
        assert "dtest.room" in listed.p["topics"]  # the actor joined it, after the commit
        reply = await client.request(
            "dtest.announce", {"topic": "dtest.room", "count": 3}, i="ann-3", timeout=5
        )
        assert reply.p == {"total": 3}
        batch = [env for env in client.seen if env.t == "batch"]
        assert len(batch) == 1 and batch[0].i == "ann-3"
        assert batch[0].p["t"] == "dtest.written"
        assert [item["p"]["name"] for item in batch[0].p["items"]] == [
            "dtest.room#0",
            "dtest.room#1",
            "dtest.room#2",
        ]
        order = [(env.t, env.s) for env in client.seen if env.i == "ann-3"]
        assert order.index(("batch", None)) < order.index(("dtest.announce", State.SUCCESS))
        single = await client.request(
            "dtest.announce", {"topic": "dtest.room", "count": 1}, i="ann-1", timeout=5
        )
        assert single.s is State.SUCCESS
        assert [env.p for env in client.seen if env.t == "dtest.written" and env.i == "ann-1"] == [
            {"name": "dtest.room#0"}
        ]
    finally:
        await client.disconnect()


async def test_publish_without_a_channel_layer_fails_the_job(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend) as client:
        reply = await client.request("dtest.write", {"name": "thr-nolayer", "publish": True})
        assert reply.p["code"] == "job_failed"
    assert not await anyio.to_thread.run_sync(
        lambda: Group.objects.filter(name="thr-nolayer").exists()
    )


async def test_the_connections_language_is_active_on_the_worker(backend: ThreadBackend) -> None:
    app = EnvelopeConsumer.as_asgi(routers=[jobs], backend=backend)
    client = EnvelopeCommunicator(app, headers=[(b"accept-language", b"sv")])
    await client.connect()
    try:
        reply = await client.request("dtest.language", {}, timeout=5)
        assert reply.p == {"code": "sv"}
    finally:
        await client.disconnect()
