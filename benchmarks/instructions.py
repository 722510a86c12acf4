"""Instructions per message, counted by callgrind: robust to a busy machine.

    .venv/bin/python -m benchmarks.instructions [--messages 4000] [--variant off|metrics|info]
    .venv/bin/python -m benchmarks.instructions --server [--messages 2000] [--variant ...]

Runs the small echo message through the real chain on a `ConnectionActor` (as the
`pipeline` scenario does) under `valgrind --tool=callgrind`, twice per variant: with no
messages and with `--messages`; the difference of the instructions counted, divided by
the messages, is what one message costs, start-up excluded. Variants: `off` (logging at
WARNING, metrics off), `metrics` (Prometheus metrics on), `info` (INFO trace events to a
file), `info_metrics` (both), `otel` (OpenTelemetry spans: the SDK with a batch
processor and an exporter that drops them, see `benchmarks.otel`; metrics off), and,
for scale, `otel_span` (a bare SDK span started and ended per message, no chain). Slow:
callgrind runs Python 50-100x slower.

With `--server`, a daphne process of `benchmarks.server` runs under callgrind instead
(`BENCH_LOG`, `BENCH_METRICS` as the variant says); after 300 round trips of the small
echo on one connection its counters are zeroed (`callgrind_control -z`), then
`--messages` round trips later read (`callgrind_control -e`): what the server spends per
round trip, the client (this process) excluded. `--connections N` runs the round trips
on N connections at once (opened and warmed up before the count): daphne's own cost per
message shrinks with more connections (its reads and writes are batched within a loop
turn), a per-envelope cost does not. A start takes a minute or two. The
`otel` variants are not served that way. A non-forking RQ worker's instructions per
job: `benchmarks.worker_instructions`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._common import logging_off, setup_django
from benchmarks._procs import ROOT, free_port, server_command, stop
from benchmarks._rawws import connect, text_frame

VARIANTS = ("off", "metrics", "info", "info_metrics", "otel", "otel_span")


def drive(variant: str, messages: int, trace_log: str) -> None:
    """Build the chain of `variant` and run `messages` small echoes through it."""
    setup_django()
    logging_off()
    if variant.startswith("otel"):
        from benchmarks.otel import sdk_provider, spans_only

        with sdk_provider():  # a consumer built now has spans; shut down (flushed) after
            if variant == "otel_span":
                spans_only(messages)
            else:
                _drive(variant, messages, trace_log)
        return
    _drive(variant, messages, trace_log)


def _drive(variant: str, messages: int, trace_log: str) -> None:
    from actors import ConnectionActor, ConsumerConfig, RequestContext
    from actors.tracing import configure_logging
    from benchmarks._messages import payloads, router
    from envelope import dumps

    if variant.startswith("info"):
        configure_logging(logging.INFO, json=True, trace_log=trace_log, console=False, force=True)
    config = ConsumerConfig.build(
        [router], allow_unauthenticated=True, metrics=variant.endswith("metrics")
    )
    if variant == "otel" and config.otel is None:
        raise RuntimeError("the consumer built with the SDK's provider has no spans")

    async def send_text(text: str) -> None:
        return None

    actor = ConnectionActor(config, send_text)
    t, p = payloads()["small"]
    frames = [dumps({"t": t, "i": str(k), "p": p}) for k in range(messages + 1)]
    perf = time.perf_counter

    async def run() -> None:
        chain = config.chain
        for frame in frames:  # one more than asked: the first builds what is made lazily
            await chain(RequestContext(actor, frame, perf()))

    asyncio.run(run())


def instructions(variant: str, messages: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                "--drive",
                variant,
                "--messages",
                str(messages),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind failed:\n{done.stderr[-2000:]}")
        return int(found.group(1))


SMALL = '{"t":"bench.small","i":"b1","p":{"n":7,"text":"hello"}}'


async def _round_trips(port: int, count: int, connections: int = 1) -> None:
    """`count` round trips on `connections` connections at once (each its share)."""
    conns = [await connect(f"ws://127.0.0.1:{port}/envelope/") for _ in range(connections)]
    frame = text_frame(SMALL)

    async def one(conn: Any, n: int) -> None:
        for _ in range(n):
            await conn.request(frame)

    await asyncio.gather(*(one(conn, count // connections) for conn in conns))
    for conn in conns:
        await conn.close()


async def _measured(port: int, pid: str, messages: int, connections: int) -> str:
    """The server's instructions for `messages` round trips on `connections` open
    connections (opened and warmed up before the count is zeroed, closed after it is
    read): `callgrind_control`'s report."""
    conns = [await connect(f"ws://127.0.0.1:{port}/envelope/") for _ in range(connections)]
    frame = text_frame(SMALL)

    async def run(per_connection: int) -> None:
        async def one(conn: Any) -> None:
            for _ in range(per_connection):
                await conn.request(frame)

        await asyncio.gather(*(one(conn) for conn in conns))

    await run(max(1, 300 // connections))  # each connection's first frames: warm-up
    # Blocking on purpose: nothing of this process should run while the count is zeroed.
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)  # noqa: ASYNC221
    await run(messages // connections)
    shown = subprocess.run(  # noqa: ASYNC221
        ["callgrind_control", "-e", "Ir", pid], check=True, capture_output=True, text=True
    ).stdout
    for conn in conns:
        await conn.close()
    return shown


def server_instructions(variant: str, messages: int, connections: int = 1) -> int:
    """Instructions of a daphne process for `messages` round trips on `connections`
    connections at once (see the docstring)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONHASHSEED": "0",
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "BENCH_LOG": "info" if variant.startswith("info") else "off",
            "BENCH_METRICS": "on" if variant.endswith("metrics") else "off",
            "ENVELOPE_TRACE_LOG": os.path.join(tmp, "trace.jsonl"),
        }
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={os.path.join(tmp, 'callgrind.out')}",
            *server_command("daphne", "benchmarks.server:application", port),
        ]
        with open(os.path.join(tmp, "server.log"), "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 900
            while True:
                try:
                    asyncio.run(_round_trips(port, 300))  # also the warm-up
                    break
                except OSError as exc:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        with open(os.path.join(tmp, "server.log")) as out:
                            said = out.read()[-2000:]
                        raise RuntimeError(f"daphne did not start:\n{said}") from exc
                    time.sleep(1)
            shown = asyncio.run(_measured(port, str(proc.pid), messages, connections))
        finally:
            stop(proc, grace=120)
    counts = re.findall(r"Th\s+\d+\s+([\d,]+)", shown)
    if not counts:
        raise RuntimeError(f"callgrind_control said:\n{shown}")
    return sum(int(count.replace(",", "")) for count in counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, help="default: 4000, 2000 with --server")
    parser.add_argument("--server", action="store_true", help="count a daphne process's")
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="with --server: round trips on this many connections at once (default 1)",
    )
    parser.add_argument("--drive", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.server and any(v.startswith("otel") for v in args.variant or ()):
        parser.error("--server measures off, metrics, info and info_metrics")
    if args.drive:
        with tempfile.TemporaryDirectory() as tmp:
            drive(args.drive, args.messages or 0, os.path.join(tmp, "trace.jsonl"))
        return 0
    per_message = {}
    messages = args.messages or (2000 if args.server else 4000)
    for variant in args.variant or ("off", "metrics"):
        if args.server:
            done = messages // args.connections * args.connections
            per_message[variant] = server_instructions(variant, done, args.connections) / done
        else:
            base = instructions(variant, 0)
            per_message[variant] = (instructions(variant, messages) - base) / messages
        print(f"{variant:8} {per_message[variant]:10.0f} instructions per message")
    if "off" in per_message:
        for variant, count in per_message.items():
            if variant != "off":
                print(f"{variant:8} / off: {count / per_message['off']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
