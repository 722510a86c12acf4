"""Every kind of bad input, over the Channels consumer: answered with its code, nothing lost."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import EnvelopeConsumer
from actors.testing import ActorHarness, EnvelopeCommunicator, WithUser
from envelope import MAX_TRACE_ID_LENGTH, State, peek_envelope
from tests.actors.sample import events, router

SERVER_ID = "<server>"
BIG = "x" * 2000


ANONYMOUS = SimpleNamespace(pk=None, is_authenticated=False)


def app(**options: Any) -> Any:
    return WithUser(EnvelopeConsumer.as_asgi(routers=[router], **options), ANONYMOUS)


@dataclass
class Row:
    frames: list[str | bytes]
    code: str
    t: str
    i: str | None = SERVER_ID
    options: dict[str, Any] = field(default_factory=dict)
    wait_for: str | None = None  # an event to wait for before the last frame


def frame(**keys: Any) -> str:
    return json.dumps(keys)


ROWS = [
    pytest.param(Row(["{nope"], "bad_json", "error"), id="not json"),
    pytest.param(Row(["[1, 2]"], "bad_envelope", "error"), id="json not an object"),
    pytest.param(Row([frame(i="m1")], "bad_envelope", "error", "m1"), id="missing t"),
    pytest.param(Row([frame(t=7, i="m2")], "bad_envelope", "error", "m2"), id="t not a string"),
    pytest.param(Row([frame(t="a b", i="m3")], "bad_envelope", "error", "m3"), id="t malformed"),
    pytest.param(
        Row([frame(t="t.ping", i="i" * (MAX_TRACE_ID_LENGTH + 1))], "bad_envelope", "t.ping"),
        id="i too long",
    ),
    pytest.param(Row([frame(t="t.ping", i=[1])], "bad_envelope", "t.ping"), id="i wrong type"),
    pytest.param(
        Row([frame(t="t.ping", i="m4", s="s")], "bad_envelope", "t.ping", "m4"), id="s from client"
    ),
    pytest.param(
        Row([frame(t="t.echo", i="m5", p=[1])], "bad_envelope", "t.echo", "m5"),
        id="p not an object",
    ),
    pytest.param(
        Row([frame(t="t.echo", i="m6", x=1)], "bad_envelope", "t.echo", "m6"), id="unknown key"
    ),
    pytest.param(
        Row([frame(t="t.nothing", i="m7")], "unknown_type", "t.nothing", "m7"), id="unknown t"
    ),
    pytest.param(
        Row([frame(t="t.echo", i="m8", p={"text": {"a": 1}})], "invalid_payload", "t.echo", "m8"),
        id="invalid payload",
    ),
    pytest.param(
        Row(
            [frame(t="t.echo", i="m9", p={"text": BIG})],
            "too_large",
            "t.echo",
            "m9",
            {"max_frame_bytes": 1024},
        ),
        id="frame too large",
    ),
    pytest.param(
        Row([b'{"t": "t.ping", "i": "m10"}'], "bad_envelope", "t.ping", "m10"), id="binary frame"
    ),
    pytest.param(
        Row(
            [
                frame(t="t.sleep", i="s1", p={"seconds": 0.2, "tag": "full"}),
                frame(t="t.echo", i="q1", p={"text": "queued"}),
                frame(t="t.echo", i="m11", p={"text": "dropped"}),
            ],
            "overloaded",
            "t.echo",
            "m11",
            {"mailbox_size": 1},
            wait_for="start:full",
        ),
        id="mailbox full",
    ),
    pytest.param(
        Row([frame(t="t.vote", i="m12", p={"poll": 1})], "vote_closed", "t.vote", "m12"),
        id="handler raises Failure",
    ),
    pytest.param(
        Row([frame(t="t.boom", i="m13")], "internal", "t.boom", "m13"),
        id="handler raises anything else",
    ),
    pytest.param(
        Row([frame(t="t.timeout", i="m14")], "timeout", "t.timeout", "m14"),
        id="handler over its timeout",
    ),
    pytest.param(
        Row(
            [frame(t="t.rated", i="r1"), frame(t="t.rated", i="r2"), frame(t="t.rated", i="m15")],
            "rate_limited",
            "t.rated",
            "m15",
        ),
        id="rate limit",
    ),
    pytest.param(
        Row(
            [frame(t="t.sleep", i="m16", p={"seconds": 0})],
            "unauthenticated",
            "t.sleep",
            "m16",
            {"allow_unauthenticated": False},
        ),
        id="unauthenticated",
    ),
    pytest.param(Row([frame(t="t.deny", i="m17")], "forbidden", "t.deny", "m17"), id="forbidden"),
]


async def _wait_for_event(name: str) -> None:
    with anyio.fail_after(2):
        while name not in events:  # noqa: ASYNC110 (a plain list)
            await anyio.sleep(0.002)


@pytest.mark.parametrize("row", ROWS)
async def test_bad_input_is_answered_with_its_code_and_the_connection_lives_on(row: Row) -> None:
    events.clear()
    client = EnvelopeCommunicator(app(**row.options))
    connected, _ = await client.connect()
    assert connected
    try:
        for n, raw in enumerate(row.frames):
            if row.wait_for and n == len(row.frames) - 1:
                await _wait_for_event(row.wait_for)
            await client.send_frame(raw)
        with anyio.fail_after(3):
            while True:
                reply = await client.receive()
                client.seen.append(reply)
                if reply.s is State.FAILED:
                    break
        assert reply.t == row.t
        if row.i == SERVER_ID:
            assert reply.i is not None and reply.i.startswith("srv-")
        else:
            assert reply.i == row.i
        assert reply.p is not None
        assert reply.p["code"] == row.code
        assert isinstance(reply.p["message"], str) and reply.p["message"]
        if row.code == "invalid_payload":
            assert reply.p["errors"] == [
                {"loc": ["text"], "msg": "str type expected", "type": "type_error.str"}
            ]
        if row.code == "rate_limited":
            assert reply.p["retry_after"] > 0
        if row.code == "internal":
            assert "hunter2" not in json.dumps(reply.p)
        # Nothing is lost: every other request gets its answer, then the connection
        # still serves.
        expected = {peek_envelope(f)[1] for f in row.frames if isinstance(f, str)} - {None}
        answered = {reply.i} | {e.i for e in client.seen if e.s is not None and e.s.terminal}
        with anyio.fail_after(3):
            while not expected <= answered:
                answered.add((await client.receive()).i)
        alive = await client.request("t.ping", i="alive")
        assert alive.s is State.SUCCESS
    finally:
        await client.disconnect()


async def test_an_anonymous_connection_with_authentication_required_still_gets_public_ones() -> (
    None
):
    client = EnvelopeCommunicator(app(allow_unauthenticated=False))
    assert (await client.connect())[0]
    assert (await client.request("t.echo", {"text": "hi"})).p == {"text": "hi"}
    await client.disconnect()


async def test_one_connections_slow_or_failing_handler_never_delays_another() -> None:
    events.clear()
    asgi = app()
    a, b = EnvelopeCommunicator(asgi), EnvelopeCommunicator(asgi)
    await a.connect()
    await b.connect()
    try:
        await a.send("t.sleep", {"seconds": 0.3, "tag": "a-slow"})
        await _wait_for_event("start:a-slow")
        await a.send("t.boom")
        reply = await b.request("t.echo", {"text": "b"})
        assert reply.p == {"text": "b"}
        assert "end:a-slow" not in events  # B was answered while A's handler still ran
        assert (await a.receive()).p == {"tag": "a-slow"}
        assert (await a.receive()).p["code"] == "internal"  # type: ignore[index]
    finally:
        await a.disconnect()
        await b.disconnect()


async def test_disconnect_cancels_the_connections_running_handler() -> None:
    events.clear()
    client = EnvelopeCommunicator(app())
    await client.connect()
    await client.send("t.hang")
    await _wait_for_event("hang:start")
    await client.disconnect()
    with anyio.fail_after(2):
        while "hang:cancelled" not in events:  # noqa: ASYNC110 (a plain list)
            await anyio.sleep(0.005)


async def test_frames_do_not_pay_a_thread_hop_to_close_db_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import channels.consumer

    calls = 0

    async def counting() -> None:
        nonlocal calls
        calls += 1

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    client = EnvelopeCommunicator(app())
    await client.connect()
    for n in range(5):
        assert (await client.request("t.echo", {"text": str(n)})).s is State.SUCCESS
    await client.disconnect()
    assert calls == 0


async def test_plain_websocket_communicator_sees_raw_json_text() -> None:
    client = WebsocketCommunicator(app(), "/ws/")
    await client.connect()
    await client.send_to(text_data='{"t": "t.echo", "i": 1, "p": {"text": "raw"}}')
    assert json.loads(await client.receive_from()) == {
        "t": "t.echo",
        "i": "1",
        "s": "s",
        "p": {"text": "raw"},
    }
    await client.disconnect()


# -- property: arbitrary frames --------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
types = (
    st.sampled_from(
        ["t.echo", "t.ping", "t.vote", "t.boom", "t.deny", "t.nothing", "t.wrong_return"]
    )
    | json_values
)
trace_ids = st.none() | st.integers(0, 10**6).map(str) | json_values
envelopes = st.fixed_dictionaries(
    {"t": types},
    optional={
        "i": trace_ids,
        "p": json_values | st.fixed_dictionaries({"text": json_values}),
        "s": json_values,
        "extra": json_values,
    },
).map(lambda d: json.dumps(d))
frames = envelopes | st.text(max_size=40) | st.binary(max_size=40)

TRACE_OK = __import__("re").compile(r"^[A-Za-z0-9._:\-]{1,64}$")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(frames, min_size=1, max_size=8))
async def test_any_frame_gets_exactly_one_well_formed_terminal_reply(batch: list[Any]) -> None:
    client = EnvelopeCommunicator(app())
    await client.connect()
    try:
        for raw in batch:
            await client.send_frame(raw)
        await client.send("t.ping", i="sentinel")
        replies = []
        with anyio.fail_after(5):
            while True:
                message = await client.receive_output(5)
                assert message["type"] == "websocket.send", message
                obj = json.loads(message["text"])
                if obj.get("i") == "sentinel":
                    assert obj["s"] == "s"
                    break
                replies.append(obj)
        terminal = [r for r in replies if r.get("s") in ("s", "f")]
        assert len(terminal) == len(batch)
        for reply in replies:
            assert set(reply) <= {"t", "i", "s", "p"}
            assert isinstance(reply["t"], str) and TRACE_OK.match(reply["i"])
            if reply["s"] == "f":
                assert isinstance(reply["p"]["code"], str) and reply["p"]["message"]
    finally:
        await client.disconnect()


async def test_unknown_type_says_how_a_handler_gets_served_and_nothing_internal() -> None:
    async with ActorHarness([router]) as client:
        reply = await client.request("t.nothing", i="u1")
    assert reply.p == {
        "code": "unknown_type",
        "message": "There is no handler for message type 't.nothing'. Check its name; a "
        "handler is served once its module is imported when the server starts (an "
        "installed app's handlers.py is).",
    }
