"""Over a real daphne process and a real websocket client."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import anyio
import pytest
import websockets

from tests.processes import Server, daphne_process

pytestmark = pytest.mark.slow


@pytest.fixture
def daphne() -> Iterator[Server]:
    with daphne_process("tests.actors.asgi_sample:application", "tests.settings") as server:
        yield server


async def test_request_and_reply_over_a_real_socket(daphne: Server) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{daphne.port}/ws/") as ws:
        await ws.send(json.dumps({"t": "t.echo", "i": "1", "p": {"text": "over tcp"}}))
        assert json.loads(await ws.recv()) == {
            "t": "t.echo",
            "i": "1",
            "s": "s",
            "p": {"text": "over tcp"},
        }
        await ws.send(b"\x00\x01")
        reply = json.loads(await ws.recv())
        assert (reply["s"], reply["p"]["code"]) == ("f", "bad_envelope")


async def test_shutdown_answers_what_the_mailbox_holds_then_closes_with_4012(
    daphne: Server,
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{daphne.port}/ws/") as ws:
        await ws.send(json.dumps({"t": "t.sleep", "i": "slow", "p": {"seconds": 0.5}}))
        await ws.send(json.dumps({"t": "t.echo", "i": "queued", "p": {"text": "x"}}))
        await anyio.sleep(0.1)  # both reached the server: one running, one queued
        daphne.process.send_signal(signal.SIGTERM)
        replies = [json.loads(await ws.recv()) for _ in range(2)]
        assert [(r["i"], r["s"]) for r in replies] == [("slow", "s"), ("queued", "s")]
        closing = json.loads(await ws.recv())
        assert closing == {"t": "connection.closing", "p": {"code": 4012, "reason": "restart"}}
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4012
    assert daphne.process.wait(10) is not None
