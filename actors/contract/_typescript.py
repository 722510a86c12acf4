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


def typescript_module(document: dict[str, Any]) -> str:
    """The `contract.ts` of an AsyncAPI document written by `asyncapi_document`."""
    schemas: dict[str, dict[str, Any]] = document["components"]["schemas"]
    types = _Types(schemas)
    messages: dict[str, dict[str, Any]] = document["channels"]["envelope"]["messages"]
    requests: dict[str, dict[str, Any]] = {}
    pushes: dict[str, str] = {}
    for message in messages.values():
        ext = message.get("x-envelope", {})
        role, t = ext.get("role"), ext.get("type")
        if role == "request":
            entry = requests.setdefault(t, {})
            entry["payload"] = ext["model"]
            payload = message["payload"]
            entry["payload_optional"] = "p" not in payload.get("required", ())
            types.mark(ext["model"], IN)
        elif role == "reply":
            entry = requests.setdefault(t, {})
            entry.setdefault("states", []).append(ext["state"])
            if ext["state"] == "s" and "model" in ext:
                entry["reply"] = ext["model"]
            if ext["state"] == "r" and "model" in ext:
                entry["progress"] = ext["model"]
            if ext["state"] == "f":
                entry["codes"] = ext["codes"]
            if "model" in ext:
                types.mark(ext["model"], OUT)
        elif role == "push":
            pushes[t] = ext["model"]
            types.mark(ext["model"], OUT)
    types.mark(ERROR_SCHEMA, OUT)
    extension = document.get("x-envelope", {})
    topics: list[dict[str, Any]] = extension.get("topics", [])
    close_codes: list[dict[str, Any]] = extension.get("closeCodes", [])

    info = document["info"]
    out: list[str] = [
        f"// The contract of {info['title']} {info['version']}, generated by "
        "`envelope schema` from its routers.\n"
        "// Do not edit: regenerate it. It needs client.js and client.d.ts next to it.\n\n"
        'import { EnvelopeClient, EnvelopeError } from "./client.js";\n'
        'import type { ClientOptions, Frame, ReplyState } from "./client.js";\n\n'
        "export { EnvelopeClient, EnvelopeError };\n"
        "export type { ClientOptions, Frame, ReplyState };\n\n"
        "// -- models ---------------------------------------------------------------------\n\n",
        types.declarations(),
        "\n// -- requests -------------------------------------------------------------------\n\n",
        "/** Every message type a client may send: its payload, the payload of each reply state,\n"
        " * the codes its `f` replies carry, and the states its replies come in. */\n"
        "export interface Requests {\n",
    ]
    for t in sorted(requests):
        entry = requests[t]
        payload = types.name(entry["payload"], IN)
        states = entry.get("states", [])
        reply = types.name(entry["reply"], OUT) if "reply" in entry else "null"
        if "s" not in states:
            reply = "never"
        progress = types.name(entry["progress"], OUT) if "progress" in entry else "never"
        codes = " | ".join(_literal(c) for c in entry.get("codes", ())) or "never"
        out.append(
            f"  {_literal(t)}: {{\n"
            f"    payload: {payload};\n"
            f"    payloadOptional: {'true' if entry.get('payload_optional') else 'false'};\n"
            f"    reply: {reply};\n"
            f"    progress: {progress};\n"
            f"    code: {codes};\n"
            f"    state: {' | '.join(_literal(s) for s in states) or 'never'};\n"
            "  };\n"
        )
    out.append("}\n\n")
    out.append("/** Every push a client may receive, by type. */\nexport interface Pushes {\n")
    for t in sorted(pushes):
        out.append(f"  {_literal(t)}: {types.name(pushes[t], OUT)};\n")
    out.append("}\n\n")
    out.append("/** Declared topics (by pattern) and the types of the pushes published to them. */\n")
    out.append("export interface Topics {\n")
    for topic in topics:
        published = " | ".join(_literal(t) for t in topic["pushes"]) or "never"
        out.append(f"  {_literal(topic['pattern'])}: {published};\n")
    out.append("}\n\n")
    names = " | ".join(topic_name_type(t["pattern"]) for t in topics) or "never"
    codes_union = " | ".join(str(c["code"]) for c in close_codes) or "never"
    out.append(f"/** A topic name a client may subscribe to. */\nexport type TopicName = {names};\n")
    out.append(f"/** The codes the server closes the socket with. */\nexport type CloseCode = {codes_union};\n\n")
    out.append("export const CLOSE_CODES: { readonly [C in CloseCode]: string } = {\n")
    for c in close_codes:
        out.append(f"  {c['code']}: {_literal(c['name'] + ': ' + c['meaning'])},\n")
    out.append("};\n\n")
    out.append(
        "const TOPIC_PUSHES: { readonly [P in TopicPattern]: ReadonlyArray<Topics[P] & PushType> } = {\n"
    )
    for topic in topics:
        out.append(f"  {_literal(topic['pattern'])}: {json.dumps(topic['pushes'])},\n")
    out.append("};\n\n")
    out.append(
        "export const REQUEST_TYPES: readonly RequestType[] = "
        + json.dumps(sorted(requests))
        + ";\nexport const PUSH_TYPES: readonly PushType[] = "
        + json.dumps(sorted(pushes))
        + ";\n\n"
    )
    out.append(_RUNTIME.replace("__BATCH__", _literal(BATCH_TYPE)).replace(
        "__CLIENT_CODES__", " | ".join(_literal(c) for c in CLIENT_CODES)
    ))
    return "".join(out)


# The part of contract.ts that does not depend on the contract.
_RUNTIME = """// -- the typed client -----------------------------------------------------------

export type RequestType = keyof Requests;
export type PushType = keyof Pushes;
export type TopicPattern = keyof Topics;
/** Types answered `s` (the others are declared `reply=False`: use `send`). */
export type CallType = { [T in RequestType]: "s" extends Requests[T]["state"] ? T : never }[RequestType];
export type SendType = Exclude<RequestType, CallType>;
export type Payload<T extends RequestType> = Requests[T]["payload"];
export type Reply<T extends RequestType> = Requests[T]["reply"];
export type Progress<T extends RequestType> = Requests[T]["progress"];
/** Codes the client itself rejects with: no answer in time, or the socket closed first. */
export type ClientErrorCode = __CLIENT_CODES__;
export type ErrorCode<T extends RequestType> = Requests[T]["code"] | ClientErrorCode;

/** A reply frame to a request of type `T`. */
export interface ReplyFrame<T extends RequestType = RequestType> {
  t: T;
  i: string;
  s: Requests[T]["state"];
  p?: unknown;
}

/** A push of type `T` as it arrived (batched pushes arrive one by one). */
export interface PushFrame<T extends PushType = PushType> {
  t: T;
  i?: string;
  p: Pushes[T];
}

export type AnyPush = { [T in PushType]: PushFrame<T> }[PushType];
/** A push published to a topic of `pattern`. */
export type TopicPush<P extends TopicPattern> = { [T in Topics[P] & PushType]: PushFrame<T> }[Topics[P] & PushType];

/** What a failed `call` rejects with: `code` is one of the codes its type can produce. */
export class RequestError<T extends RequestType = RequestType> extends Error {
  readonly t: T;
  readonly i: string | null;
  readonly code: ErrorCode<T>;
  readonly payload: EnvelopeErrorPayload<ErrorCode<T>>;

  constructor(t: T, error: EnvelopeError) {
    super(error.message);
    this.name = "RequestError";
    this.t = t;
    this.i = error.i;
    this.code = error.code as ErrorCode<T>;
    const payload: unknown = { ...error.payload, code: this.code, message: error.message };
    this.payload = payload as EnvelopeErrorPayload<ErrorCode<T>>;
  }
}

/** The `f` payload, with `code` narrowed to `C`. */
export type EnvelopeErrorPayload<C extends string = string> = Omit<ErrorPayload, "code"> & { code: C };

/** Did `call(t, ...)` reject with this? Narrows `error.code` to the codes of `t`. */
export function isRequestError<T extends RequestType>(error: unknown, t: T): error is RequestError<T> {
  return error instanceof RequestError && error.t === t;
}

export interface CallOptions<T extends RequestType> {
  /** ms to wait for the terminal reply (default: the client's). */
  timeout?: number;
  /** The trace id (default: a new one). */
  i?: string;
  /** Each progress update (`r` with a payload). */
  onProgress?: (progress: Progress<T>, frame: ReplyFrame<T>) => void;
  /** Every reply, in order: `a`, `q`, `r`..., then `s` or `f`. */
  onState?: (state: Requests[T]["state"], frame: ReplyFrame<T>) => void;
}

/** The promise of a call, with the request's trace id. */
export type Call<T extends RequestType> = Promise<Reply<T>> & { readonly i: string };

type CallArgs<T extends RequestType> = Requests[T]["payloadOptional"] extends true
  ? [payload?: Payload<T> | null, options?: CallOptions<T>]
  : [payload: Payload<T>, options?: CallOptions<T>];

type SendArgs<T extends RequestType> = Requests[T]["payloadOptional"] extends true
  ? [payload?: Payload<T> | null]
  : [payload: Payload<T>];

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null;
}

/** `EnvelopeClient` with every message type of the contract checked. */
export class ContractClient {
  readonly raw: EnvelopeClient;

  constructor(raw: EnvelopeClient) {
    this.raw = raw;
  }

  connect(): Promise<ContractClient> {
    return this.raw.connect().then(() => this);
  }

  close(code?: number, reason?: string): void {
    this.raw.close(code, reason);
  }

  /** Send `t`; resolves with its `s` payload, rejects with a `RequestError<t>`. */
  call<T extends CallType>(t: T, ...args: CallArgs<T>): Call<T> {
    const [payload, options] = args;
    const { timeout, i, onProgress, onState } = options ?? {};
    const pending = this.raw.request(t, payload ?? null, {
      timeout,
      i,
      onState: (state, p, frame) => {
        const reply = frame as ReplyFrame<T>;
        if (onState) onState(state as Requests[T]["state"], reply);
        if (state === "r" && p !== null && p !== undefined && onProgress) {
          onProgress(p as Progress<T>, reply);
        }
      },
    });
    const typed = pending.then(
      (reply) => reply as Reply<T>,
      (error: unknown) => {
        throw error instanceof EnvelopeError ? new RequestError(t, error) : error;
      },
    );
    return Object.assign(typed, { i: pending.i });
  }

  /** Send a type declared `reply=False` (nothing waits for an answer); returns its `i`. */
  send<T extends SendType>(t: T, ...args: SendArgs<T>): string {
    return this.raw.send(t, args[0] ?? null);
  }

  /** `fn(payload, frame)` for every push of type `t` (batched ones too); returns an unsubscribe. */
  on<T extends PushType>(t: T, fn: (payload: Pushes[T], frame: PushFrame<T>) => void): () => void {
    const deliver = (p: unknown, frame: Frame): void => {
      const push = { t, p: p as Pushes[T], ...(frame.i ? { i: frame.i } : {}) };
      fn(push.p, push);
    };
    const single = this.raw.on(t, deliver);
    const batched = this.raw.on(__BATCH__, (p) => {
      if (!isObject(p) || p.t !== t || !Array.isArray(p.items)) return;
      for (const item of p.items) {
        if (isObject(item)) deliver(item.p, { t, i: typeof item.i === "string" ? item.i : undefined });
      }
    });
    return () => {
      single();
      batched();
    };
  }

  /** `fn(push)` for every push a topic of `pattern` publishes; returns an unsubscribe. */
  onTopic<P extends TopicPattern>(pattern: P, fn: (push: TopicPush<P>) => void): () => void {
    const published = TOPIC_PUSHES[pattern];
    const stops = published.map((t) => this.on(t, (_p, frame) => fn(frame as TopicPush<P>)));
    return () => stops.forEach((stop) => stop());
  }

  /** Subscribe to `topic` now and after every reconnect. */
  subscribe(topic: TopicName): Promise<unknown> {
    return this.raw.subscribe(topic).catch((error: unknown) => {
      throw error instanceof EnvelopeError ? new RequestError("topic.subscribe" as RequestType, error) : error;
    });
  }

  /** Stop wanting `topic`. */
  leave(topic: TopicName): Promise<unknown> {
    return this.raw.leave(topic);
  }
}

/** A `ContractClient` over a new `EnvelopeClient`, connecting at once. */
export function connect(url: string, options: ClientOptions = {}): ContractClient {
  const client = new ContractClient(new EnvelopeClient(url, options));
  void client.connect();
  return client;
}
"""
