"""The JavaScript client (actors/static/envelope/client.js) in a real browser, live server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.example.server import ExampleServer, set_up_database
from tests.processes import free_port

pytestmark = pytest.mark.slow

CLIENT = "/static/envelope/client.js"


def start_client(page: Any, server: ExampleServer, **options: Any) -> None:
    """Open a page on the server's origin and `window.client = connect(ws url)`."""
    page.goto(f"{server.http}/api/me")
    page.evaluate(
        """async ([module, url, options]) => {
            window.lib = await import(module);
            window.client = window.lib.connect(url, options);
            window.frames_out = [];
            window.client.onFrame((direction, frame) => {
                if (direction === "out") window.frames_out.push(frame);
            });
            await window.client.opened();
        }""",
        [CLIENT, server.ws, options],
    )


def outcome(page: Any, script: str) -> Any:
    """Run `script` (an expression giving a promise) and report how it settled."""
    return page.evaluate(
        f"""async () => {{
            try {{
                return {{ ok: true, value: await ({script}) }};
            }} catch (e) {{
                return {{ ok: false, name: e.name, code: e.code, message: e.message,
                          payload: e.payload,
                          isEnvelopeError: e instanceof window.lib.EnvelopeError }};
            }}
        }}"""
    )


def test_request_resolves_with_the_success_payload(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    assert outcome(page, "client.request('ping')") == {"ok": True, "value": {"pong": True}}
    assert outcome(page, "client.request('echo', {text: 'hi'})")["value"] == {"text": "hi"}


def test_request_rejects_with_the_error_payload_on_failure(
    page: Any, server: ExampleServer
) -> None:
    start_client(page, server)
    failed = outcome(page, "client.request('math.divide', {a: 1, b: 0})")
    assert failed["ok"] is False and failed["isEnvelopeError"] is True
    assert failed["code"] == "internal"
    assert set(failed["payload"]) == {"code", "message"}
    assert failed["message"] == failed["payload"]["message"]
    invalid = outcome(page, "client.request('echo', {text: 'x'.repeat(1001)})")
    assert invalid["code"] == "invalid_payload"
    assert invalid["payload"]["errors"][0]["loc"] == ["text"]


def test_request_times_out_and_a_late_answer_is_ignored(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    late = outcome(page, "client.request('slow.sleep', {seconds: 0.5}, {timeout: 100})")
    assert (late["ok"], late["code"]) == (False, "timeout")
    # The late `s` arrives meanwhile and changes nothing; the client goes on.
    page.wait_for_timeout(600)
    assert outcome(page, "client.request('ping')")["ok"] is True
    assert page.evaluate("client._pending.size") == 0


def test_on_state_sees_each_reply_and_the_promise_has_the_trace_id(
    page: Any, server: ExampleServer
) -> None:
    start_client(page, server)
    seen = page.evaluate(
        """async () => {
            const states = [];
            const request = client.request("echo", {text: "x"}, {
                onState: (state, payload, frame) => states.push([state, payload, frame.i]),
            });
            await request;
            return {i: request.i, states};
        }"""
    )
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", seen["i"])
    assert seen["states"] == [["s", {"text": "x"}, seen["i"]]]


def test_trace_ids_are_unique_and_in_the_protocols_alphabet(
    page: Any, server: ExampleServer
) -> None:
    start_client(page, server)
    ids = page.evaluate("Array.from({length: 500}, () => lib.newTraceId())")
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", i) for i in ids)


def test_requests_made_before_the_socket_opens_are_sent_when_it_does(
    page: Any, server: ExampleServer
) -> None:
    page.goto(f"{server.http}/api/me")
    result = page.evaluate(
        """async ([module, url]) => {
            const lib = await import(module);
            const client = new lib.EnvelopeClient(url);
            const early = client.request("echo", {text: "early"});
            const status = client.status;
            client.connect();
            const value = await early;
            client.close();
            return {status, value, after: client.status};
        }""",
        [CLIENT, server.ws],
    )
    assert result == {"status": "idle", "value": {"text": "early"}, "after": "idle"}


def test_close_rejects_requests_still_out_as_disconnected(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    result = page.evaluate(
        """async () => {
            const pending = client.request("slow.sleep", {seconds: 2});
            await new Promise((r) => setTimeout(r, 50));
            client.close();
            try { await pending; return "resolved"; } catch (e) { return e.code; }
        }"""
    )
    assert result == "disconnected"
    assert page.evaluate("client.status") == "idle"


def test_pushes_reach_on_handlers_of_their_type(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    push = page.evaluate(
        """async () => {
            const got = new Promise((resolve) => client.on("chat.message", (p, frame) =>
                resolve({p, t: frame.t})));
            await client.subscribe("room.js");
            await client.request("chat.send", {room: "js", text: "from js"});
            return await got;
        }"""
    )
    assert push == {
        "t": "chat.message",
        "p": {"room": "js", "text": "from js", "author": "anonymous"},
    }


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Any]:
    """Start/stop the example server on one fixed port, to drop every connection."""
    from tests.example.server import example_env
    from tests.processes import daphne_server

    port = free_port()
    env = example_env(tmp_path)
    set_up_database(env)

    class Restartable:
        server = ExampleServer("127.0.0.1", port, tmp_path / "db.sqlite3", tmp_path / "trace.log")
        running: Any = None

        def start(self) -> None:
            self.running = daphne_server(
                "example.asgi:application", "example.settings", port=port, **env
            )
            self.running.__enter__()

        def stop(self) -> None:
            if self.running is not None:
                self.running.__exit__(None, None, None)
                self.running = None

    box = Restartable()
    box.start()
    try:
        yield box
    finally:
        box.stop()


def test_reconnects_with_backoff_and_subscribes_again(page: Any, restartable: Any) -> None:
    server = restartable.server
    start_client(page, server, minDelay=100, maxDelay=400)
    assert outcome(page, "client.subscribe('room.again')")["ok"] is True
    page.evaluate(
        """() => {
            window.statuses = [];
            client.onStatus((s) => window.statuses.push(s));
        }"""
    )
    restartable.stop()
    page.wait_for_function("client.status === 'reconnecting' && client.attempts >= 2")
    restartable.start()
    page.wait_for_function("client.status === 'open'", timeout=15_000)
    statuses = page.evaluate("window.statuses")
    assert statuses[0] == "reconnecting" and statuses[-1] == "open"
    assert page.evaluate("client.attempts") == 0
    # After the restart the new server knows nothing of the old subscription: the
    # client subscribed again by itself, so a chat in that room reaches it.
    page.wait_for_function(
        "frames_out.filter((f) => f.t === 'topic.subscribe' && f.p.topic === 'room.again')"
        ".length === 2"
    )
    page.wait_for_function("client._subscribing.size === 0")
    push = page.evaluate(
        """async () => {
            const got = new Promise((resolve) => client.on("chat.message", resolve));
            await client.request("chat.send", {room: "again", text: "back"});
            return await got;
        }"""
    )
    assert push["text"] == "back"


def test_on_state_follows_a_deferred_request_through_queued_running_success(
    page: Any, server: ExampleServer
) -> None:
    page.goto(f"{server.http}/")  # for the CSRF cookie
    logged_in = page.evaluate(
        """async () => {
            const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
            const response = await fetch("/api/login", {
                method: "POST",
                headers: {"X-CSRFToken": csrf},
                body: new URLSearchParams({username: "demo", password: "demo"}),
            });
            return (await response.json()).user;
        }"""
    )
    assert logged_in == "demo"
    start_client(page, server)
    seen = page.evaluate(
        """async () => {
            const states = [];
            const value = await client.request("report.build", {rows: 1500}, {
                timeout: 30000,
                onState: (state, payload) => states.push([state, payload]),
            });
            return {value, states};
        }"""
    )
    states = [state for state, _ in seen["states"]]
    assert states[0] == "q" and states[-1] == "s" and "r" in states
    progress = [p for state, p in seen["states"] if state == "r" and p]
    assert progress[-1] == {"done": 1500, "total": 1500}
    assert seen["value"]["rows"] == 1500


def test_a_refused_subscription_rejects_and_is_not_retried(
    page: Any, server: ExampleServer
) -> None:
    start_client(page, server)
    # `user.<pk>` is only for that user: an anonymous connection is refused.
    refused = outcome(page, "client.subscribe('user.1')")
    assert refused["ok"] is False
    assert refused["code"] in {"forbidden", "unauthenticated"}
    assert page.evaluate("[...client.topics]") == []


def test_leave_stops_the_pushes_of_a_topic(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    got = page.evaluate(
        """async () => {
            const seen = [];
            client.on("chat.message", (p) => seen.push(p.text));
            await client.subscribe("room.leave");
            await client.request("chat.send", {room: "leave", text: "one"});
            await client.leave("room.leave");
            await client.request("chat.send", {room: "leave", text: "two"});
            // A ping after: anything pushed before its answer has arrived by then.
            await client.request("ping");
            return {seen, topics: [...client.topics]};
        }"""
    )
    assert got == {"seen": ["one"], "topics": []}


def test_on_returns_an_unsubscribe(page: Any, server: ExampleServer) -> None:
    start_client(page, server)
    got = page.evaluate(
        """async () => {
            const seen = [];
            const stop = client.on("*", (p, frame) => seen.push(frame.t));
            // The sender's own push leaves after its `s` (it queues behind the request).
            const first = new Promise((resolve) => client.on("chat.message", resolve));
            await client.subscribe("room.stop");
            await client.request("chat.send", {room: "stop", text: "a"});
            await first;
            stop();
            await client.request("chat.send", {room: "stop", text: "b"});
            await client.request("ping");
            return seen;
        }"""
    )
    assert got == ["chat.message"]
