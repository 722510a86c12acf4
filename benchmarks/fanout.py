"""Scenario `fanout`: topic deliveries per second, envelope's node-level fan-out vs a plain
consumer's `group_send` over channels_redis, in the same run.

For each server (daphne, uvicorn), each number of server processes (one, two: the
subscribers split between them, all on one Redis) and each number of subscribers
(100 and 1,000 by default), envelope subscribers join a topic on `/envelope/` (they send
`bench.join`, whose handler calls `ctx.subscribe`) and as many plain consumers join a
group on `/plain/?fan`. This process publishes bursts - `actors.publish(topic, model)`
(one Redis PUBLISH each, see docs/topics.md) for envelope, the plain consumers'
`group_send` (one Redis message per subscriber) for the other - and times until every
subscriber has received every message. Bursts of the two alternate, in rounds. Server
CPU per delivery is read from /proc for every server process.

Targets (DESIGN.md), at 1,000 subscribers: >= 4x the plain `group_send`'s deliveries/s on
daphne, <= 30 µs of server CPU per delivery there, <= 15 µs on uvicorn.
Skipped when no Redis is reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks._common import (
    Check,
    ScenarioResult,
    logging_off,
    median,
    progress,
    setup_django,
)
from benchmarks._procs import Server, add_server_option, bench_server, chosen_servers, cpu_seconds
from benchmarks._procs import use_servers as use_servers
from benchmarks._redis import delete_keys, redis_url

RATIO_TARGET = 4.0  # daphne, at 1,000 subscribers
CPU_TARGET_US = {"daphne": 30.0, "uvicorn": 15.0}  # at 1,000 subscribers
TARGET_SUBSCRIBERS = 1000
SUBSCRIBERS = (100, 1000)
NODES = (1, 2)


async def _subscribe(servers: list[Server], count: int) -> dict[str, list[Any]]:
    """`count` subscribers of each kind, spread evenly over `servers`."""
    from benchmarks._ws import open_many, receive, request

    out: dict[str, list[Any]] = {"envelope": [], "plain": []}
    for k, server in enumerate(servers):
        share = count // len(servers) + (1 if k < count % len(servers) else 0)
        env = await open_many(server.url("envelope"), share)
        for ws in env:
            reply = await request(ws, '{"t":"bench.join","i":"j"}')
            if '"s":"s"' not in reply:
                raise RuntimeError(f"bench.join answered {reply!r}")
        plain = await open_many(server.url("plain") + "?fan", share)
        for ws in plain:
            await receive(ws)  # {"t": "joined"}
        out["envelope"] += env
        out["plain"] += plain
    return out


async def _burst(conns: list[Any], send_all: Any, messages: int) -> float:
    """Publish `messages`, wait until each connection got them all; deliveries/s."""
    received = [0] * len(conns)

    async def drain(k: int, ws: Any) -> None:
        while received[k] < messages:
            await ws.receive()
            received[k] += 1

    start = time.perf_counter()
    receivers = [asyncio.ensure_future(drain(k, ws)) for k, ws in enumerate(conns)]
    try:
        await send_all()
        await asyncio.wait_for(asyncio.gather(*receivers), timeout=120)
    except TimeoutError:
        got = sum(received)
        raise RuntimeError(
            f"after 120 s, {got} of {len(conns) * messages} deliveries arrived "
            f"(fewest on one connection: {min(received)})"
        ) from None
    return len(conns) * messages / (time.perf_counter() - start)


def _cpu(servers: list[Server]) -> float:
    return sum(cpu_seconds(server.pid) for server in servers)


async def _settled(servers: list[Server]) -> float:
    """The servers' CPU seconds once they are idle again: work a burst leaves behind
    after its last delivery (channels_redis cleans up after each message it received)
    is counted in that burst, not in the next one."""
    last = _cpu(servers)
    for _ in range(100):
        await asyncio.sleep(0.05)
        now = _cpu(servers)
        if now == last:  # not one clock tick in 50 ms
            break
        last = now
    return last


async def _measure(
    servers: list[Server], url: str, prefix: str, subs: int, messages: int, rounds: int
) -> dict[str, list[float]]:
    from channels_redis.core import RedisChannelLayer

    from actors import publish
    from actors.publishing import fanout_for
    from benchmarks._messages import FAN_GROUP, FAN_TOPIC, News
    from benchmarks._ws import close_many
    from envelope import dumps

    layer = RedisChannelLayer(hosts=[url], capacity=100_000, prefix=prefix)
    hub = fanout_for(layer)  # this loop lives as long as the run: one pooled connection
    conns = await _subscribe(servers, subs)
    news = [News(n=k, text="Motion 12 was carried, 41 for and 7 against.") for k in range(messages)]
    plain_texts = [dumps({"t": "bench.news", "p": m}) for m in news]

    async def envelope_send() -> None:
        for model in news:
            await publish(FAN_TOPIC, model, layer=layer)

    async def plain_send() -> None:
        for text in plain_texts:
            await layer.group_send(FAN_GROUP, {"type": "bench.push", "text": text})

    senders = {"envelope": envelope_send, "plain": plain_send}
    samples: dict[str, list[float]] = {
        "envelope": [],
        "plain": [],
        "envelope_cpu": [],
        "plain_cpu": [],
    }
    try:
        for name in senders:  # warm-up
            await _burst(conns[name], senders[name], 2)
        for r in range(rounds):
            names = ["plain", "envelope"] if r % 2 == 0 else ["envelope", "plain"]
            for name in names:
                cpu = await _settled(servers)
                samples[name].append(await _burst(conns[name], senders[name], messages))
                deliveries = len(conns[name]) * messages
                used = await _settled(servers) - cpu
                samples[f"{name}_cpu"].append(used / deliveries * 1e6)
    finally:
        for group in conns.values():
            await close_many(group)
        await hub.aclose()
        await layer.close_pools()
    return samples


@contextlib.contextmanager
def _servers(kind: str, count: int, **env: str) -> Iterator[list[Server]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(bench_server(kind, **env)) for _ in range(count)]


def _one(
    result: ScenarioResult, kind: str, nodes: int, subs: int, samples: dict[str, list[float]]
) -> None:
    env, plain = median(samples["envelope"]), median(samples["plain"])
    ratio = median([e / p for e, p in zip(samples["envelope"], samples["plain"], strict=True)])
    env_cpu, plain_cpu = median(samples["envelope_cpu"]), median(samples["plain_cpu"])
    key = f"{kind}/{nodes}x{subs}"
    result.figures[key] = {
        "servers": nodes,
        "subscribers": subs,
        "envelope_deliveries_per_second": round(env),
        "plain_deliveries_per_second": round(plain),
        "envelope_server_cpu_us_per_delivery": round(env_cpu, 1),
        "plain_server_cpu_us_per_delivery": round(plain_cpu, 1),
    }
    where = f"fanout/{subs} {kind}, {nodes} server{'s' if nodes > 1 else ''}"
    progress(
        f"{where}: envelope {env:.0f}/s ({env_cpu:.1f} µs), plain {plain:.0f}/s "
        f"({plain_cpu:.1f} µs): {ratio:.2f}x"
    )
    at_target = subs == TARGET_SUBSCRIBERS and nodes == 1
    result.checks.append(
        Check(
            f"{where}: deliveries/s envelope publish vs plain group_send",
            round(ratio, 3),
            RATIO_TARGET if at_target and kind == "daphne" else None,
            True,
            note=f"{env:.0f} vs {plain:.0f}/s",
        )
    )
    result.checks.append(
        Check(
            f"{where}: server CPU per delivery, envelope",
            round(env_cpu, 1),
            CPU_TARGET_US.get(kind) if at_target else None,
            False,
            note=f"plain group_send: {plain_cpu:.1f} µs ({plain_cpu / max(env_cpu, 0.1):.1f}x)",
            unit=" µs",
        )
    )


def run(
    quick: bool = False,
    subscribers: Sequence[int] | None = None,
    nodes: Sequence[int] | None = None,
) -> ScenarioResult:
    setup_django()
    logging_off()
    result = ScenarioResult("fanout")
    started = time.perf_counter()
    counts = tuple(subscribers or ((50,) if quick else SUBSCRIBERS))
    node_counts = tuple(nodes or NODES)
    rounds = 2 if quick else 6
    with redis_url() as url:
        if url is None:
            result.skipped = "no Redis reachable (REDIS_URL, 127.0.0.1:6379) nor redis-server"
            progress(f"fanout: skipped, {result.skipped}")
            return result
        for kind in chosen_servers():
            for n in node_counts:
                prefix = f"asgi-bench-{uuid.uuid4().hex[:8]}"
                env = {"BENCH_LOG": "off", "BENCH_REDIS_URL": url, "BENCH_LAYER_PREFIX": prefix}
                try:
                    with _servers(kind, n, **env) as servers:
                        for subs in counts:
                            # About 10,000 deliveries per burst (2,000 quick), at least 5
                            # messages: enough clock ticks of server CPU to count.
                            messages = max(5, (2_000 if quick else 10_000) // subs)
                            progress(
                                f"fanout: {kind}, {n} server(s), {subs} subscribers per "
                                f"side, {rounds} rounds of {messages} messages"
                            )
                            samples = asyncio.run(
                                _measure(servers, url, prefix, subs, messages, rounds)
                            )
                            _one(result, kind, n, subs, samples)
                finally:
                    delete_keys(url, f"{prefix}*")
    result.seconds = time.perf_counter() - started
    return result


def parse_counts(text: str) -> tuple[int, ...]:
    """``"100,1000"`` -> ``(100, 1000)``."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers >= 1")
    return counts


def add_fanout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subscribers",
        type=parse_counts,
        metavar="N,N",
        help="fanout: subscribers per side (default 100,1000; 50 with --quick)",
    )
    parser.add_argument(
        "--nodes",
        type=parse_counts,
        metavar="N,N",
        help="fanout: server processes the subscribers are spread over (default 1,2)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    add_server_option(parser)
    add_fanout_options(parser)
    args = parser.parse_args(argv)
    if args.server:
        use_servers(args.server)
    result = run(quick=args.quick, subscribers=args.subscribers, nodes=args.nodes)
    print(result.figures or result.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
