from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import SERVERS, redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: REDIS_URL, else 127.0.0.1:6379, else a private redis-server."""
    with redis_server() as url:
        yield url


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    """The ASGI server a test's processes run under: each such test runs under daphne and
    under uvicorn (`tests.processes.server_process(..., server=server_name)`)."""
    return str(request.param)
