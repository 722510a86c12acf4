"""TypeScript from the AsyncAPI document: a declaration per model, and a typed client.

The module it writes (`contract.ts`) imports `client.js` (and its `client.d.ts`) from
its own folder and exports:

- an interface (or type) per model. A model the client sends has its defaulted fields
  optional; a model the server sends has every field (the server always sends them all),
  `| null` where the field allows `None`. A model used both ways gets both, the sent one
  named `<Model>Input`;
- `Requests` (type -> payload, reply, progress, error code union, states), `Pushes`,
  `Topics`, and the unions `RequestType`, `PushType`, `TopicName`, `CloseCode`...;
- `ContractClient`: `call(t, payload, {onProgress})` checked against the payload type,
  resolving with the reply type and rejecting with a `RequestError<t>` whose `code` is the
  union of that type's codes; `on(t, fn)` and `onTopic(pattern, fn)` for pushes.

No `any` anywhere: what the schema leaves open is `unknown`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

from actors.contract._asyncapi import BATCH_TYPE, COMPONENTS, ERROR_SCHEMA

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::(int|str))?\}$")
IN, OUT = "in", "out"
#: Codes the client itself rejects with (no reply came).
CLIENT_CODES = ("disconnected", "timeout")


def _literal(value: Any) -> str:
    return json.dumps(value)


def _prop_name(name: str) -> str:
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _doc(text: str | None, indent: str = "") -> str:
    if not text:
        return ""
    lines = [line.rstrip().replace("*/", "* /") for line in text.strip().splitlines()]
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    body = "".join(f"{indent} * {line}".rstrip() + "\n" for line in lines)
    return f"{indent}/**\n{body}{indent} */\n"


class _Types:
    """JSON Schema -> TypeScript, in one direction per use (`IN`: sent by the client)."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.used: dict[str, set[str]] = {IN: set(), OUT: set()}

    def mark(self, name: str, direction: str) -> None:
        if name in self.used[direction] or name not in self.schemas:
            return
        self.used[direction].add(name)
        for ref in _refs(self.schemas[name]):
            self.mark(ref, direction)

    def name(self, model: str, direction: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_$]", "_", model)
        if direction == IN and model in self.used[OUT]:
            return f"{base}Input"
        return base

    def ts(self, schema: Any, direction: str, indent: str = "") -> str:
        if not isinstance(schema, dict) or not schema:
            return "unknown"
        if "$ref" in schema:
            return self.name(schema["$ref"].removeprefix(COMPONENTS), direction)
        if "const" in schema:
            return _literal(schema["const"])
        if "enum" in schema:
            return " | ".join(_literal(v) for v in schema["enum"]) or "never"
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return _union(self.ts(option, direction, indent) for option in schema[union])
        if "allOf" in schema:
            parts = [self.ts(part, direction, indent) for part in schema["allOf"]]
            return parts[0] if len(parts) == 1 else " & ".join(f"({p})" for p in parts)
        kind = schema.get("type")
        if isinstance(kind, list):
            return _union(self.ts({**schema, "type": k}, direction, indent) for k in kind)
        if kind == "string":
            return "string"
        if kind in ("integer", "number"):
            return "number"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array":
            items = schema.get("items")
            if isinstance(items, list):
                return "[" + ", ".join(self.ts(i, direction, indent) for i in items) + "]"
            inner = self.ts(items, direction, indent)
            return f"Array<{inner}>"
        if kind == "object" or "properties" in schema:
            return self.object(schema, direction, indent)
        return "unknown"

    def object(
        self, schema: dict[str, Any], direction: str, indent: str, partial: bool = False
    ) -> str:
        # A model the server sends has every field; `partial` objects only their required ones.
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties:
            value = self.ts(extra, direction, indent) if isinstance(extra, dict) else "unknown"
            return f"{{ [key: string]: {value} }}"
        required = set(schema.get("required", ()))
        inner = indent + "  "
        lines = ["{"]
        for prop, sub in properties.items():
            optional = "?" if prop not in required and (direction == IN or partial) else ""
            lines.append(_doc(sub.get("description"), inner).rstrip("\n"))
            lines.append(f"{inner}{_prop_name(prop)}{optional}: {self.ts(sub, direction, inner)};")
        if isinstance(extra, dict):
            lines.append(f"{inner}[key: string]: unknown;")
        lines.append(f"{indent}}}")
        return "\n".join(line for line in lines if line)

    def declarations(self) -> str:
        out = []
        for direction in (OUT, IN):
            for model in sorted(self.used[direction]):
                schema = self.schemas[model]
                name = self.name(model, direction)
                doc = _doc(schema.get("description"))
                if model == ERROR_SCHEMA:
                    body = self.object(schema, direction, "", partial=True)
                else:
                    body = self.ts(schema, direction)
                if body.startswith("{\n"):
                    out.append(f"{doc}export interface {name} {body}\n")
                else:
                    out.append(f"{doc}export type {name} = {body};\n")
        return "\n".join(out)


def _union(parts: Iterable[str]) -> str:
    unique = list(dict.fromkeys(parts))
    if "unknown" in unique:
        return "unknown"
    return " | ".join(unique) or "never"


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENTS):
                yield value.removeprefix(COMPONENTS)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def topic_name_type(pattern: str) -> str:
    """``"room.{name}"`` -> ``room.${string}``; ``{pk:int}`` -> ``${number}``."""
    parts = []
    for segment in pattern.split("."):
        found = _PLACEHOLDER.match(segment)
        if found is None:
            parts.append(segment.replace("`", "").replace("$", ""))
        else:
            parts.append("${number}" if found.group(2) == "int" else "${string}")
    return "`" + ".".join(parts) + "`"


def _read_messages(
    document: dict[str, Any], types: _Types
) -> tuple[dict[str, Any], dict[str, str]]:
    """(type -> what its request and replies carry, push type -> model) from the document."""
    requests: dict[str, dict[str, Any]] = {}
    pushes: dict[str, str] = {}
    for message in document["channels"]["envelope"]["messages"].values():
        ext = message.get("x-envelope", {})
        role, t, model = ext.get("role"), ext.get("type"), ext.get("model")
        if role == "request":
            entry = requests.setdefault(t, {"states": []})
            entry["payload"] = model
            entry["payload_optional"] = "p" not in message["payload"].get("required", ())
            types.mark(model, IN)
        elif role == "reply":
            entry = requests.setdefault(t, {"states": []})
            entry["states"].append(ext["state"])
            if ext["state"] == "f":
                entry["codes"] = ext["codes"]
            if model is not None:
                entry["reply" if ext["state"] == "s" else "progress"] = model
                types.mark(model, OUT)
        elif role == "push":
            pushes[t] = model
            types.mark(model, OUT)
    return requests, pushes


def _union_of(values: Iterable[Any]) -> str:
    return " | ".join(_literal(v) for v in values) or "never"


def _requests_block(requests: dict[str, dict[str, Any]], types: _Types) -> str:
    out = [
        "/** Every message type a client may send: its payload, the payload of each reply\n"
        " * state, the codes its `f` replies carry, and the states its replies come in. */\n"
        "export interface Requests {\n"
    ]
    for t in sorted(requests):
        entry = requests[t]
        states = entry["states"]
        reply = types.name(entry["reply"], OUT) if "reply" in entry else "null"
        progress = types.name(entry["progress"], OUT) if "progress" in entry else "never"
        optional = "true" if entry.get("payload_optional") else "false"
        out.append(
            f"  {_literal(t)}: {{\n"
            f"    payload: {types.name(entry['payload'], IN)};\n"
            f"    payloadOptional: {optional};\n"
            f"    reply: {reply if 's' in states else 'never'};\n"
            f"    progress: {progress};\n"
            f"    code: {_union_of(entry.get('codes', ()))};\n"
            f"    state: {_union_of(states)};\n"
            "  };\n"
        )
    out.append("}\n\n")
    return "".join(out)


def _pushes_block(pushes: dict[str, str], types: _Types) -> str:
    lines = [f"  {_literal(t)}: {types.name(pushes[t], OUT)};\n" for t in sorted(pushes)]
    return (
        "/** Every push a client may receive, by type. */\n"
        f"export interface Pushes {{\n{''.join(lines)}}}\n\n"
    )


def _topics_block(topics: list[dict[str, Any]]) -> str:
    declared = "".join(f"  {_literal(t['pattern'])}: {_union_of(t['pushes'])};\n" for t in topics)
    published = "".join(f"  {_literal(t['pattern'])}: {json.dumps(t['pushes'])},\n" for t in topics)
    names = " | ".join(topic_name_type(t["pattern"]) for t in topics) or "never"
    return (
        "/** Declared topics (by pattern) and the types of the pushes published to them. */\n"
        f"export interface Topics {{\n{declared}}}\n\n"
        f"/** A topic name a client may subscribe to. */\nexport type TopicName = {names};\n\n"
        "const TOPIC_PUSHES: {\n"
        "  readonly [P in TopicPattern]: ReadonlyArray<Topics[P] & PushType>;\n"
        f"}} = {{\n{published}}};\n\n"
    )


def _close_codes_block(close_codes: list[dict[str, Any]]) -> str:
    union = " | ".join(str(c["code"]) for c in close_codes) or "never"
    meanings = "".join(
        f"  {c['code']}: {_literal(c['name'] + ': ' + c['meaning'])},\n" for c in close_codes
    )
    return (
        f"/** The codes the server closes the socket with. */\nexport type CloseCode = {union};\n\n"
        f"export const CLOSE_CODES: {{ readonly [C in CloseCode]: string }} = {{\n{meanings}}};\n\n"
    )


def typescript_module(document: dict[str, Any]) -> str:
    """The `contract.ts` of an AsyncAPI document written by `asyncapi_document`."""
    types = _Types(document["components"]["schemas"])
    requests, pushes = _read_messages(document, types)
    types.mark(ERROR_SCHEMA, OUT)
    extension = document.get("x-envelope", {})
    info = document["info"]
    return "".join(
        (
            f"// The contract of {info['title']} {info['version']}, generated by "
            "`envelope schema` from its routers.\n"
            "// Do not edit: regenerate it. It needs client.js and client.d.ts next to it.\n\n"
            'import { EnvelopeClient, EnvelopeError } from "./client.js";\n'
            'import type { ClientOptions, Frame, ReplyState } from "./client.js";\n\n'
            "export { EnvelopeClient, EnvelopeError };\n"
            "export type { ClientOptions, Frame, ReplyState };\n\n",
            _SECTION.format("models"),
            types.declarations(),
            "\n",
            _SECTION.format("messages"),
            _requests_block(requests, types),
            _pushes_block(pushes, types),
            _topics_block(extension.get("topics", [])),
            _close_codes_block(extension.get("closeCodes", [])),
            f"export const REQUEST_TYPES: readonly RequestType[] = {_json_list(requests)};\n",
            f"export const PUSH_TYPES: readonly PushType[] = {_json_list(pushes)};\n\n",
            _SECTION.format("the typed client"),
            _client_runtime(),
        )
    )


def _json_list(names: Iterable[str]) -> str:
    return json.dumps(sorted(names))


_SECTION = "// -- {} --------------------------------------------------------------\n\n"


def _client_runtime() -> str:
    """client_runtime.ts without its header comment, its placeholders filled in."""
    text = (resources.files("actors.contract") / "client_runtime.ts").read_text()
    text = text[text.index("\n\n") + 2 :]
    codes = " | ".join(_literal(c) for c in CLIENT_CODES)
    return text.replace("__BATCH__", _literal(BATCH_TYPE)).replace("__CLIENT_CODES__", codes)
