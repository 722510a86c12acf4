"""The AsyncAPI 3.0 document of a `Contract`.

The document describes the server: a client's message is an operation the server
`receive`s, with a `reply` listing one message per state it can be answered in; a push is
an operation the server `send`s. Every frame is a message on one channel (the websocket
endpoint); its payload is the whole frame (`t`, `i`, `p`, `s`), `p` referring to the
model's schema in `components.schemas`. `x-envelope` keeps what AsyncAPI has no field
for: the reply states, error codes, topics and close codes, which the TypeScript
generator and the breaking-change check read back.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from actors.contract._model import UNREADABLE, Contract, Push, Request, describe_spec
from actors.contract._schemas import COMPONENTS, ModelSchemas
from actors.topics import BATCH_TYPE
from envelope import ERROR_CODES, TRACE_ID_PATTERN

CHANNEL = "envelope"
#: The `t` of the reply to a frame whose own `t` could not be read.
ERROR_TYPE = "error"
ERROR_SCHEMA = "ErrorPayload"
VALIDATION_ITEM = "ValidationErrorItem"

STATE_NAMES = {"a": "ack", "q": "queued", "r": "running", "s": "success", "f": "failed"}
_KEY = re.compile(r"[^A-Za-z0-9._-]")

TRACE_ID = {"type": "string", "pattern": TRACE_ID_PATTERN.pattern}


def key(name: str, suffix: str = "") -> str:
    """A wire name as a key of `components`/`channels` (`[A-Za-z0-9._-]`)."""
    return _KEY.sub("_", name) + (f"--{suffix}" if suffix else "")


def _message_ref(message_key: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{CHANNEL}/messages/{message_key}"}


def _frame(
    t: str,
    *,
    p: dict[str, Any] | None,
    p_required: bool,
    s: str | None = None,
    i_required: bool = True,
    client: bool = False,
) -> dict[str, Any]:
    """The schema of a whole frame: `t` fixed, `i`, `p` as given, `s` fixed (replies)."""
    properties: dict[str, Any] = {"t": {"const": t}}
    # Clients may send an integer `i` (it is turned into a string); the server sends strings.
    properties["i"] = {"anyOf": [TRACE_ID, {"type": "integer"}]} if client else TRACE_ID
    required = ["t"]
    if i_required:
        required.append("i")
    if p is not None:
        properties["p"] = p
        if p_required:
            required.append("p")
    if s is not None:
        properties["s"] = {"const": s}
        required.append("s")
    return {"type": "object", "properties": properties, "required": required}


def _payload_of(model: type[BaseModel], schemas: ModelSchemas, *, client: bool) -> dict[str, Any]:
    ref = schemas.ref(model)
    has_required = any(field.required for field in model.__fields__.values())
    if client and not has_required:
        # Nothing to say: `p` may be absent, null, or the object.
        return {"anyOf": [ref, {"type": "null"}]}
    return ref


def _error_payload(codes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": COMPONENTS + ERROR_SCHEMA},
            {"type": "object", "properties": {"code": {"type": "string", "enum": list(codes)}}},
        ]
    }


def _request_messages(request: Request, schemas: ModelSchemas) -> dict[str, dict[str, Any]]:
    name = request.name
    model = request.model
    has_required = any(field.required for field in model.__fields__.values())
    out: dict[str, dict[str, Any]] = {
        key(name): {
            "name": name,
            "title": name,
            "summary": request.summary or f"{name}: sent by the client",
            "payload": _frame(
                name,
                p=_payload_of(model, schemas, client=True),
                p_required=has_required,
                i_required=False,
                client=True,
            ),
            "correlationId": {"location": "$message.payload#/i"},
            "x-envelope": {"type": name, "role": "request", "model": schemas.names[model]},
        }
    }
    for state in request.states:
        p: dict[str, Any] | None = None
        model_name: str | None = None
        if state == "s" and request.reply is not None:
            p, model_name = schemas.ref(request.reply), schemas.names[request.reply]
        elif state == "r" and request.progress is not None:
            p, model_name = schemas.ref(request.progress), schemas.names[request.progress]
        elif state == "f":
            p = _error_payload(request.codes)
        extension: dict[str, Any] = {"type": name, "role": "reply", "state": state}
        if model_name is not None:
            extension["model"] = model_name
        if state == "f":
            extension["codes"] = list(request.codes)
        out[key(name, STATE_NAMES[state])] = {
            "name": f"{name} ({STATE_NAMES[state]})",
            "title": f"{name}: {STATE_NAMES[state]}",
            "summary": _state_summary(state, request),
            "payload": _frame(name, p=p, p_required=p is not None and state != "r", s=state),
            "correlationId": {"location": "$message.payload#/i"},
            "x-envelope": extension,
        }
    return out


def _state_summary(state: str, request: Request) -> str:
    if state == "a":
        return "Acknowledged: the request passed validation and authorization; it runs now."
    if state == "q":
        return "Queued: the request was handed to a worker."
    if state == "r":
        if request.progress is not None:
            return "Running: a worker started it (no p), then progress updates (p)."
        return "Running: a worker started it."
    if state == "s":
        return "Success: p is the handler's result." if request.reply else "Success (no p)."
    return "Failed: p.code is one of the codes listed; p.message is safe to show."


def _push_message(push: Push, schemas: ModelSchemas) -> dict[str, Any]:
    doc = (push.model.__doc__ or "").strip()
    extension: dict[str, Any] = {
        "type": push.name,
        "role": "push",
        "model": schemas.names[push.model],
        "topics": list(push.topics),
    }
    if push.builtin:
        extension["builtin"] = True
    return {
        "name": push.name,
        "title": push.name,
        "summary": doc.splitlines()[0] if doc else f"{push.name}: pushed by the server",
        "payload": _frame(push.name, p=schemas.ref(push.model), p_required=True, i_required=False),
        "x-envelope": extension,
    }


def _builtin_frames(contract: Contract) -> dict[str, dict[str, Any]]:
    push_names = [push.name for push in contract.pushes]
    batch_p = {
        "type": "object",
        "required": ["t", "items"],
        "properties": {
            "t": {"type": "string", "enum": push_names},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["p"],
                    "properties": {"i": TRACE_ID, "p": {"type": "object"}},
                },
            },
        },
    }
    codes = sorted(cls.code for cls in UNREADABLE)
    return {
        key(ERROR_TYPE): {
            "name": ERROR_TYPE,
            "title": "error",
            "summary": "The answer to a frame whose t could not be read (not JSON, not an "
            "envelope, too large, or dropped because the mailbox was full).",
            "payload": _frame(ERROR_TYPE, p=_error_payload(tuple(codes)), p_required=True, s="f"),
            "x-envelope": {"type": ERROR_TYPE, "role": "error", "codes": codes},
        },
        key(BATCH_TYPE): {
            "name": BATCH_TYPE,
            "title": "batch",
            "summary": "Three or more pushes of one type to one target in one transaction, "
            "as one frame: each item is one push of type p.t.",
            "payload": _frame(BATCH_TYPE, p=batch_p, p_required=True, i_required=False),
            "x-envelope": {"type": BATCH_TYPE, "role": "batch"},
        },
    }


def _error_schemas() -> dict[str, dict[str, Any]]:
    return {
        ERROR_SCHEMA: {
            "title": ERROR_SCHEMA,
            "description": "The p of every f reply. message is safe to show; quote the "
            "frame's i when reporting an internal or job_failed error.",
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": sorted(ERROR_CODES)},
                "message": {"type": "string"},
                "errors": {
                    "description": "invalid_payload: what was wrong, field by field",
                    "type": "array",
                    "items": {"$ref": COMPONENTS + VALIDATION_ITEM},
                },
                "more_errors": {
                    "description": "invalid_payload: how many problems were left out",
                    "type": "integer",
                },
                "retry_after": {
                    "description": "rate_limited: seconds to wait",
                    "type": "number",
                },
                "timeout": {"description": "timeout: the limit, in seconds", "type": "number"},
            },
        },
        VALIDATION_ITEM: {
            "title": VALIDATION_ITEM,
            "type": "object",
            "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"type": "string"},
                "type": {"type": "string"},
            },
        },
    }


def asyncapi_document(contract: Contract, *, server: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a JSON-able dict) of `contract`."""
    schemas = ModelSchemas(contract.models())
    messages: dict[str, dict[str, Any]] = {}
    operations: dict[str, dict[str, Any]] = {}
    channel_ref = {"$ref": f"#/channels/{CHANNEL}"}

    def add(message_key: str, message: dict[str, Any]) -> None:
        if message_key in messages:
            raise ValueError(
                f"two messages of the contract share the key {message_key!r} "
                f"({messages[message_key]['name']!r} and {message['name']!r}); rename one"
            )
        messages[message_key] = message

    for request in contract.requests:
        request_messages = _request_messages(request, schemas)
        for message_key, message in request_messages.items():
            add(message_key, message)
        request_key, *reply_keys = request_messages
        operations[key(request.name)] = {
            "action": "receive",
            "channel": channel_ref,
            "title": request.name,
            "summary": request.summary or f"The client sends {request.name}.",
            "messages": [_message_ref(request_key)],
            "reply": {"channel": channel_ref, "messages": [_message_ref(k) for k in reply_keys]},
            "x-envelope": {
                "type": request.name,
                "states": list(request.states),
                "codes": list(request.codes),
                **describe_spec(request.spec),
            },
        }
    for push in contract.pushes:
        push_key = key(push.name, "push")
        add(push_key, _push_message(push, schemas))
        operations[push_key] = {
            "action": "send",
            "channel": channel_ref,
            "title": push.name,
            "summary": f"The server pushes {push.name}"
            + (f" to the topics {', '.join(push.topics)}." if push.topics else "."),
            "messages": [_message_ref(push_key)],
            "x-envelope": {"type": push.name, "topics": list(push.topics)},
        }
    for builtin_key, message in _builtin_frames(contract).items():
        add(builtin_key, message)
        operations[builtin_key] = {
            "action": "send",
            "channel": channel_ref,
            "title": message["name"],
            "summary": message["summary"],
            "messages": [_message_ref(builtin_key)],
        }

    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": contract.title,
            "version": contract.version,
            "description": (
                "Envelope Router protocol v1. Every frame is one JSON object in a websocket "
                "text frame: t (type), i (trace id), p (payload), s (state, on replies). "
                "Operations are seen from the server: it receives what a client sends and "
                "answers with the reply messages listed (a, q, r, then s or f); it sends pushes."
            ),
        },
        "defaultContentType": "application/json",
    }
    if server is not None:
        document["servers"] = _servers(server)
    document["channels"] = {
        CHANNEL: {
            "address": contract.path,
            "title": "Envelope Router websocket",
            "description": "One websocket; every message of the protocol travels on it. "
            "Close codes: "
            + "; ".join(f"{c.code} {c.name}: {c.meaning}" for c in contract.close_codes)
            + ".",
            "messages": messages,
            "bindings": {"ws": {"bindingVersion": "0.1.0"}},
        }
    }
    document["operations"] = operations
    document["components"] = {"schemas": {**schemas.definitions, **_error_schemas()}}
    document["x-envelope"] = {
        "protocol": 1,
        "topics": [
            {"pattern": t.pattern, "pushes": list(t.pushes), "anyone": t.anyone}
            for t in contract.topics
        ],
        "closeCodes": [
            {"code": c.code, "name": c.name, "meaning": c.meaning} for c in contract.close_codes
        ],
    }
    return document


def _servers(url: str) -> dict[str, Any]:
    match = re.fullmatch(r"(wss?)://([^/]+)(/.*)?", url)
    if match is None:
        raise ValueError(f"--server {url!r}: give ws://host:port or wss://host")
    return {"default": {"host": match.group(2), "protocol": match.group(1)}}
