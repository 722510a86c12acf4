from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import SERVERS, redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: a private redis-server of this run, or the one REDIS_URL names."""
    with redis_server() as url:
        yield url


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    """The ASGI server a test's processes run under: each such test runs under daphne and
    under uvicorn (`tests.processes.server_process(..., server=server_name)`)."""
    return str(request.param)
