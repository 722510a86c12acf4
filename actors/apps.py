"""`actors` as a Django app: the `Connection` model, its admin page, the static client."""

from __future__ import annotations

from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "actors"
    verbose_name = "Envelope Router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Logging out closes the user's sockets (its user_logged_out receiver), and the
        # system checks register themselves: imported once the app registry is ready.
        from actors import (
            checks,  # noqa: F401
            topics,  # noqa: F401  (its logout receiver)
        )
