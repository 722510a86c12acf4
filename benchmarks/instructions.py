"""Instructions per message of the pipeline, counted by callgrind: robust to a busy machine.

    .venv/bin/python -m benchmarks.instructions [--messages 4000] [--variant off|metrics|info]

Runs the small echo message through the real chain on a `ConnectionActor` (as the
`pipeline` scenario does) under `valgrind --tool=callgrind`, twice per variant: with no
messages and with `--messages`; the difference of the instructions counted, divided by
the messages, is what one message costs, start-up excluded. Variants: `off` (logging at
WARNING, metrics off), `metrics` (Prometheus metrics on), `info` (INFO trace events to a
file), `info_metrics` (both), `otel` (OpenTelemetry spans: the SDK with a batch
processor and an exporter that drops them, see `benchmarks.otel`; metrics off), and,
for scale, `otel_span` (a bare SDK span started and ended per message, no chain). Slow:
callgrind runs Python 50-100x slower.
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

from benchmarks._common import logging_off, setup_django

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--variant", choices=VARIANTS, action="append")
    parser.add_argument("--drive", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        with tempfile.TemporaryDirectory() as tmp:
            drive(args.drive, args.messages, os.path.join(tmp, "trace.jsonl"))
        return 0
    per_message = {}
    for variant in args.variant or ("off", "metrics"):
        base = instructions(variant, 0)
        total = instructions(variant, args.messages)
        per_message[variant] = (total - base) / args.messages
        print(f"{variant:8} {per_message[variant]:10.0f} instructions per message")
    if "off" in per_message:
        for variant, count in per_message.items():
            if variant != "off":
                print(f"{variant:8} / off: {count / per_message['off']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
