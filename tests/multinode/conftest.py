"""Fixtures of the multi-server tests: a run of two servers (A and B) on the suite's Redis,
under the servers a module's `fleet` names, with its users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.multinode.support import ASGI_APP, SETTINGS, end_run, make_users, new_run
from tests.processes import asgi_server


@pytest.fixture(scope="module")
def fleet() -> tuple[str, str]:
    """The servers A and B run under (a module may parametrize its own)."""
    return "daphne", "daphne"


@pytest.fixture(scope="module")
def env(
    fleet: tuple[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A run of its own per fleet: database, queue and channel prefix."""
    values = new_run(redis_url, tmp_path_factory.mktemp("multinode"))
    try:
        yield values
    finally:
        end_run(values)


@pytest.fixture(scope="module")
def users(env: dict[str, str]) -> dict[str, Any]:
    return make_users(env)


@pytest.fixture(scope="module")
def servers(fleet: tuple[str, str], env: dict[str, str]) -> Iterator[tuple[int, int]]:
    server_a, server_b = fleet
    with (
        asgi_server(ASGI_APP, SETTINGS, server=server_a, **env, MN_NAME="A") as a,
        asgi_server(ASGI_APP, SETTINGS, server=server_b, **env, MN_NAME="B") as b,
    ):
        yield a, b
