"""`actors` as a Django app: the `Connection` model, its admin page, the static client."""

from __future__ import annotations

from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "actors"
    verbose_name = "Envelope Router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Logging out closes the user's sockets (user_logged_out receiver); a password
        # change or deactivation too (_session's receivers).
        from django.conf import settings

        from actors import (
            _auth,  # noqa: F401
            checks,  # noqa: F401  (registers the system checks)
        )
        from actors._discovery import discover_handlers
        from actors._session import connect_signals

        connect_signals()
        if getattr(settings, "ENVELOPE_AUTODISCOVER", True):
            discover_handlers()
