"""The interfaces handlers are typed against. The runtime (`actors`) implements them."""

from __future__ import annotations

import abc
from typing import Any

from pydantic import BaseModel

from envelope import Envelope


class BaseContext(abc.ABC):
    """What every handler gets: the request, its user and connection, a bound logger."""

    __slots__ = ()

    envelope: Envelope
    message: BaseModel

    @property
    @abc.abstractmethod
    def user(self) -> Any: ...

    @property
    @abc.abstractmethod
    def connection(self) -> str | None: ...

    @property
    @abc.abstractmethod
    def log(self) -> Any: ...


class Context(BaseContext):
    """What an `async def` handler gets, inside its connection's actor.

    - `envelope`: the request (`t`, `i`); `message`: its validated payload model;
    - `user`: the connection's user (may be anonymous); `connection`: the connection's
      address (its channel name, usable with `tell`); `scope`: the ASGI scope;
    - `log`: a structlog logger bound to `i`, `t`, the connection and the user.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def scope(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def send(self, model: BaseModel) -> None:
        """Push `model` to this connection (its `t` is the model's wire name)."""

    @abc.abstractmethod
    async def progress(self, model: BaseModel) -> None:
        """Send an `r` reply to this request with `model` as progress."""

    @abc.abstractmethod
    async def publish(self, topic: str, model: BaseModel) -> None:
        """Push `model` to every connection subscribed to `topic`."""

    @abc.abstractmethod
    async def subscribe(self, topic: str) -> None:
        """Subscribe this connection to `topic` (no permission check: the handler decided)."""

    @abc.abstractmethod
    async def leave(self, topic: str) -> None:
        """Unsubscribe this connection from `topic`."""


class JobContext(BaseContext):
    """What a deferred (`def`) handler gets, on a worker, inside `transaction.atomic()`.

    The same as `Context`, synchronously: `user` is loaded from the database, and
    `send` / `publish` go out only after the transaction commits.
    """

    __slots__ = ()

    @abc.abstractmethod
    def send(self, model: BaseModel) -> None:
        """Push `model` to the requesting connection after commit."""

    @abc.abstractmethod
    def progress(self, model: BaseModel) -> None:
        """Send an `r` reply with `model` as progress, now."""

    @abc.abstractmethod
    def publish(self, topic: str, model: BaseModel) -> None:
        """Push `model` to `topic` after commit."""

    @abc.abstractmethod
    def subscribe(self, topic: str) -> None:
        """Subscribe the requesting connection to `topic` after commit (no permission check)."""

    @abc.abstractmethod
    def leave(self, topic: str) -> None:
        """Unsubscribe the requesting connection from `topic` after commit."""
