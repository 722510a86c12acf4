"""Over a real daphne process and a real websocket client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import anyio
import pytest
import websockets

from tests.processes import ROOT, free_port, python_env, wait_for_port

pytestmark = pytest.mark.slow


@pytest.fixture
def daphne() -> subprocess.Popen[bytes]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.actors.asgi_sample:application",
        ],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE="tests.settings"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process=proc)
    proc.port = port  # type: ignore[attr-defined]
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def test_request_and_reply_over_a_real_socket(daphne: subprocess.Popen[bytes]) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{daphne.port}/ws/") as ws:  # type: ignore[attr-defined]
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
    daphne: subprocess.Popen[bytes],
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{daphne.port}/ws/") as ws:  # type: ignore[attr-defined]
        await ws.send(json.dumps({"t": "t.sleep", "i": "slow", "p": {"seconds": 0.5}}))
        await ws.send(json.dumps({"t": "t.echo", "i": "queued", "p": {"text": "x"}}))
        await anyio.sleep(0.1)  # both reached the server: one running, one queued
        daphne.send_signal(signal.SIGTERM)
        replies = [json.loads(await ws.recv()) for _ in range(2)]
        assert [(r["i"], r["s"]) for r in replies] == [("slow", "s"), ("queued", "s")]
        closing = json.loads(await ws.recv())
        assert closing == {"t": "connection.closing", "p": {"code": 4012, "reason": "restart"}}
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 4012
    assert daphne.wait(10) is not None
