"""`envelope schema` on the example project, and its generated client driven by Node
against the example served by daphne: success, a validation failure, a deferred request
with progress, a topic push."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.actors.contract.node import errors_of, needs_node, run_node, tsc, validate_asyncapi
from tests.example.server import ExampleServer, example_server, login_cookie
from tests.processes import ROOT, python_env

DRIVER = Path(__file__).parent / "js" / "driver.ts"


def envelope_schema(*args: str, settings: str | None = "example.settings", cwd: Path = ROOT):
    env = python_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    return subprocess.run(
        [sys.executable, "-m", "actors.cli", "schema", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contract")
    result = envelope_schema("--out", str(out), "--api-version", "2.0.0")
    assert result.returncode == 0, result.stderr
    return out


def test_out_writes_the_document_schemas_and_the_typed_client(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == [
        "asyncapi.json",
        "client.d.ts",
        "client.js",
        "contract.ts",
        "schemas.json",
    ]
    document = json.loads((generated / "asyncapi.json").read_text())
    assert document["info"] == {
        "title": "Envelope Router example",  # ENVELOPE_SCHEMA_TITLE
        "version": "2.0.0",  # --api-version over ENVELOPE_SCHEMA_VERSION
        "description": document["info"]["description"],
    }
    schemas = json.loads((generated / "schemas.json").read_text())
    assert schemas["definitions"]["ChatSend"]["properties"]["room"]["maxLength"] == 40


def test_the_example_declares_its_topic_pushes_and_progress(generated: Path) -> None:
    document = json.loads((generated / "asyncapi.json").read_text())
    topics = {t["pattern"]: t["pushes"] for t in document["x-envelope"]["topics"]}
    assert topics["room.{name}"] == ["chat.message"]
    running = document["channels"]["envelope"]["messages"]["report.build--running"]
    assert running["x-envelope"]["model"] == "ReportProgress"


def test_stdout_formats(generated: Path) -> None:
    ts = envelope_schema("--format", "ts")
    assert ts.returncode == 0, ts.stderr
    assert ts.stdout == (generated / "contract.ts").read_text().replace("2.0.0", "1.0.0")
    assert "export class ContractClient" in ts.stdout
    jsonschema = envelope_schema("--format", "jsonschema")
    assert json.loads(jsonschema.stdout)["$schema"].startswith("http://json-schema.org/draft-07")


def test_the_docs_page_is_the_examples_current_contract() -> None:
    result = envelope_schema("--format", "markdown")
    assert result.returncode == 0, result.stderr
    page = (ROOT / "docs" / "example-contract.md").read_text()
    assert page == result.stdout, "docs/example-contract.md is stale: run `make contract-docs`"
    assert "### `report.build`" in page
    assert "| `r` running | `ReportProgress` |" in page
    assert "| `room.{name}` | `chat.message` | any connection |" in page


def test_check_against_the_project_itself_passes(generated: Path) -> None:
    result = envelope_schema("--check", str(generated / "asyncapi.json"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_settings_it_says_how_to_give_them(tmp_path: Path) -> None:
    result = envelope_schema(settings=None, cwd=tmp_path)
    assert result.returncode != 0
    assert "--settings" in result.stderr


def test_a_path_no_consumer_serves_is_named(tmp_path: Path) -> None:
    result = envelope_schema("--path", "/nope/")
    assert result.returncode != 0
    assert "serves no EnvelopeConsumer at /nope/" in result.stderr


@pytest.mark.slow
@needs_node
def test_the_asyncapi_parser_accepts_the_examples_document(generated: Path) -> None:
    path = generated / "asyncapi.json"
    verdict = validate_asyncapi(path)[str(path)]
    assert errors_of(verdict) == []
    assert verdict["valid"] is True


@pytest.fixture(scope="module")
def driver(generated: Path) -> Path:
    """driver.ts compiled (tsc --strict) against the example's contract.ts."""
    if shutil.which("node") is None:
        pytest.skip("`node` is not installed: the generated client runs in Node")
    shutil.copy(DRIVER, generated / "driver.ts")
    result = tsc(generated, ["contract.ts", "driver.ts"], emit=True)
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy(generated / "client.js", generated / "build" / "client.js")
    return generated / "build" / "driver.js"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    with example_server(tmp_path_factory.mktemp("example")) as running:
        yield running


@pytest.mark.slow
def test_generated_client_against_a_live_server(driver: Path, server: ExampleServer) -> None:
    result = run_node(str(driver), server.ws, login_cookie(server), cwd=driver.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    seen: dict[str, dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        seen[record.pop("scenario")] = record
    assert seen["success"] == {"text": "hi"}
    assert seen["validation"] == {
        "failed": True,
        "code": "invalid_payload",
        "fields": ["room"],
        "t": "chat.send",
    }
    deferred = seen["deferred"]
    assert deferred["rows"] == 2500 and isinstance(deferred["reportId"], int)
    assert deferred["progress"] == [
        {"done": 1000, "total": 2500},
        {"done": 2000, "total": 2500},
        {"done": 2500, "total": 2500},
    ]
    assert deferred["states"][0] == "q" and deferred["states"][-1] == "s"
    assert set(deferred["states"][1:-1]) == {"r"}
    assert seen["push"] == {"t": "chat.message", "room": "lobby", "text": "hello", "author": "demo"}
