"""`actors` as a Django app: the `Connection` model, its admin page, the static client."""

from __future__ import annotations

from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "actors"
    verbose_name = "Envelope Router"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Logging out closes the user's sockets (its user_logged_out receiver); a password
        # change or a deactivation too (actors.actor._session's receivers). The system
        # checks register themselves. Imported once the app registry is ready.
        from django.conf import settings

        from actors import checks  # noqa: F401
        from actors._discovery import discover_handlers
        from actors.actor._session import connect_signals
        from actors.topics import _logout  # noqa: F401

        connect_signals()
        if getattr(settings, "ENVELOPE_AUTODISCOVER", True):
            discover_handlers()
