"""`WorkerContext`: the `JobContext` a deferred handler gets on its worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from pydantic import BaseModel

from actors._topics import group_for
from envelope import Envelope, State, encode, wire_name
from handlers import JobContext

if TYPE_CHECKING:
    from actors._jobs import JobReplies


def load_user(pk: Any) -> Any:
    """The user with primary key `pk`, or an `AnonymousUser` (no pk, or deleted since)."""
    if pk is None:
        return AnonymousUser()
    user = get_user_model()._default_manager.filter(pk=pk).first()
    return user if user is not None else AnonymousUser()


class WorkerContext(JobContext):
    """`progress` sends at once; `send`, `publish`, `subscribe` and `leave` wait for the
    transaction to commit (and are dropped if it rolls back)."""

    __slots__ = ("_conn", "_log", "_replies", "_user", "envelope", "message")

    def __init__(
        self, req: dict[str, Any], message: BaseModel, user: Any, replies: JobReplies, log: Any
    ) -> None:
        self.envelope = Envelope(req["t"], req["i"], req["p"])
        self.message = message
        self._user = user
        self._conn: str | None = req["conn"]
        self._replies = replies
        self._log = log

    @property
    def user(self) -> Any:
        return self._user

    @property
    def connection(self) -> str | None:
        return self._conn

    @property
    def log(self) -> Any:
        return self._log

    def progress(self, model: BaseModel) -> None:
        self._log.info("job.progress")
        self._replies.send(State.RUNNING, model)

    def send(self, model: BaseModel) -> None:
        text = encode(wire_name(model), self.envelope.i, model)
        outbox = self._replies.outbox

        def push() -> None:
            if not outbox.connection_gone():
                outbox.to_connection(text)

        transaction.on_commit(push)

    def publish(self, topic: str, model: BaseModel) -> None:
        group = group_for(topic)
        text = encode(wire_name(model), self.envelope.i, model)
        outbox = self._replies.outbox
        transaction.on_commit(lambda: outbox.to_group(group, text))

    def subscribe(self, topic: str) -> None:
        """Add the connection to `topic`'s group after commit (the actor's own list of
        topics is not updated: the topic leaves with the group's expiry)."""
        group = group_for(topic)
        outbox = self._replies.outbox
        transaction.on_commit(lambda: outbox.group_add(group))

    def leave(self, topic: str) -> None:
        group = group_for(topic)
        outbox = self._replies.outbox
        transaction.on_commit(lambda: outbox.group_discard(group))
