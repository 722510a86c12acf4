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
            "CONFIG": {"hosts": [_REDIS]},
        }
    }
    if _REDIS
    else {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)
