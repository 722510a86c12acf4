from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: REDIS_URL, else 127.0.0.1:6379, else a private redis-server."""
    with redis_server() as url:
        yield url
