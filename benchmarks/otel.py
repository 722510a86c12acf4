"""What OpenTelemetry spans cost per envelope, in-process.

The consumer's chain on a `ConnectionActor` (logging at WARNING, metrics off), built
once without a tracer provider and once with the SDK's: a `TracerProvider` with a
`BatchSpanProcessor` and an exporter that drops what it is given (what a real exporter
does with the spans is the exporter's cost, not the library's). The small echo message.

    .venv/bin/python -m benchmarks.otel [--quick]     # both chains timed in alternating rounds

The timed figure is part of the `pipeline` scenario. On a loaded machine count work
instead: `python -m benchmarks.instructions --variant off --variant otel --variant
otel_span` counts instructions per envelope under callgrind (`otel_span`: a bare SDK
span, for scale).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any
from unittest import mock

from benchmarks._chains import alternate
from benchmarks._common import logging_off, median, setup_django


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


def spans_only(count: int) -> None:
    """Start and end `count` bare spans of the current provider (for scale)."""
    from opentelemetry import trace

    start_span = trace.get_tracer_provider().get_tracer("bench").start_span
    for _ in range(count):
        start_span("envelope", kind=trace.SpanKind.SERVER).end()


def _actor(router: Any, on: bool) -> Any:
    """An actor of a consumer built now (metrics off: spans are what is compared)."""
    from actors import ConnectionActor, ConsumerConfig

    async def send_text(text: str) -> None:
        return None

    config = ConsumerConfig.build([router], allow_unauthenticated=True, metrics=False)
    if on and config.otel is None:
        raise RuntimeError("the consumer built with the SDK's provider has no spans")
    return ConnectionActor(config, send_text, address="specific.bench!otel")


async def measure_otel(frames: list[str], rounds: int) -> dict[str, list[float]]:
    """µs per envelope of the chain without spans (`off`) and with them (`on`), in
    alternating rounds."""
    from benchmarks._messages import router

    off = _actor(router, on=False)
    with sdk_provider():
        return await alternate({"off": off, "on": _actor(router, on=True)}, frames, rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    setup_django()
    logging_off()
    from benchmarks._messages import payloads
    from envelope import dumps

    t, p = payloads()["small"]
    frames = [dumps({"t": t, "i": str(k), "p": p}) for k in range(300 if args.quick else 3000)]
    samples = asyncio.run(measure_otel(frames, 5 if args.quick else 15))
    off, on = median(samples["off"]), median(samples["on"])
    print(f"µs per envelope: off {off:.2f}, on {on:.2f}, ratio {on / off:.2f} (+{on - off:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
