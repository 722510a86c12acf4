"""Connection tracking: the async signals at accept and close, and `Connection` rows.

With `ENVELOPE_CONNECTIONS_QUEUE` set, accept and close enqueue `record_open` /
`record_close` jobs (on the deferred backend: RQ, or the thread pool, which ignores
the queue's name); with `ENVELOPE_TIMESTAMP_QUEUE` set, a frame received at least
`ENVELOPE_CONNECTION_UPDATE_INTERVAL` seconds after the last update enqueues
`record_activity`. Queues do not promise order, so each job is a conditional update:
a close that arrives first leaves the row offline for good.

`record_activity` retries its update a few times on a database lock (see its
docstring): the next activity job may come a whole interval later, or never.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from actors._settings import EnvelopeSettings, configured_queues
from actors._users import user_pk
from actors.deferred import backend_kind, get_backend
from actors.signals import (
    connection_closed,
    connection_created,
    consumer_closed,
    consumer_connected,
)
from actors.tracing import logger

Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], Any]


def check_tracking(settings: EnvelopeSettings) -> None:
    """With RQ, the tracking queues must be in `RQ_QUEUES` (`ImproperlyConfigured`)."""
    wanted = {
        "ENVELOPE_CONNECTIONS_QUEUE": settings.connections_queue,
        "ENVELOPE_TIMESTAMP_QUEUE": settings.timestamp_queue,
    }
    if not any(wanted.values()) or backend_kind(settings) != "rq":
        return
    queues = configured_queues()
    for name, queue in wanted.items():
        if queue and queue not in queues:
            raise ImproperlyConfigured(
                f"{name} = {queue!r} is not in RQ_QUEUES (configured: "
                f"{', '.join(sorted(queues)) or 'none'}); add it, or use one of those"
            )


class ConnectionWatch:
    """One per consumer: what it calls at accept, for each frame, and at close."""

    __slots__ = (
        "_closed",
        "_next_touch",
        "actor",
        "address",
        "backend",
        "consumer",
        "settings",
        "user_pk",
    )

    def __init__(self, settings: EnvelopeSettings, consumer: Any, actor: Any) -> None:
        self.settings = settings
        self.consumer = consumer
        self.actor = actor
        self.address: str | None = actor.address
        self.user_pk = user_pk(actor.user)
        tracking = settings.connections_queue or settings.timestamp_queue
        self.backend = get_backend(settings) if tracking and self.address else None
        self._next_touch = time.monotonic() + settings.connection_update_interval
        self._closed = False

    @property
    def _sender(self) -> Any:
        return type(self.consumer)

    async def _enqueue(self, queue: str, fn: str, *args: Any) -> None:
        assert self.backend is not None
        try:
            await self.backend.aenqueue_call(queue, fn, *args)
        except Exception as exc:  # Redis down: the connection lives on without its row
            logger.warning(
                "connection.job_not_queued", conn=self.address, fn=fn, error=type(exc).__name__
            )

    async def opened(self) -> None:
        await consumer_connected.send_robust(
            sender=self._sender,
            consumer=self.consumer,
            user=self.actor.user,
            address=self.address,
        )
        queue = self.settings.connections_queue
        if queue and self.backend is not None:
            await self._enqueue(
                queue, "actors._tracking.record_open", self.address, self.user_pk, timezone.now()
            )

    def touch(self, spawn: Spawn) -> None:
        """A frame arrived: keep `last_action` fresh, at most once per interval."""
        queue = self.settings.timestamp_queue
        if queue is None or self.backend is None:
            return
        now = time.monotonic()
        if now < self._next_touch:
            return
        self._next_touch = now + self.settings.connection_update_interval
        at = timezone.now()
        spawn(lambda: self._enqueue(queue, "actors._tracking.record_activity", self.address, at))

    async def closed(self, code: int | None) -> None:
        """The socket closed with `code` (None: the server went away); once only."""
        if self._closed:
            return
        self._closed = True
        backend = self.backend
        queue = self.settings.connections_queue
        if queue and backend is not None:
            await self._enqueue(
                queue,
                "actors._tracking.record_close",
                self.address,
                self.user_pk,
                timezone.now(),
                code,
            )
        deferred = self.actor.config.backend
        if deferred is not None:
            await deferred.connection_closed(self.address)
        await consumer_closed.send_robust(
            sender=self._sender,
            consumer=self.consumer,
            user=self.actor.user,
            address=self.address,
            code=code,
        )


# -- the jobs (run on a worker) ------------------------------------------------------


def record_open(address: str, user_pk: Any, at: Any) -> None:
    """Create the row online; if the close job ran first, it stays offline."""
    from actors.models import Connection

    with transaction.atomic():
        row, created = Connection.objects.get_or_create(
            channel_name=address,
            defaults={"user_id": user_pk, "online": True, "online_at": at, "last_action": at},
        )
        if not created:
            Connection.objects.filter(pk=row.pk, offline_at__isnull=True).update(
                online=True, online_at=at
            )
            Connection.objects.filter(pk=row.pk, online_at__isnull=True).update(online_at=at)
            row.refresh_from_db()
        transaction.on_commit(lambda: connection_created.send(sender=Connection, connection=row))


def record_close(address: str, user_pk: Any, at: Any, code: int | None) -> None:
    """Mark the row offline with its close code (creating it when the open job is late)."""
    from actors.models import Connection

    with transaction.atomic():
        row, created = Connection.objects.get_or_create(
            channel_name=address,
            defaults={"user_id": user_pk, "online": False, "offline_at": at, "close_code": code},
        )
        if not created:
            Connection.objects.filter(pk=row.pk).update(
                online=False, offline_at=at, close_code=code
            )
            row.refresh_from_db()
        transaction.on_commit(lambda: connection_closed.send(sender=Connection, connection=row))


# Attempts of the activity update, and the first pause between two (doubled each time):
# 20 + 40 + 80 + 160 ms at most before the last attempt's error is raised.
ACTIVITY_ATTEMPTS = 5
ACTIVITY_BACKOFF = 0.02


def record_activity(address: str, at: Any) -> None:
    """Move `last_action` forward, only on a row that is still online.

    The update is tried again, up to `ACTIVITY_ATTEMPTS` times with a doubling pause, when
    it fails with `OperationalError` (a lock not granted, a deadlock, a serialization
    failure): unlike the open and close jobs, nothing would repair a lost activity update
    until the socket's next frame past the interval, minutes later. SQLite in shared-cache
    mode (the in-memory test database) answers "database table is locked" at once while
    another connection reads the table, where a server database would wait. Each attempt
    is its own `atomic()` block, so a failed one is rolled back (to a savepoint inside a
    caller's transaction) and the next can run. The update is idempotent (it only moves
    `last_action` forward), so trying it again is safe. Other database errors (integrity,
    programming) are not retried, and the last `OperationalError` is raised: the job fails
    as before (`job.call_failed` on the thread backend).

    Retrying here is simpler than keeping the newest unwritten activity for the next job:
    that job may run in another process, or never come.
    """
    from actors.models import Connection

    rows = Connection.objects.filter(
        channel_name=address, online=True, offline_at__isnull=True
    ).filter(Q(last_action__isnull=True) | Q(last_action__lt=at))
    for attempt in range(ACTIVITY_ATTEMPTS):
        try:
            with transaction.atomic():
                rows.update(last_action=at)
            return
        except OperationalError:
            if attempt == ACTIVITY_ATTEMPTS - 1:
                raise
            time.sleep(ACTIVITY_BACKOFF * 2**attempt)
