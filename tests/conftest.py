from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: a private redis-server of this run, or the one REDIS_URL names."""
    with redis_server() as url:
        yield url
