"""The example project over real sockets: daphne, then uvicorn, in its own process; a
websocket client."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.example.server import ExampleServer, example_server, login_cookie
from tests.processes import SERVERS

pytestmark = pytest.mark.slow

TERMINAL = {"s", "f"}


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleServer]:
    with example_server(tmp_path_factory.mktemp("example"), server=request.param) as running:
        yield running


@pytest.fixture
async def ws(server: ExampleServer) -> AsyncIterator[ClientConnection]:
    async with connect(server.ws) as socket:
        yield socket


async def receive(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def request(
    ws: ClientConnection, t: str, p: Any = None, *, i: str, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Send one envelope; every frame about it (same `i`) until its terminal reply."""
    frame: dict[str, Any] = {"t": t, "i": i}
    if p is not None:
        frame["p"] = p
    await ws.send(json.dumps(frame))
    return await replies_to(ws, i, timeout=timeout)


async def replies_to(ws: ClientConnection, i: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    seen = []
    while True:
        reply = await receive(ws, timeout)
        if reply.get("i") == i and "s" in reply:
            seen.append(reply)
            if reply["s"] in TERMINAL:
                return seen


async def test_ping_answers_pong(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "ping", i="p1")
    assert reply == {"t": "ping", "i": "p1", "s": "s", "p": {"pong": True}}


async def test_echo_returns_the_text(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "echo", {"text": "héllo"}, i="e1")
    assert (reply["s"], reply["p"]) == ("s", {"text": "héllo"})


async def test_echo_of_more_than_1000_chars_is_invalid_payload(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "echo", {"text": "x" * 1001}, i="e2")
    assert reply["s"] == "f"
    assert reply["p"]["code"] == "invalid_payload"
    assert [e["loc"] for e in reply["p"]["errors"]] == [["text"]]
    (ok,) = await request(ws, "echo", {"text": "x" * 1000}, i="e3")
    assert ok["s"] == "s"


async def test_divide_answers_the_quotient(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "math.divide", {"a": 1, "b": 4}, i="d1")
    assert reply["p"] == {"result": 0.25}


async def test_divide_by_zero_is_internal_and_tells_nothing(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"t": "math.divide", "i": "d0", "p": {"a": 1, "b": 0}}))
    raw = await ws.recv()
    reply = json.loads(raw)
    assert (reply["t"], reply["i"], reply["s"]) == ("math.divide", "d0", "f")
    assert reply["p"]["code"] == "internal"
    assert set(reply["p"]) == {"code", "message"}
    for leak in ("ZeroDivision", "division", "Traceback", "example.handlers", "divide("):
        assert leak not in raw
    # The connection lives on.
    (pong,) = await request(ws, "ping", i="d0-after")
    assert pong["s"] == "s"


async def test_slow_sleep_is_concurrent_so_a_ping_overtakes_it(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"t": "slow.sleep", "i": "z1", "p": {"seconds": 1.0}}))
    await ws.send(json.dumps({"t": "slow.sleep", "i": "z2", "p": {"seconds": 0.2}}))
    await ws.send(json.dumps({"t": "ping", "i": "z3"}))
    order = [(await receive(ws))["i"] for _ in range(3)]
    assert order == ["z3", "z2", "z1"]


async def test_slow_sleep_over_five_seconds_is_refused(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "slow.sleep", {"seconds": 5.5}, i="z4")
    assert (reply["s"], reply["p"]["code"]) == ("f", "invalid_payload")


async def test_unknown_type_is_answered_unknown_type(ws: ClientConnection) -> None:
    (reply,) = await request(ws, "nope", i="u1")
    assert (reply["s"], reply["p"]["code"]) == ("f", "unknown_type")


async def test_chat_send_reaches_a_subscriber_of_the_room(server: ExampleServer) -> None:
    async with connect(server.ws) as alice, connect(server.ws) as bob:
        (subscribed,) = await request(bob, "topic.subscribe", {"topic": "room.lobby"}, i="sub")
        assert subscribed["s"] == "s", subscribed
        (sent,) = await request(alice, "chat.send", {"room": "lobby", "text": "hi"}, i="c1")
        assert sent["s"] == "s"
        push = await receive(bob)
        assert push == {
            "t": "chat.message",
            "i": "c1",
            "p": {"room": "lobby", "text": "hi", "author": "anonymous"},
        }


async def test_chat_send_author_is_the_logged_in_user(server: ExampleServer) -> None:
    cookie = login_cookie(server)
    async with connect(server.ws, additional_headers={"Cookie": cookie}) as demo:
        await request(demo, "topic.subscribe", {"topic": "room.own"}, i="sub2")
        await request(demo, "chat.send", {"room": "own", "text": "me"}, i="c2")
        push = await receive(demo)
        assert push["p"] == {"room": "own", "text": "me", "author": "demo"}


async def test_report_build_needs_a_login_and_is_refused_without_a_job(
    ws: ClientConnection,
) -> None:
    # Refused in the connection's actor: no `q`, nothing for a worker to do.
    (refused,) = await request(ws, "report.build", {"rows": 10}, i="r0")
    assert (refused["s"], refused["p"]["code"]) == ("f", "unauthenticated")


async def test_report_build_writes_rows_and_reports_progress(server: ExampleServer) -> None:
    cookie = login_cookie(server)
    async with connect(server.ws, additional_headers={"Cookie": cookie}) as demo:
        frames = await request(demo, "report.build", {"rows": 2500}, i="r1", timeout=30)
    states = [f["s"] for f in frames]
    assert states[0] == "q"
    assert states[-1] == "s"
    progress = [f["p"] for f in frames if f["s"] == "r" and f.get("p")]
    assert progress == [
        {"done": 1000, "total": 2500},
        {"done": 2000, "total": 2500},
        {"done": 2500, "total": 2500},
    ]
    result = frames[-1]["p"]
    assert result["rows"] == 2500
    with sqlite3.connect(server.db) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM example_reportrow WHERE report_id = ?", (result["report_id"],)
        ).fetchone()
        (owner,) = db.execute(
            "SELECT u.username FROM example_report r JOIN auth_user u ON u.id = r.owner_id "
            "WHERE r.id = ?",
            (result["report_id"],),
        ).fetchone()
    assert (count, owner) == (2500, "demo")


async def test_a_burst_of_deferred_requests_is_bounded_per_connection(
    server: ExampleServer,
) -> None:
    # ENVELOPE_MAX_DEFERRED (16) in flight per connection; the rest is refused at once.
    burst = 24
    cookie = login_cookie(server)
    async with connect(server.ws, additional_headers={"Cookie": cookie}) as demo:
        for n in range(burst):
            await demo.send(json.dumps({"t": "report.build", "i": f"b{n}", "p": {"rows": 3000}}))
        terminal: dict[str, dict[str, Any]] = {}
        while len(terminal) < burst:
            frame = await receive(demo, timeout=60)
            if frame.get("s") in TERMINAL:
                terminal[frame["i"]] = frame
    refused = [f for f in terminal.values() if f["s"] == "f"]
    assert {f["p"]["code"] for f in refused} == {"too_many_jobs"}
    assert all(f["p"]["limit"] == 16 for f in refused)
    assert burst - len(refused) >= 16  # at least the first 16 ran
    assert len(refused) >= 1


def test_message_types_view_lists_the_consumers_routes(server: ExampleServer) -> None:
    with urllib.request.urlopen(f"{server.http}/api/messages") as response:
        listing = json.loads(response.read())["messages"]
    by_name = {m["name"]: m for m in listing}
    assert {"ping", "echo", "chat.send", "report.build", "math.divide", "slow.sleep"} <= set(
        by_name
    )
    assert by_name["echo"]["schema"]["properties"]["text"]["maxLength"] == 1000
    assert by_name["report.build"]["deferred"] is True
    assert by_name["report.build"]["permission"] == "authenticated"
    assert by_name["slow.sleep"]["concurrent"] is True


def test_console_page_is_served_with_its_static_files(server: ExampleServer) -> None:
    with urllib.request.urlopen(f"{server.http}/") as response:
        page = response.read().decode()
    assert "Envelope Router console" in page
    for path in ("/static/envelope/client.js", "/static/example/console.js"):
        assert path in page
        with urllib.request.urlopen(f"{server.http}{path}") as response:
            assert response.status == 200
            assert "javascript" in response.headers["Content-Type"]


async def test_a_browser_from_another_site_is_refused(server: ExampleServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    async with connect(server.ws, origin=server.http) as ws:  # type: ignore[arg-type]
        (reply,) = await request(ws, "ping", i="o1")
        assert reply["s"] == "s"


async def test_the_internal_error_is_in_the_trace_log_under_its_i(
    server: ExampleServer, ws: ClientConnection
) -> None:
    (reply,) = await request(ws, "math.divide", {"a": 2, "b": 0}, i="traced-0")
    assert reply["p"]["code"] == "internal"
    # What the console prints for this request: `envelope trace <i> <log>`.
    envelope = str(Path(sys.executable).with_name("envelope"))  # the console script
    for _ in range(50):
        done = await asyncio.to_thread(
            subprocess.run,
            [envelope, "trace", "traced-0", str(server.trace_log)],
            capture_output=True,
            text=True,
            check=True,
        )
        shown = done.stdout
        if "ZeroDivisionError" in shown:
            break
        await asyncio.sleep(0.1)  # the server writes its log lines as they come
    assert "envelope.internal_error" in shown
    assert "ZeroDivisionError" in shown


def test_login_with_wrong_credentials_is_a_clear_400(server: ExampleServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        login_cookie(server, password="wrong")
    assert refused.value.code == 400
    assert json.loads(refused.value.read()) == {
        "code": "bad_credentials",
        "message": "Wrong user name or password.",
    }
    refused.value.close()


def test_login_without_the_csrf_token_is_refused(server: ExampleServer) -> None:
    request = urllib.request.Request(
        f"{server.http}/api/login", data=b"username=demo&password=demo"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    refused.value.close()
