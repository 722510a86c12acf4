"""Clients that stop reading, against real servers: bounded memory, closed with 4008.

Each test runs the fault app under daphne and under uvicorn with a small outbound
budget, drives a client that never reads (a raw socket with a tiny receive buffer) next
to a normal one, and checks what the server did: closed the silent one, logged it with
figures, kept its RSS within the budget plus a small constant, and kept serving the
normal one.

Under daphne, whose `send` never waits, the silent client is closed when the server
holds more than its budget for it. Under uvicorn `send` waits for the socket instead
(uvicorn holds at most its 64 KiB high-water mark), so the silent client's actor stops
and the client is closed when nothing drains for `ENVELOPE_SEND_TIMEOUT`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractContextManager

import anyio
import pytest
import websockets

from benchmarks._procs import rss_kib
from tests.faults.clients import SilentClient
from tests.faults.measure import events, peak_rss, wait_until
from tests.processes import Server, server_process
from tests.scrape import parsed, scrape, value

pytestmark = pytest.mark.slow

BUDGET = 256 * 1024
#: RSS a slow client may cost beyond its budget: the frame being sent, Twisted joining
#: its buffer (a copy), the allocator's slack. Measured at 0.5-1.1 MiB on both servers.
SLACK = 3 * 1024 * 1024


def fault_server(
    server_name: str, budget: int, send_timeout: float
) -> AbstractContextManager[Server]:
    """The fault app under `server_name`, with this outbound budget and send timeout."""
    return server_process(
        "tests.faults.app:application",
        "tests.faults.settings",
        server=server_name,
        FAULT_MAX_OUTBOUND_BYTES=str(budget),
        FAULT_SEND_TIMEOUT=str(send_timeout),
    )


@pytest.fixture
def server(server_name: str) -> Iterator[Server]:
    # daphne must reach the budget first; uvicorn never can (its send waits).
    with fault_server(server_name, BUDGET, 30 if server_name == "daphne" else 2) as server:
        yield server


@pytest.fixture
def quick_timeout_server(server_name: str) -> Iterator[Server]:
    # A budget it never reaches: only the send timeout can close the silent client.
    with fault_server(server_name, 256 * 1024 * 1024, 1) as server:
        yield server


def expected_cause(server_name: str) -> str:
    return "over_budget" if server_name == "daphne" else "not_draining"


async def echo(ws: websockets.ClientConnection, text: str) -> dict[str, object]:
    await ws.send(json.dumps({"t": "fault.echo", "i": "e1", "p": {"text": text}}))
    return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def subscribe_silently(silent: SilentClient, publisher: websockets.ClientConnection) -> None:
    """Subscribe the silent client to `fault.feed` (it reads no answer) and wait until
    the subscription is in place: a flood of one is answered after it reached the topic."""
    silent.send({"t": "topic.subscribe", "i": "sub", "p": {"topic": "fault.feed"}})
    await publisher.send(json.dumps({"t": "fault.flood", "i": "f0", "p": {"count": 1, "size": 0}}))
    assert json.loads(await publisher.recv())["s"] == "s"


def flood_echo(client: SilentClient, count: int) -> int:
    """Send echo requests until the server drops the client; how many were sent."""
    text = "y" * 1000
    for n in range(count):
        if not client.send({"t": "fault.echo", "i": str(n), "p": {"text": text}}):
            return n
    return count


async def test_a_client_that_never_reads_its_replies_is_closed_at_its_budget(
    server: Server, server_name: str
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/") as normal:
        assert (await echo(normal, "warm up"))["s"] == "s"
        before = rss_kib(server.process.pid)
        with SilentClient(server.port) as silent, peak_rss(server.process.pid) as peak:
            # 20 MB of replies: far more than the kernel's buffers and the budget.
            await anyio.to_thread.run_sync(flood_echo, silent, 20_000)
            await anyio.to_thread.run_sync(
                wait_until, silent.is_reset, 10, "the silent client was not dropped"
            )
            grown = peak() - before
        (slow,) = events(server, "connection.slow")
        assert slow["cause"] == expected_cause(server_name)
        found = parsed(await anyio.to_thread.run_sync(scrape, server.port))
        closes = "envelope_slow_reader_closes_total"
        assert value(found, closes, cause=expected_cause(server_name)) == 1
        if server_name == "daphne":
            assert slow["held_bytes"] > BUDGET
        assert slow["max_outbound_bytes"] == BUDGET
        assert grown * 1024 < BUDGET + SLACK, f"RSS grew {grown} KiB"
        # The other connection never noticed.
        assert (await echo(normal, "still here"))["p"] == {"text": "still here"}


async def test_a_subscriber_that_never_reads_its_pushes_is_closed_at_its_budget(
    server: Server, server_name: str
) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/") as publisher:
        assert (await echo(publisher, "warm up"))["s"] == "s"
        with SilentClient(server.port) as silent:
            await subscribe_silently(silent, publisher)
            before = rss_kib(server.process.pid)
            with peak_rss(server.process.pid) as peak:
                # 3,000 pushes of 4 KB: 12 MB for a subscriber that reads none of it.
                await publisher.send(
                    json.dumps({"t": "fault.flood", "i": "f1", "p": {"count": 3000, "size": 4000}})
                )
                reply = json.loads(await publisher.recv())
                await anyio.to_thread.run_sync(
                    wait_until, silent.is_reset, 10, "the silent subscriber was not dropped"
                )
                grown = peak() - before
        assert (reply["i"], reply["s"], reply["p"]) == ("f1", "s", {"count": 3000})
        (slow,) = events(server, "connection.slow")
        # Under daphne the socket's buffer passes the budget first; under uvicorn the
        # actor waits in send, and the pushes queued behind it pass it.
        assert slow["cause"] == "over_budget"
        assert grown * 1024 < BUDGET + SLACK, f"RSS grew {grown} KiB"
        assert (await echo(publisher, "still here"))["p"] == {"text": "still here"}


async def test_a_subscriber_whose_pushes_do_not_drain_in_time_is_closed(
    quick_timeout_server: Server,
) -> None:
    server = quick_timeout_server
    with SilentClient(server.port) as silent:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/") as publisher:
            await subscribe_silently(silent, publisher)
            # Enough to fill the kernel's buffers and leave the server holding some: then
            # nothing more is sent, and the server must notice by itself.
            await publisher.send(
                json.dumps({"t": "fault.flood", "i": "f1", "p": {"count": 2000, "size": 4000}})
            )
            assert json.loads(await publisher.recv())["s"] == "s"
            await anyio.to_thread.run_sync(
                wait_until, silent.is_reset, 10, "the silent subscriber was not dropped"
            )
            (slow,) = events(server, "connection.slow")
            assert slow["cause"] == "not_draining"
            assert slow["lagging_seconds"] >= 1
            assert slow["held_bytes"] < 256 * 1024 * 1024
            assert (await echo(publisher, "still here"))["p"] == {"text": "still here"}
