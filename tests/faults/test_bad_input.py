"""Bad input against a real daphne: every error reply stays small, unknown paths are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import websockets

from envelope import MAX_ERRORS, MAX_PAYLOAD_BYTES
from tests.faults.measure import events
from tests.processes import Server, daphne_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with daphne_process("tests.faults.app:application", "tests.faults.settings") as server:
        yield server


async def ask(server: Server, frame: str) -> str:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/") as ws:
        await ws.send(frame)
        reply = await ws.recv()
        assert isinstance(reply, str)
        return reply


async def test_a_frame_with_thousands_of_unknown_keys_gets_a_short_answer(server: Server) -> None:
    frame = {"t": "fault.echo", "i": "k", "p": {"text": "x"}}
    frame.update({f"key{n}": n for n in range(6500)})
    reply = await ask(server, json.dumps(frame))
    assert len(reply) < 1024
    p = json.loads(reply)["p"]
    assert p["code"] == "bad_envelope"
    assert p["message"].startswith("Unknown envelope keys: key0, key1, key2, key3, key4 and 6495")


async def test_a_payload_with_thousands_of_problems_lists_a_few(server: Server) -> None:
    frame = {"t": "fault.numbers", "i": "n", "p": {"values": ["not a number"] * 5000}}
    reply = await ask(server, json.dumps(frame))
    assert len(reply) < MAX_PAYLOAD_BYTES
    p = json.loads(reply)["p"]
    assert p["code"] == "invalid_payload"
    assert len(p["errors"]) == MAX_ERRORS
    assert p["more_errors"] == 5000 - MAX_ERRORS


async def test_a_handshake_to_a_path_with_no_route_is_refused_without_a_traceback(
    server: Server,
) -> None:
    for _ in range(3):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/nowhere/"):
                pass
        assert info.value.response.status_code == 403
    refused = [e for e in events(server, "connection.refused") if e["path"] == "/nowhere/"]
    assert len(refused) == 3
    assert "Traceback" not in server.output()
    # The server still serves the route it has.
    reply = await ask(server, json.dumps({"t": "fault.echo", "i": "e", "p": {"text": "ok"}}))
    assert json.loads(reply)["p"] == {"text": "ok"}
