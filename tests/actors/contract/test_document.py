"""The AsyncAPI 3.0 document: what it says about each message type, push, topic and close
code, and that the official parser (npm @asyncapi/parser) accepts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors.contract import asyncapi_document, contract_markdown
from tests.actors.contract.node import errors_of, needs_node, validate_asyncapi
from tests.actors.contract.sample import sample_contract


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(sample_contract(), server="ws://127.0.0.1:8000")


def messages(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = document["channels"]["envelope"]["messages"]
    return found


def replies(document: dict[str, Any], t: str) -> dict[str, dict[str, Any]]:
    """state -> reply message of type `t`, read through the operation's `reply`."""
    operation = next(
        op
        for op in document["operations"].values()
        if op["action"] == "receive" and op["x-envelope"]["type"] == t
    )
    out = {}
    for ref in operation["reply"]["messages"]:
        message = messages(document)[ref["$ref"].rsplit("/", 1)[1]]
        out[message["x-envelope"]["state"]] = message
    return out


def test_one_receive_operation_per_type_a_client_may_send(document: dict[str, Any]) -> None:
    received = sorted(
        op["x-envelope"]["type"]
        for op in document["operations"].values()
        if op["action"] == "receive"
    )
    assert received == ["ns:odd-name", "vote.cast", "vote.export", "vote.forget"]
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["envelope"]["address"] == "/ws/"
    assert document["servers"] == {"default": {"host": "127.0.0.1:8000", "protocol": "ws"}}


def test_replies_follow_the_handlers_declaration(document: dict[str, Any]) -> None:
    assert sorted(replies(document, "vote.cast")) == ["a", "f", "s"]  # ack=True
    assert sorted(replies(document, "vote.export")) == ["f", "q", "r", "s"]  # deferred
    assert sorted(replies(document, "vote.forget")) == ["f"]  # reply=False


def test_success_reply_carries_the_return_annotations_model(document: dict[str, Any]) -> None:
    success = replies(document, "vote.cast")["s"]["payload"]
    assert success["properties"]["p"] == {"$ref": "#/components/schemas/VoteCounted"}
    assert success["properties"]["s"] == {"const": "s"}
    assert {"t", "i", "s", "p"} <= set(success["required"])


def test_progress_reply_carries_the_declared_progress_model(document: dict[str, Any]) -> None:
    running = replies(document, "vote.export")["r"]
    assert running["payload"]["properties"]["p"] == {"$ref": "#/components/schemas/ExportProgress"}
    # `r` also comes once without a payload, when a worker starts the job.
    assert "p" not in running["payload"]["required"]


def test_failure_reply_lists_the_codes_the_type_can_produce(document: dict[str, Any]) -> None:
    failed = replies(document, "vote.cast")["f"]
    codes = failed["x-envelope"]["codes"]
    # permission -> forbidden, rate -> rate_limited, errors=[...] -> their codes,
    # not public -> unauthenticated; not deferred -> no job_failed.
    assert {"forbidden", "rate_limited", "poll_closed", "not_found", "unauthenticated"} <= set(
        codes
    )
    assert "job_failed" not in codes
    assert failed["payload"]["properties"]["p"]["allOf"][1]["properties"]["code"]["enum"] == codes
    assert "job_failed" in replies(document, "vote.export")["f"]["x-envelope"]["codes"]
    assert "timeout" in replies(document, "ns:odd-name")["f"]["x-envelope"]["codes"]
    assert "unauthenticated" not in replies(document, "vote.forget")["f"]["x-envelope"]["codes"]


def test_pushes_are_send_only_models_and_topic_publications(document: dict[str, Any]) -> None:
    sent = {
        op["x-envelope"]["type"]: op
        for op in document["operations"].values()
        if op["action"] == "send" and "x-envelope" in op
    }
    assert sorted(sent) == ["user.details", "vote.counted"]
    assert sent["vote.counted"]["x-envelope"]["topics"] == ["poll.{pk:int}"]
    assert sent["user.details"]["x-envelope"]["topics"] == []
    topics = document["x-envelope"]["topics"]
    assert {"pattern": "poll.{pk:int}", "pushes": ["vote.counted"], "anyone": True} in topics


def test_builtin_frames_and_close_codes_are_described(document: dict[str, Any]) -> None:
    names = {m["name"] for m in messages(document).values()}
    assert {"error", "batch"} <= names
    codes = {c["code"] for c in document["x-envelope"]["closeCodes"]}
    assert {1000, 1011, 4001, 4008, 4012} <= codes
    assert "4012 restarting" in document["channels"]["envelope"]["description"]


def test_optional_fields_admit_null_as_the_server_sends_them(document: dict[str, Any]) -> None:
    counted = document["components"]["schemas"]["VoteCounted"]["properties"]["where"]
    assert {"type": "null"} in counted["anyOf"]


def test_a_wire_name_with_a_colon_gets_a_valid_key(document: dict[str, Any]) -> None:
    assert "ns_odd-name" in messages(document)
    assert messages(document)["ns_odd-name"]["name"] == "ns:odd-name"


@pytest.mark.slow
@needs_node
def test_the_asyncapi_parser_accepts_the_document_and_catches_a_broken_one(
    document: dict[str, Any], tmp_path: Path
) -> None:
    good = tmp_path / "asyncapi.json"
    good.write_text(json.dumps(document))
    # The parser can say no: a dangling $ref is an error.
    broken = json.loads(json.dumps(document))
    next(iter(broken["operations"].values()))["messages"][0]["$ref"] += "-gone"
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken))
    verdicts = validate_asyncapi(good, bad)
    assert errors_of(verdicts[str(good)]) == []
    assert verdicts[str(good)] == {**verdicts[str(good)], "valid": True, "version": "3.0.0"}
    assert verdicts[str(bad)]["valid"] is False
    assert [d["code"] for d in verdicts[str(bad)]["diagnostics"]] == [
        "asyncapi-latest-version",
        "invalid-ref",
    ]


def test_markdown_page_lists_each_type_with_its_replies(document: dict[str, Any]) -> None:
    page = contract_markdown(document)
    cast = page[page.index("### `vote.cast`") : page.index("### `vote.export`")]
    assert "*ack, permission: authenticated, rate: 5/1s*" in cast
    assert "| `a` ack | none |" in cast
    assert "| `s` success | `VoteCounted` |" in cast
    assert "`poll_closed`" in cast
    assert "| 4012 | `restarting` |" in page
