"""`@message("wire.name")`: a pydantic model with a wire name, and the name <-> model table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from envelope._envelope import NAME_PATTERN

M = TypeVar("M", bound=type[BaseModel])

#: The attribute that holds a model's wire name.
WIRE_NAME = "__envelope_name__"


class MessageDefinitionError(TypeError):
    """A `@message` declaration is wrong: bad name, not a model, or a duplicate name."""


class MessageRegistry:
    """Wire name <-> model. One name, one model: a second model under a name is an error."""

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, type[BaseModel]] = {}

    def register(self, name: str, model: type[BaseModel]) -> None:
        existing = self._by_name.get(name)
        if existing is not None and _origin(existing) != _origin(model):
            raise MessageDefinitionError(
                f"message name {name!r} is already used by {_origin(existing)}; "
                f"{_origin(model)} needs another name"
            )
        self._by_name[name] = model

    def get(self, name: str) -> type[BaseModel] | None:
        return self._by_name.get(name)

    def __getitem__(self, name: str) -> type[BaseModel]:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no message is named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


#: Every `@message` model of the process.
messages = MessageRegistry()


def _origin(model: type) -> str:
    return f"{model.__module__}.{model.__qualname__}"


def message(name: str, *, registry: MessageRegistry | None = None) -> Callable[[M], M]:
    """Give a pydantic model a wire name, so it can be received, replied and pushed.

    >>> @message("chat.send")
    ... class ChatSend(BaseModel):
    ...     room: str
    ...     text: str
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise MessageDefinitionError(
            f"@message({name!r}): a message name is 1-100 chars of A-Za-z0-9._:-"
        )

    def decorate(model: M) -> M:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise MessageDefinitionError(
                f"@message({name!r}) decorates {model!r}: it must be a pydantic BaseModel subclass"
            )
        (registry if registry is not None else messages).register(name, model)
        setattr(model, WIRE_NAME, name)
        return model

    return decorate


def wire_name(model: BaseModel | type[BaseModel]) -> str:
    """The wire name of a `@message` model (or instance); `TypeError` for any other model."""
    cls = model if isinstance(model, type) else type(model)
    # Read from the class itself, so a subclass does not inherit its parent's name.
    name: Any = cls.__dict__.get(WIRE_NAME)
    if name is None:
        raise TypeError(
            f"{cls.__qualname__} has no wire name: decorate it with @message('some.name')"
        )
    return str(name)
