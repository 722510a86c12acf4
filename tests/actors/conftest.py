from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.deferred import ThreadBackend


@pytest.fixture
def backend() -> Iterator[ThreadBackend]:
    """A real thread pool for deferred handlers, shut down (jobs finished) after the test."""
    pool = ThreadBackend(workers=2)
    yield pool
    pool.shutdown(wait=True)
