"""A consumer of the default router, built without importing any handlers module."""

from actors import EnvelopeConsumer

application = EnvelopeConsumer.as_asgi()
