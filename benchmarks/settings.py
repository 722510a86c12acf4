"""Django settings for the benchmark processes (in-process scenarios and the daphne server)."""

import os

SECRET_KEY = "benchmarks-only"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ASGI_APPLICATION = "benchmarks.server.application"
ENVELOPE_ALLOW_UNAUTHENTICATED = True
# Prometheus metrics are off unless a scenario asks (BENCH_METRICS=on): the figures of
# the library alone stay comparable with runs made before metrics existed.
ENVELOPE_METRICS = os.environ.get("BENCH_METRICS", "off") == "on"
# The servers freeze their start-up out of the garbage collector, as docs/servers.md
# advises a production site to (BENCH_GC_FREEZE=off: not).
ENVELOPE_SERVER_GC_FREEZE = os.environ.get("BENCH_GC_FREEZE", "on") == "on"
# The soak scenario sets a budget of its own; the others never come near the default.
ENVELOPE_MAX_OUTBOUND_BYTES = int(os.environ.get("BENCH_MAX_OUTBOUND_BYTES", 1024 * 1024))

_REDIS = os.environ.get("BENCH_REDIS_URL")
CHANNEL_LAYERS = (
    {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Room for a whole fan-out burst per consumer: a full channel drops group
            # messages silently, which would make the fan-out figures meaningless.
            # A prefix of its own: a shared Redis keeps other users' keys apart.
            "CONFIG": {
                "hosts": [_REDIS],
                "capacity": 100_000,
                "prefix": os.environ.get("BENCH_LAYER_PREFIX", "asgi-bench"),
            },
        }
    }
    if _REDIS
    else {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)

# The `deferred` scenario: a real RQ queue and worker, and a database for the jobs'
# transactions (a file shared by the server and the worker).
_RQ = os.environ.get("BENCH_RQ_URL")
if _RQ:
    BENCH_QUEUE = os.environ["BENCH_QUEUE"]
    INSTALLED_APPS = [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "channels",
        "django_rq",
        "actors",
    ]
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["BENCH_DB"],
            "OPTIONS": {"timeout": 20},
            # As a production site sets it: a non-forking worker keeps its connection
            # across jobs (checked before each one), which is part of what it saves. The
            # same setting for both workers; a forking worker's work horse is a new
            # process per job, so it opens a connection per job whatever this says.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A burst's replies (q, r, s per request) wait in the server's channel until
            # daphne reads them: the default capacity (100) would drop some (ChannelFull).
            "CONFIG": {"hosts": [_RQ], "prefix": f"asgi-{BENCH_QUEUE}", "capacity": 100_000},
        }
    }
    # Two queues, one per worker class (benchmarks._jobs): both kinds of worker stay
    # running while the scenario alternates bursts between them.
    RQ_QUEUES = {BENCH_QUEUE: {"URL": _RQ}, f"{BENCH_QUEUE}-forking": {"URL": _RQ}}
    RQ = {"WORKER_CLASS": "actors.workers.EnvelopeWorker"}
    ENVELOPE_DEFERRED = "rq"
# Slower runs (a server under callgrind: `benchmarks.server_job_instructions`) give the
# enqueue and the layer's reads the time they need.
if os.environ.get("BENCH_SLOW"):
    ENVELOPE_QUEUE_TIMEOUT = ENVELOPE_LAYER_TIMEOUT = 120.0
