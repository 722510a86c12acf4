"""`actors.contract.views.schema_view`: the contract over HTTP, off unless asked for."""

from __future__ import annotations

import json

import pytest
from django.http import Http404, HttpResponse
from django.test import RequestFactory, override_settings

from actors.contract.views import schema_view

APP = "tests.actors.asgi_sample.application"


def get(query: str = "?path=/ws/") -> HttpResponse:
    return schema_view(RequestFactory().get(f"/api/schema{query}"))


@override_settings(DEBUG=False, ASGI_APPLICATION=APP)
def test_off_when_debug_is_off_and_the_setting_is_unset() -> None:
    with pytest.raises(Http404):
        get()


@override_settings(DEBUG=True, ASGI_APPLICATION=APP)
def test_on_by_default_when_debug_is_on() -> None:
    response = get()
    assert response.status_code == 200
    assert json.loads(response.content)["asyncapi"] == "3.0.0"


@override_settings(DEBUG=True, ENVELOPE_SCHEMA_VIEW=False, ASGI_APPLICATION=APP)
def test_the_setting_turns_it_off_even_in_debug() -> None:
    with pytest.raises(Http404):
        get()


@override_settings(
    DEBUG=False,
    ENVELOPE_SCHEMA_VIEW=True,
    ASGI_APPLICATION=APP,
    ENVELOPE_SCHEMA_TITLE="Votes",
    ENVELOPE_SCHEMA_VERSION="3.1.4",
)
@pytest.mark.parametrize(
    ("query", "content_type", "starts"),
    [
        pytest.param("?path=/ws/", "application/json", '{"asyncapi": "3.0.0"', id="asyncapi"),
        pytest.param(
            "?path=/ws/&format=jsonschema", "application/json", '{"$schema"', id="jsonschema"
        ),
        pytest.param(
            "?path=/ws/&format=ts",
            "text/plain; charset=utf-8",
            "// The contract of Votes 3.1.4",
            id="ts",
        ),
    ],
)
def test_formats(query: str, content_type: str, starts: str) -> None:
    response = get(query)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response.content.decode().startswith(starts)


@override_settings(ENVELOPE_SCHEMA_VIEW=True, ASGI_APPLICATION=APP)
def test_unknown_format_and_unknown_path_are_answered_clearly() -> None:
    bad = get("?path=/ws/&format=yaml")
    assert bad.status_code == 400
    assert json.loads(bad.content)["code"] == "bad_format"
    missing = get("?path=/nope/")
    assert missing.status_code == 404
    assert "serves no EnvelopeConsumer at /nope/" in json.loads(missing.content)["message"]


@override_settings(ENVELOPE_SCHEMA_VIEW=True, ASGI_APPLICATION=APP)
def test_several_consumers_need_a_path() -> None:
    response = get("")
    assert response.status_code == 404
    message = json.loads(response.content)["message"]
    assert "/ws/, /ws/short-drain/" in message and "?path=" in message
