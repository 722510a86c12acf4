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

_REDIS = os.environ.get("BENCH_REDIS_URL")
CHANNEL_LAYERS = (
    {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Room for a whole fan-out burst per consumer: a full channel drops group
            # messages silently, which would make the fan-out figures meaningless.
            "CONFIG": {"hosts": [_REDIS], "capacity": 100_000},
        }
    }
    if _REDIS
    else {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)
