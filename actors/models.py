"""`Connection`: one row per websocket connection, written by the connection jobs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Connection(models.Model):
    """A websocket connection, as recorded by `ENVELOPE_CONNECTIONS_QUEUE` jobs.

    `online` is True from the connect job until the close job; a connect job that runs
    after the close job (queues do not promise order) leaves it offline.
    """

    user: models.ForeignKey[Any, Any] = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="envelope_connections",
    )
    user_id: int | None
    channel_name: models.CharField[str, str] = models.CharField(max_length=200, unique=True)
    online: models.BooleanField[bool, bool] = models.BooleanField(default=False, db_index=True)
    online_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)
    offline_at: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)
    last_action: models.DateTimeField[Any, Any] = models.DateTimeField(null=True, blank=True)
    close_code: models.IntegerField[Any, Any] = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ("-online_at",)

    def __str__(self) -> str:
        state = "online" if self.online else "offline"
        return f"{self.channel_name} ({state}, user {self.user_id})"
