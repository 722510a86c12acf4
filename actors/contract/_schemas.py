"""JSON Schema of every model of the contract: pydantic v1's, plus what the wire adds.

pydantic v1 leaves `None` out of the schema of an `Optional` field; the server sends
those fields as `null` (a reply or push carries every field of its model), so the
schema of a field that allows `None` is widened to `anyOf: [<its schema>, {"type":
"null"}]`. Models are named by their class name; when two classes share one, each is prefixed
with its module's name (`BuiltinsPong`, `MessagesPong`). They refer to each other
under `ref_prefix`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.schema import get_flat_models_from_models, get_model_name_map, model_process_schema

#: Where the AsyncAPI document keeps its schemas.
COMPONENTS = "#/components/schemas/"


class ModelSchemas:
    """The schemas of a set of models (and every model they nest), by name."""

    __slots__ = ("definitions", "names")

    def __init__(self, models: Iterable[type[BaseModel]], ref_prefix: str = COMPONENTS) -> None:
        wanted = list(dict.fromkeys(models))
        flat = get_flat_models_from_models(wanted)
        self.names: dict[Any, str] = readable_names(flat)
        self.definitions: dict[str, dict[str, Any]] = {}
        for model in wanted:
            own, nested, _ = model_process_schema(
                model, model_name_map=self.names, ref_prefix=ref_prefix
            )
            self.definitions.update(nested)
            self.definitions[self.names[model]] = own
        for model, name in self.names.items():
            if isinstance(model, type) and issubclass(model, BaseModel):
                _allow_null(model, self.definitions.get(name))
        self.definitions = dict(sorted(self.definitions.items()))

    def ref(self, model: type[BaseModel], ref_prefix: str = COMPONENTS) -> dict[str, str]:
        return {"$ref": f"{ref_prefix}{self.names[model]}"}


def readable_names(flat: set[Any]) -> dict[Any, str]:
    """Model (or enum) -> its schema name: the class name, module-prefixed on a clash."""
    by_name: dict[str, list[Any]] = {}
    for model in flat:
        by_name.setdefault(model.__name__, []).append(model)
    names: dict[Any, str] = {}
    for name, clashing in by_name.items():
        for model in clashing:
            if len(clashing) == 1:
                names[model] = name
            else:
                module = model.__module__.rsplit(".", 1)[-1].strip("_")
                names[model] = "".join(part.title() for part in module.split("_")) + name
    if len(set(names.values())) < len(names):
        return dict(get_model_name_map(flat))  # still ambiguous: pydantic's long names
    return names


def _allow_null(model: type[BaseModel], definition: dict[str, Any] | None) -> None:
    if definition is None:
        return
    properties = definition.get("properties", {})
    for field in model.__fields__.values():
        prop = properties.get(field.alias)
        if prop is None or not field.allow_none or _admits_null(prop):
            continue
        # Keep the title and description on the property, the type in the union.
        outer = {key: prop.pop(key) for key in ("title", "description", "default") if key in prop}
        properties[field.alias] = {**outer, "anyOf": [prop, {"type": "null"}]}


def _admits_null(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "null" or not prop:
        return True
    return any(option.get("type") == "null" for option in prop.get("anyOf", ()))


def standalone(schemas: ModelSchemas, title: str) -> dict[str, Any]:
    """One JSON Schema document holding every model under `definitions` (draft 7)."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "definitions": _rebase(schemas.definitions, COMPONENTS, "#/definitions/"),
    }


def _rebase(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                new + value[len(old) :]
                if key == "$ref" and isinstance(value, str) and value.startswith(old)
                else _rebase(value, old, new)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item, old, new) for item in node]
    return node
