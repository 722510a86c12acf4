"""Settings of a project with an installed app holding a handlers.py (run in subprocesses:
the default router it fills is process-wide). `TEST_DISCOVERY_*` variables vary it."""

import os

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.actors.discovered_app"]  # noqa: F405
ASGI_APPLICATION = "tests.actors.discovery_asgi.application"
ENVELOPE_AUTODISCOVER = os.environ.get("TEST_DISCOVERY_AUTODISCOVER", "1") == "1"
ENVELOPE_CHECK_ORIGIN = os.environ.get("TEST_DISCOVERY_CHECK_ORIGIN", "1") == "1"
ALLOWED_HOSTS = os.environ.get("TEST_DISCOVERY_ALLOWED_HOSTS", "example.com").split(",")
