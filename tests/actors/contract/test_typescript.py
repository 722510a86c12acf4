"""contract.ts: declarations per model and a typed client, checked by `tsc --strict`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from actors.contract import asyncapi_document, topic_name_type, typescript_module
from tests.actors.contract.node import needs_node, tsc
from tests.actors.contract.sample import sample_contract
from tests.processes import ROOT

STATIC = ROOT / "actors" / "static" / "envelope"


@pytest.fixture(scope="module")
def source() -> str:
    return typescript_module(asyncapi_document(sample_contract()))


def write_module(folder: Path, source: str) -> None:
    (folder / "contract.ts").write_text(source)
    for name in ("client.js", "client.d.ts"):
        shutil.copy(STATIC / name, folder / name)


def test_requests_carry_payload_reply_progress_and_codes(source: str) -> None:
    block = source[source.index('  "vote.export": {') :]
    block = block[: block.index("  };")]
    assert "payload: ExportVotes;" in block
    assert "reply: Exported;" in block
    assert "progress: ExportProgress;" in block
    assert '"job_failed"' in block and '"queue_unavailable"' in block
    assert 'state: "q" | "r" | "s" | "f";' in block


def test_models_sent_by_the_client_have_optional_defaults(source: str) -> None:
    assert "comment?: string | null;" in source  # CastVote, sent
    assert "where: Point | null;" in source  # VoteCounted, received: always present


def test_topics_map_patterns_to_pushes_and_names_to_templates(source: str) -> None:
    assert '"poll.{pk:int}": "vote.counted";' in source
    assert "export type TopicName = `poll.${number}` | `room.${string}.live`;" in source


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("room.{name}", "`room.${string}`", id="str-placeholder"),
        pytest.param("poll.{pk:int}.votes", "`poll.${number}.votes`", id="int-placeholder"),
        pytest.param("news", "`news`", id="literal"),
    ],
)
def test_topic_pattern_as_a_template_literal_type(pattern: str, expected: str) -> None:
    assert topic_name_type(pattern) == expected


def test_no_any_in_the_generated_types(source: str) -> None:
    code = re.sub(r'"[^"\n]*"', '""', source)  # strings may say "any"
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", code, flags=re.S)
    assert re.search(r"\bany\b", code) is None
    typings = re.sub(r"//[^\n]*|/\*.*?\*/", "", (STATIC / "client.d.ts").read_text(), flags=re.S)
    assert re.search(r"\bany\b", typings) is None


USES = """
import { ContractClient, EnvelopeClient, isRequestError, type ErrorCode } from "./contract.js";

export async function use(client: ContractClient): Promise<number> {
  const counted = await client.call("vote.cast", { poll: 1, choice: "yes" });
  try {
    await client.call("vote.export", { poll: 1 }, { onProgress: (p) => console.log(p.done) });
  } catch (error: unknown) {
    if (isRequestError(error, "vote.export")) {
      const code: ErrorCode<"vote.export"> = error.code;
      console.log(code === "job_failed");
    }
  }
  client.send("vote.forget", { poll: 1 });
  client.on("user.details", (details) => console.log(details.tags.join()));
  client.onTopic("poll.{pk:int}", (push) => console.log(push.p.total));
  await client.subscribe("poll.7");
  return counted.total;
}

export const client = new ContractClient(new EnvelopeClient("ws://x/ws/"));
"""

# What the compiler must refuse; each line is preceded by `// @ts-expect-error`, so tsc
# fails ("Unused '@ts-expect-error' directive", at that line) if one of them compiles.
MISUSES = {
    "wrong-field-type": 'void c.call("vote.cast", { poll: "1", choice: "yes" });',
    "missing-required-field": 'void c.call("vote.cast", { choice: "yes" });',
    "unknown-type": 'void c.call("vote.undo", {});',
    "call-on-a-reply-false-type": 'void c.call("vote.forget", { poll: 1 });',
    "reply-has-no-such-field": 'void c.call("vote.cast", { poll: 1, choice: "x" })'
    ".then((r) => r.url);",
    "code-the-type-cannot-produce": 'void c.call("vote.cast", { poll: 1, choice: "x" }).catch('
    '(e: unknown) => isRequestError(e, "vote.cast") && e.code === "job_failed");',
    "progress-has-no-such-field": 'void c.call("vote.export", { poll: 1 }, '
    "{ onProgress: (p) => p.percent });",
    "push-has-no-such-field": 'c.on("vote.counted", (p) => p.name);',
    "undeclared-topic": 'void c.subscribe("polls.7");',
}


def misuse_module() -> str:
    lines = ['import { ContractClient, isRequestError } from "./contract.js";', ""]
    lines.append("export function misuse(c: ContractClient): void {")
    for name, line in MISUSES.items():
        lines += [f"  // @ts-expect-error: {name}", f"  {line}"]
    lines.append("}")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@needs_node
def test_tsc_strict_accepts_the_module_and_its_use_and_refuses_each_misuse(
    source: str, tmp_path: Path
) -> None:
    write_module(tmp_path, source)
    (tmp_path / "use.ts").write_text(USES)
    (tmp_path / "misuse.ts").write_text(misuse_module())
    result = tsc(tmp_path, ["contract.ts", "use.ts", "misuse.ts"])
    assert result.returncode == 0, result.stdout + result.stderr
