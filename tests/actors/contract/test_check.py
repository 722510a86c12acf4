"""`envelope schema --check OLD.json`: each kind of breaking change is found and named;
additive changes pass."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.contract import asyncapi_document, compare
from tests.actors.contract.sample import sample_contract
from tests.processes import python_env

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def old() -> Doc:
    return asyncapi_document(sample_contract())


def schema(doc: Doc, name: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"][name]
    return found


def message(doc: Doc, key: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["channels"]["envelope"]["messages"][key]
    return found


def drop_message(key: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        del doc["channels"]["envelope"]["messages"][key]

    return change


def require_new_field(doc: Doc) -> None:
    votes = schema(doc, "ExportVotes")
    votes["properties"]["reason"] = {"type": "string"}
    votes["required"].append("reason")


def require_optional_field(doc: Doc) -> None:
    schema(doc, "CastVote")["required"].append("comment")


def set_field(model: str, field: str, **values: Any) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        schema(doc, model)["properties"][field].update(values)

    return change


def drop_field(model: str, field: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        del schema(doc, model)["properties"][field]
        required = schema(doc, model).get("required", [])
        if field in required:
            required.remove(field)

    return change


def add_enum_value(doc: Doc) -> None:
    schema(doc, "Colour")["enum"].append("green")


def drop_reply_payload(doc: Doc) -> None:
    payload = message(doc, "vote.cast--success")["payload"]
    del payload["properties"]["p"]
    payload["required"].remove("p")
    message(doc, "vote.cast--success")["x-envelope"].pop("model")


def set_codes(key: str, codes: Callable[[list[str]], list[str]]) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        ext = message(doc, key)["x-envelope"]
        ext["codes"] = codes(ext["codes"])

    return change


def set_topic(pattern: str, pushes: list[str] | None) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        topics = doc["x-envelope"]["topics"]
        topics[:] = [t for t in topics if t["pattern"] != pattern]
        if pushes is not None:
            topics.append({"pattern": pattern, "pushes": pushes, "anyone": False})

    return change


def add_request_type(doc: Doc) -> None:
    messages = doc["channels"]["envelope"]["messages"]
    request = copy.deepcopy(messages["vote.forget"])
    request["x-envelope"]["type"] = request["name"] = "vote.undo"
    messages["vote.undo"] = request


def add_push(doc: Doc) -> None:
    messages = doc["channels"]["envelope"]["messages"]
    push = copy.deepcopy(messages["user.details--push"])
    push["x-envelope"]["type"] = push["name"] = "user.renamed"
    messages["user.renamed--push"] = push


def add_optional_field(doc: Doc) -> None:
    schema(doc, "CastVote")["properties"]["weight"] = {"type": "integer"}


def add_reply_field(doc: Doc) -> None:
    schema(doc, "VoteCounted")["properties"]["voters"] = {"type": "integer"}
    schema(doc, "VoteCounted")["required"].append("voters")


BREAKING = [
    pytest.param(drop_message("vote.forget"), "removed_type", "vote.forget", id="removed-type"),
    pytest.param(
        drop_message("user.details--push"), "removed_push", "push user.details", id="removed-push"
    ),
    pytest.param(
        set_topic("poll.{pk:int}", []),
        "removed_topic_push",
        "topic poll.{pk:int}",
        id="topic-no-longer-publishes-a-push",
    ),
    pytest.param(
        set_topic("room.{name}.live", None),
        "removed_topic",
        "topic room.{name}.live",
        id="removed-topic",
    ),
    pytest.param(
        require_new_field, "new_required_field", "vote.export p.reason", id="new-required-field"
    ),
    pytest.param(
        require_optional_field,
        "new_required_field",
        "vote.cast p.comment",
        id="optional-field-now-required",
    ),
    pytest.param(
        set_field("CastVote", "choice", type="integer"),
        "narrowed_field",
        "vote.cast p.choice",
        id="request-field-changed-type",
    ),
    pytest.param(
        set_field("CastVote", "choice", maxLength=10),
        "narrowed_field",
        "vote.cast p.choice",
        id="request-field-max-length-lowered",
    ),
    pytest.param(
        set_field("CastVote", "poll", minimum=5),
        "narrowed_field",
        "vote.cast p.poll",
        id="request-field-minimum-raised",
    ),
    pytest.param(
        set_field("CastVote", "choice", pattern="^[a-z]+$"),
        "narrowed_field",
        "vote.cast p.choice",
        id="request-field-pattern-added",
    ),
    pytest.param(
        set_field("VoteCounted", "total", type="string"),
        "changed_field_type",
        "vote.cast reply.total",
        id="reply-field-changed-type",
    ),
    pytest.param(
        add_enum_value,
        "changed_field_type",
        "vote.cast reply.colour",
        id="reply-enum-gained-a-value",
    ),
    pytest.param(
        drop_field("VoteCounted", "total"),
        "removed_reply_field",
        "vote.cast reply.total",
        id="removed-reply-field",
    ),
    pytest.param(
        drop_reply_payload,
        "removed_reply_field",
        "vote.cast reply.poll",
        id="reply-lost-its-payload",
    ),
    pytest.param(
        drop_field("ExportProgress", "done"),
        "removed_reply_field",
        "vote.export progress.done",
        id="removed-progress-field",
    ),
    pytest.param(
        drop_field("VoteCountedPush", "total"),
        "removed_reply_field",
        "push vote.counted p.total",
        id="removed-push-field",
    ),
    pytest.param(
        set_codes("vote.cast--failed", lambda codes: [c for c in codes if c != "poll_closed"]),
        "removed_error_code",
        "vote.cast",
        id="removed-error-code",
    ),
]


@pytest.mark.parametrize(("change", "kind", "where"), BREAKING)
def test_breaking_change_is_found_and_named(
    old: Doc, change: Callable[[Doc], None], kind: str, where: str
) -> None:
    new = copy.deepcopy(old)
    change(new)
    breaking = [(c.kind, c.where) for c in compare(old, new) if c.breaking]
    assert (kind, where) in breaking


ADDITIVE = [
    pytest.param(add_request_type, "added_type", id="new-message-type"),
    pytest.param(add_push, "added_push", id="new-push"),
    pytest.param(set_topic("vote.{pk}", ["vote.counted"]), "added_topic", id="new-topic"),
    pytest.param(add_optional_field, "added_field", id="new-optional-field"),
    pytest.param(add_reply_field, "added_field", id="new-reply-field"),
    pytest.param(
        set_codes("vote.cast--failed", lambda codes: [*codes, "poll_paused"]),
        "added_error_code",
        id="new-error-code",
    ),
    pytest.param(set_field("CastVote", "choice", maxLength=40), None, id="max-length-raised"),
    pytest.param(set_field("CastVote", "poll", type="number"), None, id="integer-to-number"),
    pytest.param(drop_field("CastVote", "comment"), None, id="optional-request-field-dropped"),
]


@pytest.mark.parametrize(("change", "kind"), ADDITIVE)
def test_additive_change_breaks_nothing(
    old: Doc, change: Callable[[Doc], None], kind: str | None
) -> None:
    new = copy.deepcopy(old)
    change(new)
    changes = compare(old, new)
    assert [str(c) for c in changes if c.breaking] == []
    if kind is not None:
        assert kind in {c.kind for c in changes}


def test_an_unchanged_contract_has_no_changes(old: Doc) -> None:
    assert compare(old, asyncapi_document(sample_contract())) == []


def check(tmp_path: Path, old: Doc, new: Doc) -> subprocess.CompletedProcess[str]:
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "actors.cli",
            "schema",
            "--check",
            "old.json",
            "--against",
            "new.json",
        ],
        cwd=tmp_path,
        env=python_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_check_exits_1_and_lists_every_breaking_change(old: Doc, tmp_path: Path) -> None:
    new = copy.deepcopy(old)
    drop_message("vote.forget")(new)
    require_new_field(new)
    add_push(new)
    result = check(tmp_path, old, new)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert any("removed_type" in line and "vote.forget" in line for line in lines)
    assert any("new_required_field" in line and "vote.export p.reason" in line for line in lines)
    assert any(line.startswith("additive") and "user.renamed" in line for line in lines)
    assert "2 breaking changes since old.json" in result.stderr


def test_check_exits_0_on_additive_changes(old: Doc, tmp_path: Path) -> None:
    new = copy.deepcopy(old)
    add_optional_field(new)
    result = check(tmp_path, old, new)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no breaking change" in result.stderr


def test_check_refuses_a_document_it_did_not_write(tmp_path: Path) -> None:
    result = check(tmp_path, {"asyncapi": "3.0.0"}, {"asyncapi": "3.0.0"})
    assert result.returncode == 2
    assert "not an AsyncAPI document written by `envelope schema`" in result.stderr
