"""Settings for the processes of the RQ tests (daphne servers and rqworkers).

Everything that must be unique per test run comes from the environment, so that
parallel runs sharing one Redis do not see each other's jobs or channels:

    ENVELOPE_TEST_DB      sqlite file shared by the server and its workers
    ENVELOPE_TEST_REDIS   Redis for the channel layer
    ENVELOPE_TEST_RQ      Redis for the queues (default: ENVELOPE_TEST_REDIS)
    ENVELOPE_TEST_QUEUE   the RQ queue name (also read by tests/actors/deferred_app.py)
    ENVELOPE_TEST_RUN     a unique run id, for the channel layer prefix
    ENVELOPE_TEST_DRAIN_SECONDS, ENVELOPE_TEST_DEFERRED   for the shutdown fault tests
    ENVELOPE_TEST_TRACKING=0, ENVELOPE_TEST_LAYER_CONNECTIONS   for the storm tests
    ENVELOPE_TEST_RUNNING_HOLD   ENVELOPE_RUNNING_HOLD of the run's workers
    ENVELOPE_TEST_WORKER_GC_FREEZE=0   ENVELOPE_WORKER_GC_FREEZE = False on the run's workers
    ENVELOPE_TEST_OTEL_SPANS   a file the process's OpenTelemetry spans are written to
"""

import os

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "django_rq",
    "actors",
    "tests.actors.deferred_apps.DeferredTestsConfig",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("ENVELOPE_TEST_DB", "/tmp/envelope-deferred-tests.sqlite3"),
        # The server and the worker write the same file: wait for each other's locks.
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# A run names its own Redis (tests/actors/rq_support.run_env); without one (a `migrate`),
# nothing listens on port 9: never the local Redis.
_REDIS = os.environ.get("ENVELOPE_TEST_REDIS", "redis://127.0.0.1:9/0")
_QUEUE = os.environ.get("ENVELOPE_TEST_QUEUE", "dtest")
_RUN = os.environ.get("ENVELOPE_TEST_RUN", "dtest")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_REDIS], "prefix": f"asgi-{_RUN}"},
    }
}
RQ_QUEUES = {_QUEUE: {"URL": os.environ.get("ENVELOPE_TEST_RQ", _REDIS)}}
RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}

ENVELOPE_DEFERRED = "rq"
ENVELOPE_ALLOW_UNAUTHENTICATED = True
if os.environ.get("ENVELOPE_TEST_TRACKING", "1") == "1":
    ENVELOPE_CONNECTIONS_QUEUE = _QUEUE
    ENVELOPE_TIMESTAMP_QUEUE = _QUEUE
ENVELOPE_LAYER_CONNECTIONS = int(os.environ.get("ENVELOPE_TEST_LAYER_CONNECTIONS", "16"))
ENVELOPE_CONNECTION_UPDATE_INTERVAL = float(os.environ.get("ENVELOPE_TEST_INTERVAL", "1"))
if "ENVELOPE_TEST_RUNNING_HOLD" in os.environ:
    ENVELOPE_RUNNING_HOLD = float(os.environ["ENVELOPE_TEST_RUNNING_HOLD"])
if "ENVELOPE_TEST_WORKER_GC_FREEZE" in os.environ:
    ENVELOPE_WORKER_GC_FREEZE = os.environ["ENVELOPE_TEST_WORKER_GC_FREEZE"] == "1"
ENVELOPE_DRAIN_SECONDS = float(os.environ.get("ENVELOPE_TEST_DRAIN_SECONDS", "5"))
if os.environ.get("ENVELOPE_TEST_DEFERRED"):  # "thread": the same handlers in-process
    ENVELOPE_DEFERRED = os.environ["ENVELOPE_TEST_DEFERRED"]

if os.environ.get("ENVELOPE_TEST_ADMIN"):
    # The admin page test renders /admin/actors/connection/ with Django's test client.
    INSTALLED_APPS += ["django.contrib.admin", "django.contrib.messages"]
    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ]
    ROOT_URLCONF = "tests.actors.admin_urls"
    ALLOWED_HOSTS = ["testserver"]

if os.environ.get("ENVELOPE_TEST_OTEL_SPANS"):  # the OpenTelemetry test's worker
    from tests.otel_export import export_spans_to

    export_spans_to(os.environ["ENVELOPE_TEST_OTEL_SPANS"])
