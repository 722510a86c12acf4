"""`ENVELOPE_SERVER_GC_FREEZE`: a server process moves its start-up objects out of the
garbage collector's reach at its first connection, and only when asked."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import websockets
from django.core.exceptions import ImproperlyConfigured

from actors import EnvelopeSettings
from tests.processes import Server, server_process

APP = "tests.actors.asgi_gc:application"


@pytest.fixture
def server(server_name: str) -> Iterator[Server]:
    with server_process(APP, "tests.settings", server=server_name) as running:
        yield running


async def frozen_objects(server: Server, path: str) -> int:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/{path}") as ws:
        await ws.send(json.dumps({"t": "gc.state", "i": "g1"}))
        reply = json.loads(await ws.recv())
    assert reply["s"] == "s", reply
    return int(reply["p"]["frozen"])


@pytest.mark.slow
async def test_a_server_freezes_its_start_up_only_when_asked(server: Server) -> None:
    # Off by default: connections come and go, nothing is frozen.
    assert await frozen_objects(server, "ws/") == 0
    assert await frozen_objects(server, "ws/") == 0
    # A consumer with the setting on: its first connection freezes the process's
    # start-up (Django, the application, the libraries: tens of thousands of objects).
    frozen = await frozen_objects(server, "ws/frozen/")
    assert frozen > 10_000
    # Once per process: later connections, on either path, find it frozen, and not
    # again (a second freeze would add what the connections made since; the count
    # itself moves by a few dozen as frozen objects are freed or dicts re-tracked).
    for path in ("ws/frozen/", "ws/"):
        assert abs(await frozen_objects(server, path) - frozen) < 1_000
    assert server.log.read_text().count("server.gc_frozen") == 1


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_setting_is_a_boolean(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_SERVER_GC_FREEZE"):
        EnvelopeSettings.from_django(server_gc_freeze=value)
