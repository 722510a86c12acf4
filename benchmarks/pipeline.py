"""Scenario `pipeline`: the router's chain in-process, against the floor of one routing step.

The floor does only what any router must do with a message: orjson decode, look `t`
up in a dict, `Model.parse_obj`, await the async handler, build the reply dict and
orjson-encode it. The pipeline is the real chain a consumer runs (`respond, parse,
validate, authorize, dispatch`) on a `ConnectionActor`, called with a
`RequestContext` as the actor's loop does - no Channels, no sockets. Logging is at
WARNING (off), metrics are off. Both are timed in interleaved rounds in one process; the ratio of
medians is compared with DESIGN.md's target (<= 2x, stretch 1.5x).

    .venv/bin/python -m benchmarks.pipeline [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks._chains import alternate
from benchmarks._common import (
    Check,
    ScenarioResult,
    count_lines,
    logging_off,
    median,
    progress,
    setup_django,
)

TARGET = 2.0
STRETCH = 1.5


def _floor_step_factory(routes: dict[str, Any]) -> Any:
    import orjson
    from pydantic import BaseModel

    def _default(obj: Any) -> Any:
        # What the envelope codec gives orjson for a model: its field values.
        if isinstance(obj, BaseModel):
            return obj.__dict__
        raise TypeError(type(obj).__name__)

    loads = orjson.loads
    dumps = orjson.dumps

    async def floor(raw: str) -> str:
        obj = loads(raw)
        t = obj["t"]
        spec = routes[t]
        msg = spec.model.parse_obj(obj.get("p") or {})
        result = await spec.fn(msg, None)
        return dumps({"t": t, "i": obj["i"], "s": "s", "p": result}, default=_default).decode()

    return floor


async def _measure(frames: list[str], rounds: int) -> dict[str, Any]:
    from actors import ConnectionActor, ConsumerConfig, RequestContext
    from benchmarks._messages import router

    config = ConsumerConfig.build([router], allow_unauthenticated=True, metrics=False)
    sent: list[str] = []
    sent_append = sent.append

    async def send_text(text: str) -> None:
        sent_append(text)

    actor = ConnectionActor(config, send_text)
    chain = config.chain
    perf = time.perf_counter
    floor = _floor_step_factory(config.routes)

    # Both must answer the same frame the same way before they are timed.
    for frame in frames[:1]:
        await chain(RequestContext(actor, frame, perf()))
        reply_pipeline = sent.pop()
        reply_floor = await floor(frame)
        if reply_pipeline != reply_floor:
            raise AssertionError(f"replies differ:\n {reply_pipeline}\n {reply_floor}")

    async def run_pipeline(chain: Any = chain) -> float:
        start = perf()
        for frame in frames:
            await chain(RequestContext(actor, frame, perf()))
        elapsed = perf() - start
        sent.clear()
        return elapsed

    async def run_floor() -> float:
        out = []
        start = perf()
        for frame in frames:
            out.append(await floor(frame))
        return perf() - start

    for _ in range(2):  # warm-up
        await run_pipeline()
        await run_floor()
    pipe_us: list[float] = []
    floor_us: list[float] = []
    n = len(frames)
    for _ in range(rounds):
        gc.collect()
        floor_us.append(await run_floor() / n * 1e6)
        pipe_us.append(await run_pipeline() / n * 1e6)
    return {"pipeline_us": pipe_us, "floor_us": floor_us}


async def _measure_logging(frames: list[str], rounds: int, trace_log: str) -> dict[str, Any]:
    """The chain with logging off against the chain with INFO trace events to a file.

    Loggers are bound when an actor is made, so an actor made before logging is switched
    to INFO keeps logging off: both run side by side, in alternating rounds.
    """
    import logging

    from actors import ConnectionActor, ConsumerConfig, RequestContext
    from actors.tracing import configure_logging
    from benchmarks._messages import router

    async def send_text(text: str) -> None:
        return None

    off = ConsumerConfig.build([router], allow_unauthenticated=True, metrics=False)
    actor_off = ConnectionActor(off, send_text, address="specific.bench!off")
    configure_logging(logging.INFO, json=True, trace_log=trace_log, console=False, force=True)
    try:
        on = ConsumerConfig.build([router], allow_unauthenticated=True, metrics=False)
        actor_on = ConnectionActor(on, send_text, address="specific.bench!on")
        # Its writer of `envelope.handled` is made by its first envelope, under INFO.
        await on.chain(RequestContext(actor_on, frames[0], time.perf_counter()))
    finally:
        logging_off()
    return await alternate({"off": actor_off, "info": actor_on}, frames, rounds)


async def _measure_metrics(frames: list[str], rounds: int) -> dict[str, list[float]]:
    """The chain with metrics off against the chain with Prometheus metrics (logging off
    for both), in alternating rounds."""
    from actors import ConnectionActor, ConsumerConfig
    from benchmarks._messages import router

    async def send_text(text: str) -> None:
        return None

    actors = {
        name: ConnectionActor(
            ConsumerConfig.build([router], allow_unauthenticated=True, metrics=metrics),
            send_text,
        )
        for name, metrics in (("off", False), ("metrics", True))
    }
    return await alternate(actors, frames, rounds)


def _messages_per_round(t: str, p: dict[str, Any], seconds: float) -> int:
    """How many messages the floor handles in about `seconds` (rounds last alike for
    every payload size)."""
    from benchmarks._messages import router
    from envelope import dumps

    spec = router[t]
    frame = dumps({"t": t, "i": "1", "p": p})
    floor = _floor_step_factory({t: spec})
    perf = time.perf_counter

    async def probe() -> float:
        start = perf()
        for _ in range(200):
            await floor(frame)
        return (perf() - start) / 200

    per_message = min(asyncio.run(probe()) for _ in range(3))
    return max(100, min(20_000, int(seconds / per_message)))


def run(quick: bool = False) -> ScenarioResult:
    setup_django()
    logging_off()
    from benchmarks._messages import payloads
    from envelope import dumps

    result = ScenarioResult("pipeline")
    started = time.perf_counter()
    rounds = 5 if quick else 15
    round_seconds = 0.03 if quick else 0.12
    for name, (t, p) in payloads().items():
        per_round = _messages_per_round(t, p, round_seconds)
        frames = [dumps({"t": t, "i": str(k), "p": p}) for k in range(per_round)]
        samples = asyncio.run(_measure(frames, rounds))
        pipe = median(samples["pipeline_us"])
        floor = median(samples["floor_us"])
        ratio = pipe / floor
        result.figures[name] = {
            "frame_bytes": len(frames[0]),
            "messages_per_round": per_round,
            "rounds": rounds,
            "pipeline_us": round(pipe, 2),
            "floor_us": round(floor, 2),
            "pipeline_us_min": round(min(samples["pipeline_us"]), 2),
            "floor_us_min": round(min(samples["floor_us"]), 2),
            "ratio": round(ratio, 3),
        }
        result.checks.append(
            Check(
                f"pipeline/{name}: chain vs floor (µs/msg)",
                round(ratio, 3),
                TARGET,
                False,
                stretch=STRETCH,
                note=f"{pipe:.2f} vs {floor:.2f} µs",
            )
        )
        progress(
            f"pipeline {name:6} {len(frames[0]):5} B: pipeline {pipe:6.2f} µs, "
            f"floor {floor:6.2f} µs, ratio {ratio:.2f}"
        )
    # What INFO trace logging to a file adds per envelope, in-process (the sockets
    # scenario measures its share of a server's throughput).
    t, p = payloads()["small"]
    per_round = _messages_per_round(t, p, round_seconds)
    frames = [dumps({"t": t, "i": str(k), "p": p}) for k in range(per_round)]
    from actors.tracing import flush_trace_logs

    with tempfile.TemporaryDirectory() as tmp:
        samples = asyncio.run(_measure_logging(frames, rounds, os.path.join(tmp, "t.jsonl")))
        flush_trace_logs()
        lines = count_lines(os.path.join(tmp, "t.jsonl"))
    if lines < len(frames):
        raise RuntimeError(f"INFO trace logging wrote {lines} lines for {len(frames)} envelopes")
    _added(result, "small_info_log", "info", samples, "INFO trace events to a file", "logging")
    # What Prometheus metrics add per envelope, in-process, logging off.
    samples = asyncio.run(_measure_metrics(frames, rounds))
    _added(result, "small_metrics", "metrics", samples, "Prometheus metrics", "metrics")
    _otel_check(result, frames, rounds)
    result.seconds = time.perf_counter() - started
    return result


def _added(
    result: ScenarioResult,
    key: str,
    on_name: str,
    samples: dict[str, list[float]],
    what: str,
    off_what: str,
) -> None:
    """Record what `samples[on_name]` adds to `samples["off"]`, µs per message (medians):
    a figure under `key` and an informational check."""
    off, on = median(samples["off"]), median(samples[on_name])
    result.figures[key] = {
        "off_us": round(off, 2),
        f"{on_name}_us": round(on, 2),
        "added_us": round(on - off, 2),
    }
    result.checks.append(
        Check(
            f"pipeline/small: {what}, µs/msg added",
            round(on - off, 2),
            None,
            False,
            unit=" µs",
            note=f"{on:.2f} vs {off:.2f} µs with {off_what} off",
        )
    )
    progress(f"pipeline small with {what}: {on:.2f} µs, off {off:.2f} µs")


def _otel_check(result: ScenarioResult, frames: list[str], rounds: int) -> None:
    """What OpenTelemetry spans add per envelope (benchmarks.otel): the SDK with a batch
    processor and an exporter that drops the spans, against no tracer provider."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401 - the dev extra's
    except ImportError:
        progress("pipeline: OpenTelemetry's SDK is not installed; its cost is not measured")
        return
    from benchmarks.otel import measure_otel

    samples = asyncio.run(measure_otel(frames, rounds))
    _added(result, "small_otel", "on", samples, "OpenTelemetry spans (SDK, batch)", "spans")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    print(
        f"{'payload':8} {'bytes':>6} {'pipeline µs':>12} {'floor µs':>9} {'ratio':>6}  "
        f"{'target':20}"
    )
    for name, fig in result.figures.items():
        if "frame_bytes" not in fig:
            continue
        check = next(
            c for c in result.checks if c.label == f"pipeline/{name}: chain vs floor (µs/msg)"
        )
        print(
            f"{name:8} {fig['frame_bytes']:>6} {fig['pipeline_us']:>12.2f} {fig['floor_us']:>9.2f} "
            f"{fig['ratio']:>6.2f}  {check.target_text:20} {'ok' if check.met else 'MISSED':6}"
        )
    logged = result.figures["small_info_log"]
    print(
        f"small with INFO trace events to a file: {logged['info_us']:.2f} µs "
        f"(+{logged['added_us']:.2f} µs)"
    )
    traced = result.figures.get("small_otel")
    if traced is not None:
        print(
            f"small with OpenTelemetry spans: {traced['on_us']:.2f} µs "
            f"(+{traced['added_us']:.2f} µs)"
        )
    metered = result.figures["small_metrics"]
    print(
        f"small with Prometheus metrics: {metered['metrics_us']:.2f} µs "
        f"(+{metered['added_us']:.2f} µs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
