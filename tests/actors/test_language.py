from __future__ import annotations

import pytest
from django.test import override_settings

from actors._language import language_from_scope

LANGUAGES = [("en", "English"), ("sv", "Swedish"), ("de", "German")]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], "en", id="LANGUAGE_CODE by default"),
        pytest.param([(b"accept-language", b"sv-SE,sv;q=0.9,en;q=0.5")], "sv", id="header"),
        pytest.param([(b"accept-language", b"fi,de;q=0.8")], "de", id="first supported"),
        pytest.param([(b"accept-language", b"fi")], "en", id="none supported"),
        pytest.param(
            [(b"cookie", b"django_language=de"), (b"accept-language", b"sv")],
            "de",
            id="cookie first",
        ),
        pytest.param(
            [(b"cookie", b"django_language=xx"), (b"accept-language", b"sv")],
            "sv",
            id="unsupported cookie",
        ),
        pytest.param([(b"cookie", b"\x00;;=garbage")], "en", id="malformed cookie"),
    ],
)
def test_language_is_chosen_like_locale_middleware(
    headers: list[tuple[bytes, bytes]], expected: str
) -> None:
    with override_settings(LANGUAGES=LANGUAGES, LANGUAGE_CODE="en"):
        assert language_from_scope({"headers": headers}) == expected


async def test_handlers_run_in_the_connections_language() -> None:
    from actors import EnvelopeConsumer
    from actors.testing import EnvelopeCommunicator
    from tests.actors.sample import router

    with override_settings(LANGUAGES=LANGUAGES, LANGUAGE_CODE="en"):
        app = EnvelopeConsumer.as_asgi(routers=[router])
        swedish = EnvelopeCommunicator(app, headers=[(b"accept-language", b"sv")])
        english = EnvelopeCommunicator(app)
        await swedish.connect()
        await english.connect()
        assert (await swedish.request("t.lang")).p == {"language": "sv"}
        assert (await english.request("t.lang")).p == {"language": "en"}
        assert (await swedish.request("t.lang")).p == {"language": "sv"}
        await swedish.disconnect()
        await english.disconnect()
