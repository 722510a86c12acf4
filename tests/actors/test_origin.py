"""The Origin check: browsers' sockets only from the site's own origins."""

from __future__ import annotations

import asyncio

import pytest
from channels.auth import AuthMiddlewareStack
from django.test import override_settings

from actors import EnvelopeConsumer
from actors.testing import EnvelopeCommunicator
from tests.actors.sample import router


def connect_with(origin: bytes | None, **options: object) -> EnvelopeCommunicator:
    headers = [(b"origin", origin)] if origin is not None else []
    return EnvelopeCommunicator(
        EnvelopeConsumer.as_asgi(routers=[router], **options), headers=headers
    )


@pytest.mark.parametrize(
    ("allowed_hosts", "allowed_origins", "origin", "accepted"),
    [
        pytest.param(["example.com"], (), None, True, id="no Origin (not a browser): in"),
        pytest.param(["example.com"], (), b"https://example.com", True, id="own host: in"),
        pytest.param(["example.com"], (), b"http://example.com:8000", True, id="any port: in"),
        pytest.param(["example.com"], (), b"https://evil.example", False, id="other site: out"),
        pytest.param(["example.com"], (), b"https://www.example.com", False, id="subdomain: out"),
        pytest.param([".example.com"], (), b"https://www.example.com", True, id=".domain: in"),
        pytest.param(["example.com"], (), b"null", False, id="null (sandboxed page): out"),
        pytest.param(["example.com"], (), b"http://[", False, id="not a URL: out"),
        pytest.param(
            ["example.com"],
            ("https://app.other.org",),
            b"https://app.other.org",
            True,
            id="allowed origin: in",
        ),
        pytest.param(
            ["example.com"],
            ("https://app.other.org",),
            b"http://app.other.org",
            False,
            id="allowed origin, other scheme: out",
        ),
        pytest.param(["example.com"], ("*",), b"https://evil.example", True, id="'*': in"),
    ],
)
async def test_the_origin_is_checked_against_allowed_hosts_and_allowed_origins(
    allowed_hosts: list[str], allowed_origins: tuple[str, ...], origin: bytes | None, accepted: bool
) -> None:
    with override_settings(ALLOWED_HOSTS=allowed_hosts, ENVELOPE_ALLOWED_ORIGINS=allowed_origins):
        client = connect_with(origin)
    connected, code = await client.connect()
    assert connected is accepted
    if accepted:
        assert (await client.request("t.echo", {"text": "hi"})).p == {"text": "hi"}
        await client.disconnect()
    else:
        assert code == 1000  # closed before the handshake was accepted: rejected


async def test_debug_with_no_allowed_hosts_allows_what_django_allows() -> None:
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):
        local, remote = connect_with(b"http://localhost:3000"), connect_with(b"http://evil.example")
    assert (await local.connect())[0]
    assert not (await remote.connect())[0]
    await local.disconnect()


async def test_the_check_can_be_turned_off_per_consumer_or_by_setting() -> None:
    with override_settings(ALLOWED_HOSTS=["example.com"]):
        per_consumer = connect_with(b"https://evil.example", check_origin=False)
    with override_settings(ALLOWED_HOSTS=["example.com"], ENVELOPE_CHECK_ORIGIN=False):
        by_setting = connect_with(b"https://evil.example")
    for client in (per_consumer, by_setting):
        assert (await client.connect())[0]
        await client.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_evil_origin_is_refused_under_the_auth_middleware_too() -> None:
    with override_settings(ALLOWED_HOSTS=["example.com"]):
        app = AuthMiddlewareStack(EnvelopeConsumer.as_asgi(routers=[router]))
    client = EnvelopeCommunicator(app, headers=[(b"origin", b"https://evil.example")])
    assert (await client.connect()) == (False, 1000)


async def test_a_refused_handshake_ends_the_application_without_a_disconnect() -> None:
    # uvicorn sends no `websocket.disconnect` after a rejected handshake; an application
    # still waiting for one kept uvicorn from stopping on SIGTERM (killed 10 s later).
    with override_settings(ALLOWED_HOSTS=["example.com"]):
        client = connect_with(b"https://evil.example")
    assert (await client.connect()) == (False, 1000)
    # The application returns by itself: no `websocket.disconnect` is sent to it.
    await asyncio.wait_for(client.future, timeout=2)
