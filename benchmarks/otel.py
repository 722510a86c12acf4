"""What OpenTelemetry spans cost per envelope, in-process.

The consumer's chain on a `ConnectionActor` (logging at WARNING), built once without a
tracer provider and once with the SDK's: a `TracerProvider` with a `BatchSpanProcessor`
and an exporter that drops what it is given (what a real exporter does with the spans
is the exporter's cost, not the library's). The small echo message.

    .venv/bin/python -m benchmarks.otel [--quick]     # both chains timed in alternating rounds
    .venv/bin/python -m benchmarks.otel --callgrind   # instructions per envelope (valgrind)

The timed figure is part of `benchmarks.pipeline`. On a loaded machine count work
instead: `--callgrind` runs each chain for two numbers of envelopes under
`valgrind --tool=callgrind` in processes of their own and divides the difference in
instructions (every thread's: the batch processor's too) by the difference in envelopes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any
from unittest import mock

from benchmarks._chains import alternating
from benchmarks._common import logging_off, median, progress, setup_django

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def sdk_provider() -> Iterator[Any]:
    """The SDK's tracer provider (batch processor, spans dropped), seen as the process's
    while the block runs: a consumer built inside it has spans. The process's global
    provider is left unset (it can be set only once, and other scenarios run after)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    try:
        with mock.patch.object(trace, "get_tracer_provider", lambda: provider):
            yield provider
    finally:
        provider.shutdown()


def _chains(router: Any, on: bool) -> tuple[Any, Any]:
    from actors import ConnectionActor, ConsumerConfig

    async def send_text(text: str) -> None:
        return None

    config = ConsumerConfig.build([router], allow_unauthenticated=True)
    if on and config.otel is None:
        raise RuntimeError("the consumer built with the SDK's provider has no spans")
    return ConnectionActor(config, send_text, address="specific.bench!otel"), config.chain


async def measure_otel(frames: list[str], rounds: int) -> dict[str, list[float]]:
    """µs per envelope of the chain without spans (`off`) and with them (`on`), in
    alternating rounds."""
    from benchmarks._messages import router

    off = _chains(router, on=False)
    with sdk_provider():
        return await alternating(frames, rounds, {"off": off, "on": _chains(router, on=True)})


# -- instructions, under callgrind ----------------------------------------------------------


def _frames(count: int) -> list[str]:
    from benchmarks._messages import payloads
    from envelope import dumps

    t, p = payloads()["small"]
    return [dumps({"t": t, "i": str(k), "p": p}) for k in range(count)]


def _run_inner(variant: str, count: int) -> None:
    """One process's work under callgrind: set up, build the chain, answer `count`
    envelopes (`bare`: start and end `count` spans of the SDK, nothing else)."""
    from actors import RequestContext
    from benchmarks._messages import router

    setup_django()
    logging_off()
    if variant == "bare":
        from opentelemetry.trace import SpanKind

        with sdk_provider() as provider:
            start_span = provider.get_tracer("bench").start_span
            for _ in range(count):
                start_span("envelope", kind=SpanKind.SERVER).end()
        return
    frames = _frames(count)

    async def main() -> None:
        actor, chain = _chains(router, on=variant == "on")
        for frame in frames:
            await chain(RequestContext(actor, frame, time.perf_counter()))

    if variant == "on":
        with sdk_provider():
            asyncio.run(main())
    else:
        asyncio.run(main())


def _instructions(variant: str, count: int, tmp: str) -> int:
    out = os.path.join(tmp, f"callgrind.{variant}.{count}")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.otel",
            "--inner",
            variant,
            "--count",
            str(count),
        ],
        cwd=ROOT,
        # One string hashing for every run: dict and set layouts then differ less.
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open(out) as f:
        for line in f:
            found = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if found:
                return int(found.group(1))
    raise RuntimeError(f"no instruction total in {out}")


def callgrind(low: int, high: int) -> dict[str, float]:
    """Instructions per envelope without and with spans (and of a bare SDK span, for
    scale), each the difference between a run of `high` and a run of `low` envelopes
    divided by `high - low`."""
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("off", "on", "bare"):
            counts = {n: _instructions(variant, n, tmp) for n in (low, high)}
            per[variant] = (counts[high] - counts[low]) / (high - low)
            progress(f"otel callgrind {variant}: {per[variant]:,.0f} instructions per envelope")
    per["ratio"] = per["on"] / per["off"]
    return per


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument("--low", type=int, default=500, help="envelopes of the short run")
    parser.add_argument("--high", type=int, default=2500, help="envelopes of the long run")
    parser.add_argument("--inner", choices=("on", "off", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        _run_inner(args.inner, args.count)
        return 0
    if args.callgrind:
        per = callgrind(args.low, args.high)
        print(
            f"instructions per envelope: off {per['off']:,.0f}, on {per['on']:,.0f}, "
            f"ratio {per['ratio']:.2f} (+{per['on'] - per['off']:,.0f}); "
            f"a bare SDK span {per['bare']:,.0f}"
        )
        return 0
    setup_django()
    logging_off()
    frames = _frames(300 if args.quick else 3000)
    samples = asyncio.run(measure_otel(frames, 5 if args.quick else 15))
    off, on = median(samples["off"]), median(samples["on"])
    print(f"µs per envelope: off {off:.2f}, on {on:.2f}, ratio {on / off:.2f} (+{on - off:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
