"""The actor and its pipeline, driven without Channels through `ActorHarness`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel

from actors import DEFAULT_PIPELINE
from actors.testing import ActorHarness
from envelope import Envelope, Failure, State, message
from handlers import Context, Router
from tests.actors.sample import Echo, Step, events, router

MEMBER = SimpleNamespace(pk=7, is_authenticated=True, is_staff=False)


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    events.clear()


@pytest.fixture
async def client() -> AsyncIterator[ActorHarness]:
    async with ActorHarness([router]) as harness:
        yield harness


async def wait_for_event(name: str) -> None:
    with anyio.fail_after(2):
        while name not in events:  # noqa: ASYNC110 (a plain list)
            await anyio.sleep(0.002)


async def test_request_gets_its_reply_with_its_type_and_trace_id(client: ActorHarness) -> None:
    reply = await client.request("t.echo", {"text": "hi"}, i="abc")
    assert reply == Envelope("t.echo", "abc", {"text": "hi"}, State.SUCCESS)


async def test_a_request_without_i_gets_a_server_trace_id(client: ActorHarness) -> None:
    await client.send_frame('{"t": "t.ping"}')
    reply = await client.receive()
    assert reply.s is State.SUCCESS
    assert reply.i is not None and reply.i.startswith("srv-")


async def test_payloadless_message_accepts_absent_or_null_p(client: ActorHarness) -> None:
    assert (await client.request("t.ping")).p == {"pong": True}
    await client.send_frame('{"t": "t.ping", "i": "n", "p": null}')
    assert (await client.receive()).p == {"pong": True}


async def test_serial_replies_leave_in_request_order(client: ActorHarness) -> None:
    slow = await client.send("t.sleep", {"seconds": 0.1, "tag": "slow"})
    fast = await client.send("t.echo", {"text": "fast"})
    first, second = await client.receive(), await client.receive()
    assert (first.i, second.i) == (slow, fast)


async def test_a_concurrent_handler_does_not_hold_up_the_mailbox(client: ActorHarness) -> None:
    slow = await client.send("t.sleep.concurrent", {"seconds": 0.2, "tag": "c"})
    fast = await client.send("t.echo", {"text": "fast"})
    first, second = await client.receive(), await client.receive()
    assert (first.i, second.i) == (fast, slow)
    assert second.p == {"tag": "c"}


async def test_concurrent_handlers_are_bounded_per_connection() -> None:
    async with ActorHarness([router], max_concurrent=2) as client:
        for tag in "abc":
            await client.send("t.sleep.concurrent", {"seconds": 0.1, "tag": tag})
        await wait_for_event("start:b")
        await anyio.sleep(0.03)
        assert "start:c" not in events  # the third waits for a free slot
        for _ in range(3):
            assert (await client.receive()).s is State.SUCCESS
        assert events.index("start:c") > events.index("end:a")


async def test_ack_is_sent_before_the_handler_runs(client: ActorHarness) -> None:
    i = await client.send("t.sleep.ack", {"seconds": 0.01, "tag": "x"})
    ack, done = await client.receive(), await client.receive()
    assert (ack.i, ack.s, ack.p) == (i, State.ACKNOWLEDGED, None)
    assert (done.i, done.s) == (i, State.SUCCESS)


async def test_progress_is_sent_as_r_before_the_result(client: ActorHarness) -> None:
    reply = await client.request("t.progress", {"steps": 2})
    states = [(e.s, e.p) for e in client.seen]
    assert states == [
        (State.RUNNING, {"done": 0}),
        (State.RUNNING, {"done": 1}),
        (State.SUCCESS, {"done": 2}),
    ]
    assert reply.p == {"done": 2}


declared = Router("declared-progress")


@message("t.progress.declared")
class Declared(BaseModel):
    wrong: bool


@declared.handler(public=True, progress=Step)
async def declared_progress(msg: Declared, ctx: Context) -> None:
    await ctx.progress(Echo(text="not a Step") if msg.wrong else Step(done=1))


async def test_progress_other_than_the_declared_model_is_an_internal_error() -> None:
    async with ActorHarness([declared]) as harness:
        right = await harness.request("t.progress.declared", {"wrong": False})
        assert [(e.s, e.p) for e in harness.seen] == [
            (State.RUNNING, {"done": 1}),
            (State.SUCCESS, None),
        ]
        assert right.s == State.SUCCESS
        wrong = await harness.request("t.progress.declared", {"wrong": True})
        assert (wrong.s, wrong.p["code"]) == (State.FAILED, "internal")


async def test_ctx_send_pushes_with_the_requests_trace_id(client: ActorHarness) -> None:
    await client.request("t.push", {"text": "hello"}, i="p1")
    push, reply = client.seen
    assert push == Envelope("t.pushed", "p1", {"text": "hello"})
    assert (reply.t, reply.s) == ("t.push", State.SUCCESS)


async def test_reply_false_sends_nothing_on_success_and_f_on_failure(
    client: ActorHarness,
) -> None:
    await client.send("t.silent", {}, i="quiet")
    await client.send("t.silent", {"fail": True}, i="loud")
    await client.send("t.ping", i="after")
    first, second = await client.receive(), await client.receive()
    assert (first.i, first.s, first.p["code"]) == ("loud", State.FAILED, "vote_closed")
    assert second.i == "after"


async def test_failure_answers_its_code_and_safe_extras(client: ActorHarness) -> None:
    reply = await client.request("t.vote", {"poll": 3})
    assert reply.s is State.FAILED
    assert reply.p == {
        "code": "vote_closed",
        "message": "Voting has ended for this poll.",
        "poll": 3,
    }


async def test_unexpected_exception_answers_internal_and_reveals_nothing(
    client: ActorHarness,
) -> None:
    reply = await client.request("t.boom", {"secret": "s3cr3t"})
    assert reply.p is not None and reply.p["code"] == "internal"
    assert "s3cr3t" not in str(reply.p) and "RuntimeError" not in str(reply.p)
    assert (await client.request("t.ping")).s is State.SUCCESS


async def test_timeout_answers_timeout_and_the_actor_goes_on(client: ActorHarness) -> None:
    reply = await client.request("t.timeout")
    assert reply.p is not None and reply.p["code"] == "timeout"
    assert (await client.request("t.ping")).s is State.SUCCESS


async def test_default_timeout_setting_applies_to_handlers_without_one() -> None:
    async with ActorHarness([router], default_timeout=0.05) as client:
        reply = await client.request("t.sleep", {"seconds": 1})
        assert reply.p is not None and reply.p["code"] == "timeout"


async def test_wrong_return_type_is_internal_and_a_dict_is_validated(
    client: ActorHarness,
) -> None:
    assert (await client.request("t.wrong_return")).p["code"] == "internal"  # type: ignore[index]
    assert (await client.request("t.wrong_return", {"as_dict": True})).p == {"text": "from a dict"}


async def test_unauthenticated_connections_may_only_send_public_messages() -> None:
    async with ActorHarness([router], allow_unauthenticated=False) as client:
        assert (await client.request("t.sleep", {"seconds": 0})).p["code"] == "unauthenticated"  # type: ignore[index]
        assert (await client.request("t.echo", {"text": "x"})).s is State.SUCCESS


async def test_permission_refusal_answers_forbidden(client: ActorHarness) -> None:
    assert (await client.request("t.private")).p["code"] == "forbidden"  # type: ignore[index]
    assert (await client.request("t.deny")).p["code"] == "forbidden"  # type: ignore[index]


async def test_permission_sees_the_connections_user() -> None:
    async with ActorHarness([router], user=MEMBER) as client:
        assert (await client.request("t.private")).s is State.SUCCESS


async def test_rate_limit_answers_rate_limited_with_retry_after(client: ActorHarness) -> None:
    assert (await client.request("t.rated")).s is State.SUCCESS
    assert (await client.request("t.rated")).s is State.SUCCESS
    reply = await client.request("t.rated")
    assert reply.p is not None and reply.p["code"] == "rate_limited"
    assert 0 < reply.p["retry_after"] <= 5


async def test_full_mailbox_answers_overloaded_and_keeps_order() -> None:
    async with ActorHarness([router], mailbox_size=2) as client:
        first = await client.send("t.sleep", {"seconds": 0.1, "tag": "a"})
        await wait_for_event("start:a")
        queued = [await client.send("t.echo", {"text": str(n)}) for n in range(2)]
        dropped = await client.send("t.echo", {"text": "dropped"}, i="drop-me")
        over = await client.receive()
        assert (over.t, over.i, over.s) == ("t.echo", dropped, State.FAILED)
        assert over.p is not None and over.p["code"] == "overloaded"
        rest = [await client.receive() for _ in range(3)]
        assert [e.i for e in rest] == [first, *queued]
        stats = client.actor.mailbox.statistics()
        assert (stats.rejected, stats.size) == (1, 2)


async def test_stop_cancels_running_handlers() -> None:
    async with ActorHarness([router]) as client:
        await client.send("t.hang")
        await wait_for_event("hang:start")
    assert "hang:cancelled" in events


async def test_user_middleware_runs_in_the_chain_and_can_refuse() -> None:
    seen: list[str] = []

    async def audit(ctx: Any, call_next: Any) -> None:
        seen.append(ctx.envelope.t)
        if ctx.envelope.t == "t.echo" and ctx.message.text == "no":
            raise Failure("refused by audit")
        await call_next(ctx)

    pipeline = [*DEFAULT_PIPELINE[:3], audit, *DEFAULT_PIPELINE[3:]]
    async with ActorHarness([router], pipeline=pipeline) as client:
        assert (await client.request("t.echo", {"text": "yes"})).s is State.SUCCESS
        refused = await client.request("t.echo", {"text": "no"})
        assert refused.p == {"code": "failed", "message": "refused by audit"}
    assert seen == ["t.echo", "t.echo"]


@pytest.mark.parametrize(
    "pipeline",
    [
        pytest.param(DEFAULT_PIPELINE[1:], id="without respond"),
        pytest.param(
            [DEFAULT_PIPELINE[0], DEFAULT_PIPELINE[2], DEFAULT_PIPELINE[1], *DEFAULT_PIPELINE[3:]],
            id="validate before parse",
        ),
        pytest.param([*DEFAULT_PIPELINE, "no.such.stage"], id="not importable"),
    ],
)
def test_a_broken_pipeline_is_refused_at_start_up(pipeline: list[str]) -> None:
    with pytest.raises(ImproperlyConfigured):
        ActorHarness([router], pipeline=pipeline)


def test_two_routers_handling_one_type_are_refused_at_start_up() -> None:
    other = Router("other")

    @other.handler
    async def echo_again(msg: Echo) -> None: ...

    with pytest.raises(ImproperlyConfigured, match=r"t\.echo"):
        ActorHarness([router, other])


@pytest.mark.parametrize(
    "setting", [{"mailbox_size": 0}, {"max_frame_bytes": -1}, {"max_concurrent": "8"}]
)
def test_bad_settings_are_refused_at_start_up(setting: dict[str, Any]) -> None:
    with pytest.raises(ImproperlyConfigured):
        ActorHarness([router], **setting)


async def test_statistics_count_what_the_connection_did(client: ActorHarness) -> None:
    before = client.actor.statistics()
    assert (before.handled, before.failed, before.last_received, before.last_sent) == (
        0,
        0,
        None,
        None,
    )
    await client.request("t.echo", {"text": "x"})
    await client.request("t.vote", {"poll": 1})
    stats = client.actor.statistics()
    assert (stats.handled, stats.failed) == (2, 1)
    assert stats.last_received is not None and stats.last_sent is not None
    assert stats.opened <= stats.last_received <= stats.last_sent
    assert stats.mailbox.posted == 2
