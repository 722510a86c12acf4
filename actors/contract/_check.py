"""What changed between two contracts, and which changes break a client of the old one.

A client built against the old contract breaks when the new one:

- removes a message type it sends (`removed_type`), or a push or a topic it listens to
  (`removed_push`, `removed_topic`, `removed_topic_push`);
- requires a field it does not send (`new_required_field`), or accepts less in a field
  it sends: another type, or tighter limits, enum, pattern (`narrowed_field`);
- drops a field of a reply, progress update or push it reads (`removed_reply_field`, a
  reply that had a payload and has none counts for each of its fields), or sends a
  field as another type or with values the old contract did not have
  (`changed_field_type`);
- no longer answers with an error code it handles (`removed_error_code`).

Everything else is additive: new types, pushes, topics, optional fields, reply fields,
error codes, looser limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.contract._asyncapi import CHANNEL, COMPONENTS

#: Limits a sender must stay under (a lower value accepts less)...
_UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
#: ...and over (a higher value accepts less).
_LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
_MAX_DEPTH = 12


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    where: str  # e.g. "chat.send p.room", "push chat.message"
    detail: str
    breaking: bool

    def __str__(self) -> str:
        mark = "BREAKING" if self.breaking else "additive"
        return f"{mark:9} {self.kind:20} {self.where}: {self.detail}"


class _Side:
    """One contract, read back from its AsyncAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        try:
            messages = document["channels"][CHANNEL]["messages"]
            self.schemas: dict[str, Any] = document["components"]["schemas"]
        except (KeyError, TypeError):
            raise ValueError(
                "not an AsyncAPI document written by `envelope schema` "
                f"(no channels.{CHANNEL}.messages or components.schemas)"
            ) from None
        self.requests: dict[str, Any] = {}
        self.replies: dict[tuple[str, str], Any] = {}
        self.codes: dict[str, set[str]] = {}
        self.pushes: dict[str, Any] = {}
        for message in messages.values():
            ext = message.get("x-envelope", {})
            t, role = ext.get("type"), ext.get("role")
            p = message.get("payload", {}).get("properties", {}).get("p")
            if role == "request":
                self.requests[t] = message["payload"]
            elif role == "reply" and ext.get("state") in ("s", "r"):
                self.replies[(t, ext["state"])] = p
            elif role == "reply" and ext.get("state") == "f":
                self.codes[t] = set(ext.get("codes", ()))
            elif role == "push":
                self.pushes[t] = p
        self.topics: dict[str, set[str]] = {
            topic["pattern"]: set(topic.get("pushes", ()))
            for topic in document.get("x-envelope", {}).get("topics", ())
        }

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < _MAX_DEPTH:
            schema = self.schemas.get(schema["$ref"].removeprefix(COMPONENTS), {})
            seen += 1
        if not isinstance(schema, dict):
            return {}
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.resolve(schema["allOf"][0])
        return schema

    def body(self, schema: Any) -> dict[str, Any]:
        """The object or array inside a schema, through `$ref`s and a nullable `anyOf`."""
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            values = [o for o in options if self.resolve(o).get("type") != "null"]
            if len(values) == 1:
                return self.resolve(values[0])
        return schema


def _types(side: _Side, schema: Any) -> set[str]:
    """The JSON types (and enum/const values) a schema admits; empty means anything."""
    schema = side.resolve(schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        found: set[str] = set()
        for option in options:
            sub = _types(side, option)
            if not sub:
                return set()
            found |= sub
        return found
    if "const" in schema:
        return {f"={schema['const']!r}"}
    if "enum" in schema:
        return {f"={value!r}" for value in schema["enum"]}
    kind = schema.get("type")
    if isinstance(kind, list):
        return set(kind)
    if kind:
        return {kind}
    return {"object"} if "properties" in schema else set()


def _accepts_all(new: set[str], old: set[str]) -> bool:
    """Does a field typed `new` accept every value one typed `old` did?"""
    if not new:
        return True
    if not old:
        return False
    for value in old:
        if value in new:
            continue
        if value == "integer" and "number" in new:
            continue
        if value.startswith("="):
            literal = value[1:]
            is_str = literal.startswith(("'", '"'))
            if ("string" if is_str else "number") in new or (
                not is_str and "integer" in new and "." not in literal
            ):
                continue
        return False
    return True


def _narrowed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for limit in _UPPER:
        if limit in new and (limit not in old or new[limit] < old[limit]):
            out.append(f"{limit} {old.get(limit, 'none')} -> {new[limit]}")
    for limit in _LOWER:
        if limit in new and (limit not in old or new[limit] > old[limit]):
            out.append(f"{limit} {old.get(limit, 'none')} -> {new[limit]}")
    for exact in ("pattern", "format"):
        if exact in new and new.get(exact) != old.get(exact):
            out.append(f"{exact} {old.get(exact, 'none')!r} -> {new[exact]!r}")
    return out


class _Differ:
    def __init__(self, old: _Side, new: _Side) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []

    def add(self, kind: str, where: str, detail: str, breaking: bool) -> None:
        self.changes.append(Change(kind, where, detail, breaking))

    def sent(self, where: str, old: Any, new: Any, depth: int = 0) -> None:
        """A value the client sends: the new schema must accept all the old one did."""
        o, n = self.old.resolve(old), self.new.resolve(new)
        o_types, n_types = _types(self.old, o), _types(self.new, n)
        if not _accepts_all(n_types, o_types):
            self.add(
                "narrowed_field",
                where,
                f"accepts {_show(n_types)}, was {_show(o_types)}",
                True,
            )
            return
        narrowed = _narrowed(o, n)
        if narrowed:
            self.add("narrowed_field", where, "; ".join(narrowed), True)
        if depth >= _MAX_DEPTH:
            return
        o, n = self.old.body(o), self.new.body(n)
        o_props, n_props = o.get("properties", {}), n.get("properties", {})
        o_required, n_required = set(o.get("required", ())), set(n.get("required", ()))
        for name in n_props:
            if name in n_required and name not in o_required:
                detail = "was optional" if name in o_props else "a new field"
                self.add("new_required_field", f"{where}.{name}", detail, True)
            elif name not in o_props:
                self.add("added_field", f"{where}.{name}", "new optional field", False)
        for name in o_props:
            if name in n_props:
                self.sent(f"{where}.{name}", o_props[name], n_props[name], depth + 1)
        if o.get("type") == "array" and isinstance(o.get("items"), dict):
            self.sent(f"{where}[]", o["items"], n.get("items", {}), depth + 1)

    def read(self, where: str, old: Any, new: Any, depth: int = 0) -> None:
        """A value the client reads: every old field still there, no new kind of value."""
        o, n = self.old.resolve(old), self.new.resolve(new)
        o_types, n_types = _types(self.old, o), _types(self.new, n)
        if not _accepts_all(o_types, n_types):
            self.add(
                "changed_field_type",
                where,
                f"is {_show(n_types)}, was {_show(o_types)}",
                True,
            )
            return
        if depth >= _MAX_DEPTH:
            return
        o, n = self.old.body(o), self.new.body(n)
        o_props, n_props = o.get("properties", {}), n.get("properties", {})
        for name in o_props:
            if name not in n_props:
                self.add("removed_reply_field", f"{where}.{name}", "no longer sent", True)
            else:
                self.read(f"{where}.{name}", o_props[name], n_props[name], depth + 1)
        for name in n_props:
            if name not in o_props:
                self.add("added_field", f"{where}.{name}", "new field", False)
        if o.get("type") == "array" and isinstance(o.get("items"), dict):
            self.read(f"{where}[]", o["items"], n.get("items", {}), depth + 1)


def _show(types: set[str]) -> str:
    return " | ".join(sorted(types)) if types else "anything"


def compare(old_document: dict[str, Any], new_document: dict[str, Any]) -> list[Change]:
    """Every change from `old_document` to `new_document`, breaking ones first."""
    old, new = _Side(old_document), _Side(new_document)
    diff = _Differ(old, new)
    for t in sorted(old.requests):
        if t not in new.requests:
            diff.add("removed_type", t, "clients can no longer send it", True)
            continue
        o_p = old.requests[t].get("properties", {}).get("p", {})
        n_p = new.requests[t].get("properties", {}).get("p", {})
        if "p" in new.requests[t].get("required", ()) and "p" not in old.requests[t].get(
            "required", ()
        ):
            diff.add("new_required_field", f"{t} p", "the payload is now required", True)
        diff.sent(f"{t} p", o_p, n_p)
        for state in ("s", "r"):
            key = (t, state)
            if key in old.replies and old.replies[key] is not None:
                label = "reply" if state == "s" else "progress"
                if new.replies.get(key) is None:
                    fields = old.body(old.replies[key]).get("properties", {})
                    for name in fields or ("(payload)",):
                        diff.add(
                            "removed_reply_field",
                            f"{t} {label}.{name}",
                            "the reply no longer carries it",
                            True,
                        )
                else:
                    diff.read(f"{t} {label}", old.replies[key], new.replies[key])
        for code in sorted(old.codes.get(t, set()) - new.codes.get(t, set())):
            diff.add("removed_error_code", t, f"f replies no longer carry {code!r}", True)
        for code in sorted(new.codes.get(t, set()) - old.codes.get(t, set())):
            diff.add("added_error_code", t, f"f replies may now carry {code!r}", False)
    for t in sorted(set(new.requests) - set(old.requests)):
        diff.add("added_type", t, "a new message type", False)
    for t in sorted(old.pushes):
        if t not in new.pushes:
            diff.add("removed_push", f"push {t}", "the server no longer sends it", True)
        else:
            diff.read(f"push {t} p", old.pushes[t], new.pushes[t])
    for t in sorted(set(new.pushes) - set(old.pushes)):
        diff.add("added_push", f"push {t}", "a new push", False)
    for pattern, pushes in sorted(old.topics.items()):
        if pattern not in new.topics:
            diff.add("removed_topic", f"topic {pattern}", "no longer declared", True)
            continue
        for t in sorted(pushes - new.topics[pattern]):
            diff.add("removed_topic_push", f"topic {pattern}", f"no longer publishes {t}", True)
    for pattern in sorted(set(new.topics) - set(old.topics)):
        diff.add("added_topic", f"topic {pattern}", "a new topic", False)
    return sorted(diff.changes, key=lambda change: not change.breaking)
