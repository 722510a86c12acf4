"""The README quick start's page in a real browser: two users log in through Django's login
form and chat through the JavaScript client (the project is built from the README's blocks,
see tests/quickstart/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.quickstart.project import QuickstartSite, quickstart_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuickstartSite]:
    with quickstart_site(Path(tmp_path_factory.mktemp("quickstart-page"))) as site:
        yield site


def logged_in_lobby(browser: Any, site: QuickstartSite, user: str, errors: list[str]) -> Any:
    """A fresh browser context logged in as `user` (password `<user>-secret`, as in the
    README) through Django's login form, on the lobby page, once it has joined the room."""
    page = browser.new_context().new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda exc: errors.append(f"{user}: {exc}"))
    page.goto(f"{site.url}/")  # login_required sends the browser to the login form
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-secret")
    page.click("button")
    page.wait_for_url(f"{site.url}/")
    assert f"You are {user}." in page.inner_text("body")
    page.wait_for_selector("form#send button:enabled")  # subscribed to room.lobby
    return page


def test_what_alice_sends_appears_on_bobs_page(browser: Any, quickstart: QuickstartSite) -> None:
    errors: list[str] = []
    bob = logged_in_lobby(browser, quickstart, "bob", errors)
    alice = logged_in_lobby(browser, quickstart, "alice", errors)
    alice.fill("input[name=text]", "hello from the browser")
    alice.click("form#send button")
    for page in (bob, alice):
        page.wait_for_selector("#messages li")
        assert page.inner_text("#messages li") == "alice: hello from the browser"
    assert alice.input_value("input[name=text]") == ""  # the request was answered `s`
    for page in (alice, bob):
        page.context.close()
    assert errors == []
