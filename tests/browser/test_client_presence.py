"""`client.presence(topic)` in a real browser against the live example server: an
anonymous watcher sees a logged-in member of a room come and go; the member sees itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_client import start_client
from tests.example.server import ExampleServer

pytestmark = pytest.mark.slow

ROOM = "lobby.presence-js"

LOG_IN = """async () => {
    await fetch("/");  // the CSRF cookie
    const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    const body = new URLSearchParams({ username: "demo", password: "demo" });
    const answer = await fetch("/api/login", {
        method: "POST", body, headers: { "X-CSRFToken": csrf.split("=")[1] },
    });
    return (await answer.json()).user;
}"""

TRACK = """(room) => {
    window.changes = [];
    window.tracker = client.presence(room, (users) => {
        window.changes.push(Object.fromEntries(users));
    });
}"""


@pytest.fixture
def member(browser: Any, server: ExampleServer) -> Iterator[Any]:
    """A second browser context, logged in as the example's `demo` user."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{server.http}/api/me")
    assert page.evaluate(LOG_IN) == "demo"
    try:
        yield page
    finally:
        context.close()


def test_presence_shows_a_member_come_and_go(page: Any, member: Any, server: ExampleServer) -> None:
    start_client(page, server)  # anonymous: sees the room, is not in it
    page.evaluate(TRACK, ROOM)
    page.wait_for_function("window.changes.length >= 1")
    assert page.evaluate("window.changes[0]") == {}

    start_client(member, server)
    member.evaluate(TRACK, ROOM)
    member.wait_for_function(
        "window.changes.some((c) => Object.values(c).some((i) => i.name === 'demo'))"
    )
    [(pk, info)] = member.evaluate("Object.entries(Object.fromEntries(tracker.users))")
    assert info == {"name": "demo"}
    page.wait_for_function(
        f'JSON.stringify(window.changes.at(-1)) === \'{{"{pk}":{{"name":"demo"}}}}\''
    )

    member.evaluate("client.close()")
    page.wait_for_function("Object.keys(window.changes.at(-1)).length === 0")
    # The watcher's client went on as usual.
    assert page.evaluate("client.request('ping')") == {"pong": True}
