"""An app for the RQ test processes: imports the test handlers and signal receivers at
start-up, so that a work horse forked from the worker has them."""

from django.apps import AppConfig


class DeferredTestsConfig(AppConfig):
    name = "tests.actors"
    label = "dtests"

    def ready(self) -> None:
        import tests.actors.deferred_app  # noqa: F401
