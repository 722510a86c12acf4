"""`actors` as a Django app: the `Connection` model, its admin page, the static client."""

from __future__ import annotations

from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "actors"
    verbose_name = "Envelope Router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Logging out closes the user's sockets (its user_logged_out receiver); so do a
        # password change and a deactivation (the actor's session receivers). The system
        # checks register themselves. Imported once the app registry is ready.
        from django.conf import settings

        from actors import (
            checks,  # noqa: F401
            topics,  # noqa: F401  (its logout receiver)
        )
        from actors._discovery import discover_handlers
        from actors.actor import connect_signals

        connect_signals()
        if getattr(settings, "ENVELOPE_AUTODISCOVER", True):
            discover_handlers()
