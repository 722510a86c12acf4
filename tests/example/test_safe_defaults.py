"""Safe by default, over real sockets: daphne serving the example with Redis (so that a
change made by another process reaches the socket), a websocket client, real sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.example.server import ExampleServer, example_env, example_server, login_cookie
from tests.example.test_example_e2e import receive, request
from tests.processes import run_python

pytestmark = pytest.mark.slow

EVIL = Origin("https://evil.example")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safe")


@pytest.fixture(scope="module")
def server(tmp: Path, redis_url: str) -> Iterator[ExampleServer]:
    with example_server(tmp, REDIS_URL=redis_url) as running:
        yield running


def in_another_process(tmp: Path, redis_url: str, code: str) -> None:
    """Run `code` with the example's settings and database, as a view or a shell would."""
    setup = "import django; django.setup(); from django.contrib.auth.models import User; "
    run_python("example.settings", example_env(tmp, REDIS_URL=redis_url), "-c", setup + code)


def user_named(tmp: Path, redis_url: str, name: str) -> None:
    in_another_process(tmp, redis_url, f"User.objects.create_user({name!r}, password='pw')")


def open_as(server: ExampleServer, cookie: str, origin: Origin | None = None) -> Any:
    return connect(
        server.ws,
        origin=origin if origin is not None else Origin(server.http),
        additional_headers={"Cookie": cookie},
    )


async def author_of_a_chat_message(ws: ClientConnection, room: str) -> str:
    """Who the server thinks the socket's user is: the author of what it says in a room."""
    await request(ws, "topic.subscribe", {"topic": f"room.{room}"}, i=f"sub-{room}")
    await request(ws, "chat.send", {"room": room, "text": "hi"}, i=f"say-{room}")
    push = await receive(ws)
    assert push["t"] == "chat.message"
    author: str = push["p"]["author"]
    return author


async def test_an_evil_origin_with_a_valid_session_is_refused(server: ExampleServer) -> None:
    cookie = login_cookie(server)
    with pytest.raises(InvalidStatus) as refused:
        async with open_as(server, cookie, EVIL):
            pass
    assert refused.value.response.status_code == 403
    async with open_as(server, cookie) as own_page:
        assert await author_of_a_chat_message(own_page, "own-origin") == "demo"
    # A script sends no Origin: it is let in (it has no browser's cookies to abuse).
    async with connect(server.ws, additional_headers={"Cookie": cookie}) as script:
        assert await author_of_a_chat_message(script, "no-origin") == "demo"


async def closed_for(ws: ClientConnection) -> tuple[dict[str, Any], int | None]:
    closing = json.loads(await ws.recv())
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    return closing, closed.value.rcvd.code if closed.value.rcvd is not None else None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param("u.set_password('changed'); u.save()", "session_invalid", id="password"),
        pytest.param("u.is_active = False; u.save()", "user_inactive", id="deactivated"),
    ],
)
async def test_a_change_to_the_user_in_another_process_closes_their_socket_with_4002(
    server: ExampleServer, tmp: Path, redis_url: str, change: str, reason: str
) -> None:
    name = f"user-{reason}"
    user_named(tmp, redis_url, name)
    async with open_as(server, login_cookie(server, name, "pw")) as ws:
        assert await author_of_a_chat_message(ws, name) == name
        in_another_process(tmp, redis_url, f"u = User.objects.get(username={name!r}); {change}")
        closing, code = await closed_for(ws)
    assert closing == {"t": "connection.closing", "p": {"code": 4002, "reason": reason}}
    assert code == 4002
