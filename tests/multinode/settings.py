"""Settings of the processes of the multi-server test: two daphne servers and RQ workers.

What must be unique per run comes from the environment, so that runs sharing one Redis
never see each other's channels or jobs:

    MN_DB      the sqlite file the servers and the workers share
    MN_REDIS   Redis for the channel layer and the queue
    MN_QUEUE   the RQ queue name
    MN_RUN     a unique run id: the channel layer's prefix
    MN_PRESENCE_HEARTBEAT, MN_PRESENCE_TTL, MN_PRESENCE_WINDOW   presence's timings
"""

import os

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "django_rq",
    "actors",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.multinode.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("MN_DB", "/tmp/envelope-multinode.sqlite3"),
        "OPTIONS": {"timeout": 20},  # servers and workers write the same file
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# The test names its own Redis; nothing listens on port 9: never the local Redis.
_REDIS = os.environ.get("MN_REDIS", "redis://127.0.0.1:9/0")
_QUEUE = os.environ.get("MN_QUEUE", "mn")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_REDIS], "prefix": f"mn-{os.environ.get('MN_RUN', 'mn')}"},
    }
}
RQ_QUEUES = {_QUEUE: {"URL": _REDIS}}
RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}

ENVELOPE_DEFERRED = "rq"
ENVELOPE_ALLOW_UNAUTHENTICATED = False

ENVELOPE_PRESENCE_HEARTBEAT = float(os.environ.get("MN_PRESENCE_HEARTBEAT", "5"))
ENVELOPE_PRESENCE_TTL = float(os.environ.get("MN_PRESENCE_TTL", "15"))
ENVELOPE_PRESENCE_WINDOW = float(os.environ.get("MN_PRESENCE_WINDOW", "0.2"))
