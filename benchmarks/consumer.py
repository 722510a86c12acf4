"""Scenario `consumer`: per-message cost through the ASGI consumer, without a network.

`channels.testing.WebsocketCommunicator` drives the `EnvelopeConsumer` (echo router)
and a stock `AsyncJsonWebsocketConsumer` echo in the same process, one message at a
time (send, then wait for the reply), in interleaved rounds. This is where Channels'
per-message `aclose_old_connections()` thread hop shows: the stock consumer pays it,
the envelope consumer does not. DESIGN.md sets no target for this harness; the ratio
is reported for information.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from benchmarks._common import (
    Check,
    ScenarioResult,
    logging_off,
    median,
    progress,
    run_from_command_line,
    setup_django,
)

FRAME = '{"t":"bench.small","i":"b1","p":{"n":7,"text":"hello"}}'


async def _measure(apps: dict[str, Any], rounds: int, per_round: int) -> dict[str, list[float]]:
    from channels.testing import WebsocketCommunicator

    comms = {}
    for name, app in apps.items():
        comm = WebsocketCommunicator(app, f"/{name}/")
        connected, _ = await comm.connect()
        if not connected:
            raise RuntimeError(f"{name}: the consumer refused the connection")
        comms[name] = comm
    samples: dict[str, list[float]] = {name: [] for name in apps}
    perf = time.perf_counter
    try:
        for name, comm in comms.items():  # warm-up, and check the answer
            await comm.send_to(text_data=FRAME)
            reply = await comm.receive_json_from(timeout=5)
            if reply.get("p") != {"n": 7, "text": "hello"}:
                raise RuntimeError(f"{name} answered {reply!r}")
        for r in range(rounds):
            names = list(comms)
            if r % 2:
                names.reverse()
            for name in names:
                comm = comms[name]
                send, receive = comm.send_to, comm.receive_output
                start = perf()
                for _ in range(per_round):
                    await send(text_data=FRAME)
                    await receive(5)
                samples[name].append((perf() - start) / per_round * 1e6)
    finally:
        for comm in comms.values():
            await comm.disconnect()
    return samples


def run(quick: bool = False) -> ScenarioResult:
    setup_django()
    logging_off()
    from actors import EnvelopeConsumer
    from benchmarks._messages import router
    from benchmarks._plain import PlainEcho

    result = ScenarioResult("consumer")
    started = time.perf_counter()
    rounds, per_round = (3, 300) if quick else (7, 1500)
    progress(f"consumer: WebsocketCommunicator, {rounds} rounds of {per_round} messages each")
    apps = {"plain": PlainEcho.as_asgi(), "envelope": EnvelopeConsumer.as_asgi(routers=[router])}
    samples = asyncio.run(_measure(apps, rounds, per_round))
    plain, env = median(samples["plain"]), median(samples["envelope"])
    result.figures = {
        "rounds": rounds,
        "messages_per_round": per_round,
        "plain_us": round(plain, 1),
        "envelope_us": round(env, 1),
        "plain_per_second": round(1e6 / plain),
        "envelope_per_second": round(1e6 / env),
    }
    result.checks.append(
        Check(
            "consumer: messages/s envelope vs plain (communicator)",
            round(plain / env, 3),
            None,
            True,
            note=f"{env:.1f} vs {plain:.1f} µs/msg",
        )
    )
    progress(f"consumer: envelope {env:.1f} µs/msg, plain {plain:.1f} µs/msg ({plain / env:.2f}x)")
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("consumer", __doc__, run, argv)
    print(result.figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
