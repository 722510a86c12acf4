"""Settings of the example project.

Without `REDIS_URL` everything runs in one process: the in-memory channel layer and the
thread backend for deferred handlers. With `REDIS_URL` set, the channel layer is
`channels_redis` and deferred handlers go to RQ (run `python -m django rqworker default`
beside the server; `make demo` does). `EXAMPLE_DB` moves the sqlite file (the tests use
a temporary one), `ENVELOPE_TRACE_LOG` the JSON-lines trace log. `EXAMPLE_DEBUG=1` turns
`DEBUG` on, which the console's waterfall needs (`make demo` sets it unless told
otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

# A local demo, never a deployment: the key only signs the demo's sessions.
SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "envelope-router-example-not-secret")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"

REDIS_URL = os.environ.get("REDIS_URL", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "actors",
    "example",
]
if REDIS_URL:
    INSTALLED_APPS.append("django_rq")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "example.urls"
ASGI_APPLICATION = "example.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(HERE / "db.sqlite3")),
        # Deferred handlers write from worker threads while the server reads.
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300}}
    # Answers `f` at once when a job's work horse dies, instead of leaving the client at `r`.
    RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}
    ENVELOPE_DEFERRED = "rq"
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    ENVELOPE_DEFERRED = "thread"

# The example lets anonymous connections in; what needs a login says so per handler.
ENVELOPE_ALLOW_UNAUTHENTICATED = True
# The console reads its message types from the contract at /api/schema: published here
# even with DEBUG off (it is a demo; a production site leaves this unset).
ENVELOPE_SCHEMA_VIEW = True
ENVELOPE_SCHEMA_TITLE = "Envelope Router example"
ENVELOPE_SCHEMA_VERSION = "1.0.0"
ENVELOPE_TRACE_LOG = os.environ.get("ENVELOPE_TRACE_LOG") or str(HERE / "trace.log")

#: The demo user `example.demo` creates (the console's "log in" button uses it).
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"
