"""`actors` as a Django app: the `Connection` model, its admin page, the static client."""

from __future__ import annotations

from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "actors"
    verbose_name = "Envelope Router"
    default_auto_field = "django.db.models.BigAutoField"
