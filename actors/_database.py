"""Code that runs on a worker (an RQ job, a thread of the server) with Django's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections


@contextmanager
def database_work() -> Iterator[None]:
    """Close the database connections that are past `CONN_MAX_AGE` or broken, before
    and after the block, as Django does around each request: a worker's code is not a
    request, so nothing else would."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()
