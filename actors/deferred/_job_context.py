"""`WorkerContext`: the `JobContext` a deferred handler gets on its worker."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from pydantic import BaseModel

from actors.deferred._replies import JobReplies
from actors.publishing import (
    leave_on_commit,
    publish_on_commit,
    subscribe_on_commit,
    tell_on_commit,
)
from envelope import Envelope, State, encode, wire_name
from handlers import JobContext, checked_progress


class WorkerContext(JobContext):
    """`progress` sends at once; `send`, `publish`, `subscribe` and `leave` wait for the
    transaction to commit (and are dropped if it rolls back). Pushes go through the
    channel layer like the job's replies, so they keep their order with them."""

    __slots__ = ("_conn", "_log", "_progress", "_replies", "_user", "envelope", "message")

    def __init__(
        self,
        req: dict[str, Any],
        message: BaseModel,
        user: Any,
        replies: JobReplies,
        log: Any,
        progress: type[BaseModel] | None = None,
    ) -> None:
        self.envelope = Envelope(req["t"], req["i"], req["p"])
        self.message = message
        self._user = user
        self._conn: str | None = req["conn"]
        self._replies = replies
        self._log = log
        self._progress = progress  # the handler's `progress=`, checked on each update

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
        checked_progress(self._progress, model, self.envelope.t)
        self._log.info("job.progress")
        self._replies.send(State.RUNNING, model)

    def send(self, model: BaseModel) -> None:
        outbox = self._replies.outbox
        if outbox.via_layer:
            if self._conn is not None and not outbox.connection_gone():
                tell_on_commit(self._conn, model, i=self.envelope.i)
            return
        # No channel layer (a test harness): straight to the actor, after commit.
        text = encode(wire_name(model), self.envelope.i, model)
        transaction.on_commit(lambda: outbox.to_connection(text))

    def publish(self, topic: str, model: BaseModel) -> None:
        """To `topic` after commit; three or more pushes of one type to one topic in a row
        go out as one batch (see `actors.publishing._batch`)."""
        self._need_layer("publish")
        publish_on_commit(topic, model, i=self.envelope.i)

    def subscribe(self, topic: str) -> None:
        """Have the connection join `topic` after commit (its actor joins and lists it)."""
        self._need_layer("subscribe")
        subscribe_on_commit(self._conn, topic)  # type: ignore[arg-type]  # checked above

    def leave(self, topic: str) -> None:
        self._need_layer("leave")
        leave_on_commit(self._conn, topic)  # type: ignore[arg-type]

    def _need_layer(self, what: str) -> None:
        if not self._replies.outbox.via_layer or self._conn is None:
            raise RuntimeError(f"{what}() from a job needs CHANNEL_LAYERS to be configured")
