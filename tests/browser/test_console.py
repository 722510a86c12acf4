"""The console page in a real browser, against a live daphne running the example."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.example.server import ExampleServer
from tests.processes import ROOT

pytestmark = pytest.mark.slow


def open_console(page: Any, server: ExampleServer) -> None:
    page.goto(f"{server.http}/")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#status[data-status='open']")


def send(page: Any, t: str, payload: Any = None) -> Any:
    """Choose `t`, optionally replace the editor's payload, click Send; the new entry."""
    before = page.locator(".request").count()
    page.select_option("#type", t)
    if payload is not None:
        page.fill("#payload", json.dumps(payload))
    page.click("#send")
    page.wait_for_function(f"document.querySelectorAll('.request').length > {before}")
    i = page.locator(".request").first.get_attribute("data-i")
    return page.locator(f".request[data-i='{i}']")


def states_of(entry: Any) -> list[str]:
    return [li.get_attribute("data-state") for li in entry.locator(".states li").all()]


def test_ping_shows_sent_then_success_with_its_trace_command(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    entry = send(page, "ping")
    page.wait_for_selector(".request[data-t='ping'][data-state='s']")
    i = entry.get_attribute("data-i")
    assert i and entry.locator(".i").inner_text() == i
    assert states_of(entry) == ["sent", "s"]
    assert json.loads(entry.locator(".payload").inner_text()) == {"pong": True}
    log = os.path.relpath(server.trace_log, ROOT)
    assert entry.locator(".trace-command").inner_text() == f"envelope trace {i} {log}"
    # Each state shows the time since the request left.
    assert entry.locator(".states li[data-state='s']").inner_text().startswith("s +")


def test_failing_divide_shows_internal_and_nothing_of_the_exception(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    entry = send(page, "math.divide", {"a": 1, "b": 0})
    page.wait_for_selector(".request[data-t='math.divide'][data-state='f']")
    shown = json.loads(entry.locator(".payload").inner_text())
    assert shown["code"] == "internal"
    assert set(shown) == {"code", "message"}
    assert "ZeroDivision" not in entry.inner_text()
    assert "division" not in entry.inner_text()
    assert states_of(entry) == ["sent", "f"]


def test_invalid_payload_shows_the_field_errors(page: Any, server: ExampleServer) -> None:
    open_console(page, server)
    entry = send(page, "echo", {"text": "x" * 1001})
    page.wait_for_selector(".request[data-t='echo'][data-state='f']")
    shown = json.loads(entry.locator(".payload").inner_text())
    assert shown["code"] == "invalid_payload"
    assert shown["errors"][0]["loc"] == ["text"]


def test_type_list_and_payload_editor_come_from_the_schemas(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    options = page.eval_on_selector_all("#type option", "els => els.map(e => e.value)")
    for name in ("ping", "echo", "chat.send", "report.build", "math.divide", "slow.sleep"):
        assert name in options
    expected = {
        "ping": None,
        "echo": {"text": "hello"},
        "chat.send": {"room": "lobby", "text": "hello"},
        "math.divide": {"a": 1, "b": 1},
        "slow.sleep": {"seconds": 1},
        "report.build": {"rows": 100},
    }
    for name, payload in expected.items():
        page.select_option("#type", name)
        text = page.input_value("#payload")
        assert (json.loads(text) if text else None) == payload, name
    page.select_option("#type", "report.build")
    info = page.inner_text("#type-info")
    # From the contract's operation: its reply states and the codes its `f` can carry.
    assert "deferred: q → r → s → f" in info
    assert "authenticated" in info
    assert "job_failed" in info and "forbidden" in info


def test_bad_json_in_the_editor_is_reported_and_nothing_is_sent(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    page.select_option("#type", "echo")
    page.fill("#payload", "{not json")
    page.click("#send")
    assert page.locator("#payload-error").is_visible()
    assert "not JSON" in page.inner_text("#payload-error")
    assert page.locator(".request").count() == 0


def test_disconnect_and_connect_buttons(page: Any, server: ExampleServer) -> None:
    open_console(page, server)
    page.click("#disconnect")
    page.wait_for_selector("#status[data-status='idle']")
    page.click("#connect")
    page.wait_for_selector("#status[data-status='open']")
    send(page, "ping")
    page.wait_for_selector(".request[data-t='ping'][data-state='s']")


def test_concurrent_sleep_stays_running_while_a_ping_completes(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    sleeping = send(page, "slow.sleep", {"seconds": 2})
    send(page, "ping")
    page.wait_for_selector(".request[data-t='ping'][data-state='s']")
    assert sleeping.get_attribute("data-state") == "sent"
    page.wait_for_selector(".request[data-t='slow.sleep'][data-state='s']")


def test_subscribed_topic_and_pushes_are_shown(page: Any, server: ExampleServer) -> None:
    open_console(page, server)
    page.fill("#topic", "room.lobby")
    page.click("#subscribe")
    page.wait_for_selector("#topic-list li[data-topic='room.lobby'][data-state='subscribed']")
    entry = send(page, "chat.send", {"room": "lobby", "text": "hello there"})
    page.wait_for_selector("#pushes li[data-t='chat.message']")
    push = page.locator("#pushes li").first.inner_text()
    assert "hello there" in push and "anonymous" in push
    page.wait_for_selector(".request[data-t='chat.send'][data-state='s']")
    # The push carries the i of the chat.send that caused it: shown in its entry too.
    assert "push" in states_of(entry)


def test_login_then_report_build_shows_queued_running_success(
    page: Any, server: ExampleServer
) -> None:
    open_console(page, server)
    entry = send(page, "report.build", {"rows": 10})
    page.wait_for_selector(".request[data-t='report.build'][data-state='f']")
    assert json.loads(entry.locator(".payload").inner_text())["code"] in {
        "forbidden",
        "unauthenticated",
    }
    page.click("#login")
    page.wait_for_function("document.body.dataset.user === 'demo'")
    page.wait_for_selector("#status[data-status='open']")
    assert page.inner_text("#user") == "user: demo"
    entry = send(page, "report.build", {"rows": 1500})
    page.wait_for_selector(".request[data-t='report.build'][data-state='s']")
    states = states_of(entry)
    assert states[0] == "sent" and states[1] == "q" and states[-1] == "s"
    assert states.count("r") >= 2  # started, and progress per batch
    assert json.loads(entry.locator(".payload").inner_text())["rows"] == 1500
    page.click("#logout")
    page.wait_for_function("document.body.dataset.user === ''")
    page.wait_for_selector("#status[data-status='open']")
    assert page.inner_text("#user") == "anonymous"
    entry = send(page, "report.build", {"rows": 10})
    page.wait_for_function("el => el.dataset.state === 'f'", arg=entry.element_handle())
