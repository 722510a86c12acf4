"""The admin page for `Connection` rows (read-only: the jobs write them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from actors.models import Connection

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Connection]
else:
    _ModelAdmin = admin.ModelAdmin  # not subscriptable at run time


@admin.register(Connection)
class ConnectionAdmin(_ModelAdmin):
    list_display = (
        "channel_name",
        "user",
        "online",
        "online_at",
        "offline_at",
        "last_action",
        "close_code",
    )
    list_filter = ("online",)
    search_fields = ("channel_name",)
    raw_id_fields = ("user",)
    date_hierarchy = "online_at"
    readonly_fields = list_display

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False
