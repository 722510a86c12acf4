"""example/static/example/schema.js: the payload the console's editor starts with."""

from __future__ import annotations

from typing import Any

import pytest

from tests.example.server import ExampleServer

pytestmark = pytest.mark.slow


def example_for(
    page: Any, server: ExampleServer, schema: dict[str, Any], definitions: Any = None
) -> Any:
    page.goto(f"{server.http}/api/me")
    return page.evaluate(
        """async ([schema, definitions]) => {
            const { examplePayload } = await import("/static/example/schema.js");
            return examplePayload(schema, definitions ?? undefined);
        }""",
        [schema, definitions],
    )


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"title": "Ping", "type": "object", "properties": {}}, None, id="no-fields"),
        pytest.param(
            {"properties": {"n": {"type": "integer", "minimum": 5, "maximum": 9}}},
            {"n": 5},
            id="integer-clamped-to-minimum",
        ),
        pytest.param(
            {"properties": {"x": {"type": "number", "maximum": 0.5}}},
            {"x": 0.5},
            id="number-clamped-to-maximum",
        ),
        pytest.param(
            {"properties": {"s": {"type": "string", "maxLength": 3}}},
            {"s": "hel"},
            id="string-cut-to-max-length",
        ),
        pytest.param(
            {"properties": {"k": {"type": "string", "enum": ["b", "a"]}}},
            {"k": "b"},
            id="enum-first-value",
        ),
        pytest.param(
            {"properties": {"d": {"type": "integer", "default": 42}}},
            {"d": 42},
            id="default-wins",
        ),
        pytest.param(
            {
                "properties": {
                    "inner": {"$ref": "#/definitions/Inner"},
                    "flag": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "definitions": {
                    "Inner": {"type": "object", "properties": {"room": {"type": "string"}}}
                },
            },
            {"inner": {"room": "lobby"}, "flag": False, "tags": []},
            id="nested-model-by-ref",
        ),
    ],
)
def test_example_payload_follows_the_schema(
    page: Any, server: ExampleServer, schema: dict[str, Any], expected: Any
) -> None:
    assert example_for(page, server, schema) == expected


def test_example_payload_from_the_contracts_components(page: Any, server: ExampleServer) -> None:
    # The console passes the AsyncAPI document's components.schemas as the definitions.
    components = {
        "Move": {
            "type": "object",
            "properties": {
                "to": {"$ref": "#/components/schemas/Point"},
                "note": {"title": "Note", "anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        },
        "Point": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 3}}},
    }
    assert example_for(page, server, components["Move"], components) == {
        "to": {"x": 3},
        "note": "hello",
    }
