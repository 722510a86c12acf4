from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from envelope import message
from handlers import (
    Context,
    HandlerDefinitionError,
    JobContext,
    Rate,
    Router,
    checked_result,
    read_spec,
)


@message("h.msg")
class Msg(BaseModel):
    n: int = 0


@message("h.other")
class Other(BaseModel):
    pass


class NoName(BaseModel):
    pass


class Reply(BaseModel):
    n: int


async def _async_msg_ctx(msg: Msg, ctx: Context) -> Reply:
    return Reply(n=msg.n)


def test_spec_reads_payload_context_and_reply_from_annotations() -> None:
    spec = read_spec(_async_msg_ctx)
    assert (spec.name, spec.model, spec.returns, spec.is_async) == ("h.msg", Msg, Reply, True)
    assert not spec.deferred


def test_a_plain_def_is_deferred() -> None:
    def export(msg: Msg, ctx: JobContext) -> None: ...

    spec = read_spec(export, queue="exports", timeout=120, retries=2)
    assert spec.deferred
    assert (spec.queue, spec.timeout, spec.retries) == ("exports", 120.0, 2)


def test_string_annotations_are_resolved_once() -> None:
    from tests.handlers.annotated_later import Later, LaterReply, router

    spec = router["h.later"]
    assert (spec.model, spec.returns) == (Later, LaterReply)


@pytest.mark.parametrize(
    "order", ["msg_ctx", "ctx_msg", "msg_only", "keyword_only"], ids=lambda o: o
)
async def test_call_passes_message_and_context_in_the_declared_order(order: str) -> None:
    seen: list[Any] = []

    if order == "msg_ctx":

        async def fn(m: Msg, c: Context) -> None:
            seen.extend([m, c])
    elif order == "ctx_msg":

        async def fn(c: Context, m: Msg) -> None:  # type: ignore[misc]
            seen.extend([m, c])
    elif order == "msg_only":

        async def fn(m: Msg) -> None:  # type: ignore[misc]
            seen.extend([m, "ctx"])
    else:

        async def fn(*, c: Context, m: Msg) -> None:  # type: ignore[misc]
            seen.extend([m, c])

    spec = read_spec(fn)
    message_obj, ctx_obj = Msg(n=1), object()
    await spec.call(message_obj, ctx_obj)
    assert seen[0] is message_obj
    assert seen[1] in (ctx_obj, "ctx")


async def _no_message(ctx: Context) -> None: ...
async def _two_messages(a: Msg, b: Other) -> None: ...
async def _unnamed_model(a: NoName) -> None: ...
async def _job_context_in_async(a: Msg, ctx: JobContext) -> None: ...
def _context_in_sync(a: Msg, ctx: Context) -> None: ...
async def _stray_param(a: Msg, other: int) -> None: ...
async def _bad_return(a: Msg) -> int: ...
async def _unannotated_return(a: Msg): ...  # type: ignore[no-untyped-def]
async def _varargs(a: Msg, *rest: Any) -> None: ...
async def _two_contexts(a: Msg, c1: Context, c2: Context) -> None: ...
async def _gen(a: Msg):  # type: ignore[no-untyped-def]
    yield 1


def _sync_with_async_perm(a: Msg) -> None: ...
async def _async_perm(msg: Any, ctx: Any) -> bool: ...
async def _plain(a: Msg) -> None: ...
async def _returns_reply(a: Msg) -> Reply: ...


@pytest.mark.parametrize(
    ("fn", "options", "problem"),
    [
        pytest.param(_no_message, {}, "takes no message", id="no message"),
        pytest.param(_two_messages, {}, "two messages", id="two messages"),
        pytest.param(_unnamed_model, {}, "no wire name", id="model without @message"),
        pytest.param(_job_context_in_async, {}, "take Context", id="JobContext in async"),
        pytest.param(_context_in_sync, {}, "take JobContext", id="Context in def"),
        pytest.param(_stray_param, {}, "'other' must be annotated", id="stray parameter"),
        pytest.param(_bad_return, {}, "return annotation", id="return not a model"),
        pytest.param(
            _unannotated_return,
            {},
            r"no return annotation: add `-> None` .* or `-> SomeReply`",
            id="no return annotation",
        ),
        pytest.param(_varargs, {}, r"\*rest", id="varargs"),
        pytest.param(_two_contexts, {}, "two context", id="two contexts"),
        pytest.param(_gen, {}, "generators", id="generator"),
        pytest.param(
            _sync_with_async_perm,
            {"permission": _async_perm},
            "plain def",
            id="async permission on deferred",
        ),
        pytest.param(_plain, {"permission": 5}, "not callable", id="permission not callable"),
        pytest.param(_plain, {"timeout": 0}, "positive", id="zero timeout"),
        pytest.param(_plain, {"rate": "lots"}, "N/period", id="bad rate"),
        pytest.param(_plain, {"queue": "q"}, "deferred", id="queue on async"),
        pytest.param(
            _sync_with_async_perm, {"concurrent": True}, "concurrent", id="concurrent def"
        ),
        pytest.param(_sync_with_async_perm, {"ack": True}, "ack", id="ack on deferred"),
        pytest.param(_returns_reply, {"reply": False}, "reply=False", id="reply=False returns"),
        pytest.param(_plain, {"retry": 3}, "unknown option", id="unknown option"),
    ],
)
def test_malformed_handlers_fail_at_declaration_naming_the_function(
    fn: Any, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(HandlerDefinitionError, match=problem) as info:
        read_spec(fn, **options)
    assert fn.__qualname__ in str(info.value)


def test_one_handler_per_message_type_per_router() -> None:
    router = Router("dupes")

    @router.handler
    async def first(msg: Other) -> None: ...

    with pytest.raises(HandlerDefinitionError, match=r"already handled by .*first"):

        @router.handler
        async def second(msg: Other) -> None: ...


def test_router_handler_with_options_and_lookup() -> None:
    router = Router("opts")

    @router.handler(public=True, concurrent=True, timeout=3, rate="5/10s", ack=True)
    async def opts(msg: Other) -> None: ...

    spec = router["h.other"]
    assert (spec.public, spec.concurrent, spec.timeout, spec.ack) == (True, True, 3.0, True)
    assert spec.rate == Rate(5, 10.0)
    assert router.get("nope") is None
    assert list(router) == [spec]
    assert opts.__name__ == "opts"  # the decorator returns the function itself


def test_optional_reply_models_are_allowed() -> None:
    async def maybe(msg: Msg) -> Reply | None: ...

    spec = read_spec(maybe)
    assert (spec.returns, spec.returns_optional) == (Reply, True)


def test_returning_a_model_from_a_none_handler_names_the_fix() -> None:
    async def answers(msg: Msg) -> None: ...

    spec = read_spec(answers)
    with pytest.raises(TypeError) as info:
        checked_result(spec, Reply(n=1))
    assert str(info.value) == (
        f"handler {spec.qualname} is declared `-> None` but returned a Reply: annotate it "
        "`-> Reply` (a pydantic model) to send it as the reply payload, or return nothing"
    )
