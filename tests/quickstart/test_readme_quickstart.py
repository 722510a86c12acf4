"""The README's quick start, word for word: a fresh project built in a temporary directory
from the README's own blocks, served by the README's command (daphne), and the README's
exchange performed by the README's own client script, logged in through Django's login
view, including the push to a second subscriber."""

from __future__ import annotations

import importlib.util
import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.quickstart.project import QuickstartSite, quickstart_site, reader_env
from tests.quickstart.readme import Block, one, quickstart_blocks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuickstartSite]:
    with quickstart_site(Path(tmp_path_factory.mktemp("quickstart"))) as site:
        yield site


def file_block(blocks: list[Block], target: str) -> Block:
    (block,) = [b for b in blocks if b.target == target]
    return block


def test_the_quick_start_has_what_the_first_hour_needs() -> None:
    blocks = quickstart_blocks()
    settings = one(blocks, "append")
    assert settings.target == "mysite/settings.py" and '"channels"' in settings.body
    asgi = file_block(blocks, "mysite/asgi.py").body
    assert 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")' in asgi
    assert "import chat" not in asgi  # found by the handler-module discovery
    assert 'Topic("room.{name}")' in file_block(blocks, "chat/handlers.py").body
    assert "connect(" in file_block(blocks, "chat/templates/chat/lobby.html").body
    assert "accounts/login/" in file_block(blocks, "client.py").body
    assert "pip install" in one(blocks, "install").body


class Client:
    """One run of the README's client command, its printed lines read as they come."""

    def __init__(self, site: QuickstartSite, command: str) -> None:
        self.proc = subprocess.Popen(
            command,
            shell=True,
            cwd=site.root,
            env=reader_env(CHAT_SITE=site.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 30) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"the client printed no line within {timeout} s:\n{err}")
        return line

    def finish(self, timeout: float = 30) -> list[str]:
        """The lines still to come, once the client has exited by itself (status 0)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        _, err = self.proc.communicate()
        assert self.proc.returncode == 0, f"the client exited with {self.proc.returncode}:\n{err}"
        out = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            out.append(line)
        return out


def test_the_readme_exchange_reaches_a_second_subscriber(quickstart: QuickstartSite) -> None:
    blocks = quickstart.blocks
    subscribed, reply, push = one(blocks, "exchange").commands()

    (listen,) = one(blocks, "listen").commands()
    (speak,) = one(blocks, "speak").commands()
    bob = Client(quickstart, listen)
    assert bob.next_line() == subscribed  # bob is in the room before alice speaks

    alice = Client(quickstart, speak)
    # Exactly the README's lines, in its order: they are the server's own bytes.
    assert alice.finish() == [subscribed, reply, push]
    assert bob.finish() == [push]
    assert json.loads(push)["p"]["author"] == "alice"


def readme_client(site: QuickstartSite) -> ModuleType:
    """The README's client.py as a module (its `log_in`), pointed at the site."""
    spec = importlib.util.spec_from_file_location("quickstart_client", site.root / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.SITE = site.url  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("t", "p"),
    [
        ("chat.send", {"room": "lobby", "text": "hi"}),
        ("topic.subscribe", {"topic": "room.lobby"}),
    ],
)
def test_a_socket_that_is_not_logged_in_is_answered_unauthenticated(
    quickstart: QuickstartSite, t: str, p: dict[str, str]
) -> None:
    with connect(quickstart.ws) as ws:
        ws.send(json.dumps({"t": t, "i": "anon", "p": p}))
        reply = json.loads(ws.recv(timeout=10))
    assert (reply["t"], reply["s"], reply["p"]["code"]) == (t, "f", "unauthenticated")


def test_a_text_over_1000_characters_is_an_invalid_payload(quickstart: QuickstartSite) -> None:
    cookie = readme_client(quickstart).log_in("bob", "bob-secret")
    with connect(quickstart.ws, additional_headers={"Cookie": cookie}) as ws:
        frame = {"t": "chat.send", "i": "long", "p": {"room": "lobby", "text": "x" * 1001}}
        ws.send(json.dumps(frame))
        reply = json.loads(ws.recv(timeout=10))
        assert (reply["s"], reply["p"]["code"]) == ("f", "invalid_payload")
        assert [e["loc"] for e in reply["p"]["errors"]] == [["text"]]
        ws.send(json.dumps({"t": "connection.ping", "i": "still-open"}))
        assert json.loads(ws.recv(timeout=10))["p"] == {"pong": True}


def test_a_page_of_the_site_itself_may_open_the_socket(quickstart: QuickstartSite) -> None:
    """A browser sends `Origin`: the quick start's own page is on an allowed host."""
    cookie = readme_client(quickstart).log_in("bob", "bob-secret")
    headers = {"Cookie": cookie, "Origin": quickstart.url}
    with connect(quickstart.ws, additional_headers=headers) as ws:
        ws.send(json.dumps({"t": "topic.subscribe", "i": "o1", "p": {"topic": "room.lobby"}}))
        assert json.loads(ws.recv(timeout=10))["s"] == "s"


def test_a_page_of_another_site_is_refused_even_with_a_valid_session(
    quickstart: QuickstartSite,
) -> None:
    cookie = readme_client(quickstart).log_in("bob", "bob-secret")
    headers = {"Cookie": cookie, "Origin": "https://evil.example"}
    with pytest.raises(InvalidStatus) as refused:
        connect(quickstart.ws, additional_headers=headers).close()
    assert refused.value.response.status_code == 403
