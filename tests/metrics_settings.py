"""Settings of the metrics tests' processes: the RQ tests' (tests.deferred_settings), with
the metrics view at /metrics and a small mailbox, so that overload is cheap to provoke."""

from tests.deferred_settings import *  # noqa: F403

ROOT_URLCONF = "tests.actors.metrics_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ENVELOPE_MAILBOX_SIZE = 4
