"""Scenario `fanout`: topic deliveries per second over channels_redis, envelope vs plain.

One daphne process with a Redis channel layer; 100 websocket subscribers to a topic on
`/envelope/` (they send `bench.join`, whose handler calls `ctx.subscribe`), 100 plain
consumers in a group on `/plain/?fan`. This process publishes a burst of messages -
`actors.publish(topic, model)` for the envelope side, the plain consumer's
`group_send` for the other - and times until every subscriber has received every one.
Bursts alternate between the two, in rounds. Target (DESIGN.md): >= 1.2x the plain
consumer's deliveries/s. Skipped when no Redis is reachable.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

from benchmarks._common import Check, ScenarioResult, median, progress, run_from_command_line
from benchmarks._procs import Server, cpu_seconds, daphne
from benchmarks._redis import redis_url

TARGET = 1.2


async def _subscribe(server: Server, count: int) -> dict[str, list[Any]]:
    from benchmarks._ws import open_many, receive, request

    env = await open_many(server.url("envelope"), count)
    for ws in env:
        reply = await request(ws, '{"t":"bench.join","i":"j"}')
        if '"s":"s"' not in reply:
            raise RuntimeError(f"bench.join answered {reply!r}")
    plain = await open_many(server.url("plain") + "?fan", count)
    for ws in plain:
        await receive(ws)  # {"t": "joined"}
    return {"envelope": env, "plain": plain}


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
        await asyncio.wait_for(asyncio.gather(*receivers), timeout=60)
    except TimeoutError:
        got = sum(received)
        raise RuntimeError(
            f"after 60 s, {got} of {len(conns) * messages} deliveries arrived "
            f"(fewest on one connection: {min(received)})"
        ) from None
    return len(conns) * messages / (time.perf_counter() - start)


async def _measure(
    server: Server, url: str, prefix: str, subs: int, messages: int, rounds: int
) -> Any:
    from channels_redis.core import RedisChannelLayer

    from actors import publish
    from benchmarks._messages import FAN_GROUP, FAN_TOPIC, News
    from benchmarks._ws import close_many
    from envelope import dumps

    layer = RedisChannelLayer(hosts=[url], capacity=100_000, prefix=prefix)
    conns = await _subscribe(server, subs)
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
            await _burst(conns[name], senders[name], 5)
        for r in range(rounds):
            names = ["plain", "envelope"] if r % 2 == 0 else ["envelope", "plain"]
            for name in names:
                cpu = cpu_seconds(server.pid)
                samples[name].append(await _burst(conns[name], senders[name], messages))
                deliveries = len(conns[name]) * messages
                samples[f"{name}_cpu"].append((cpu_seconds(server.pid) - cpu) / deliveries * 1e6)
    finally:
        for group in conns.values():
            await close_many(group)
        await layer.close_pools()
    return samples


def _delete_keys(url: str, prefix: str) -> None:
    """What this run left in Redis: the keys under its own layer prefix, nothing else."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("fanout")
    started = time.perf_counter()
    subs, messages, rounds = (20, 20, 2) if quick else (100, 30, 6)
    with redis_url() as url:
        if url is None:
            result.skipped = "no Redis reachable (REDIS_URL, 127.0.0.1:6379) nor redis-server"
            progress(f"fanout: skipped, {result.skipped}")
            return result
        progress(
            f"fanout: {subs} subscribers per side over channels_redis, {rounds} rounds "
            f"of {messages} messages"
        )
        prefix = f"asgi-bench-{uuid.uuid4().hex[:8]}"
        try:
            with daphne(BENCH_LOG="off", BENCH_REDIS_URL=url, BENCH_LAYER_PREFIX=prefix) as server:
                samples = asyncio.run(_measure(server, url, prefix, subs, messages, rounds))
        finally:
            _delete_keys(url, prefix)
    env, plain = median(samples["envelope"]), median(samples["plain"])
    # Each round's two bursts ran one after the other: their ratio is immune to a change
    # of the machine's load between rounds.
    ratio = median([e / p for e, p in zip(samples["envelope"], samples["plain"], strict=True)])
    env_cpu, plain_cpu = median(samples["envelope_cpu"]), median(samples["plain_cpu"])
    result.figures = {
        "subscribers": subs,
        "messages_per_burst": messages,
        "rounds": rounds,
        "envelope_deliveries_per_second": round(env),
        "plain_deliveries_per_second": round(plain),
        "envelope_server_cpu_us_per_delivery": round(env_cpu, 1),
        "plain_server_cpu_us_per_delivery": round(plain_cpu, 1),
    }
    progress(f"fanout: envelope {env:.0f} deliveries/s, plain {plain:.0f}/s ({env / plain:.2f}x)")
    result.checks.append(
        Check(
            "fanout: deliveries/s envelope publish vs plain group_send",
            round(ratio, 3),
            TARGET,
            True,
            note=f"{env:.0f} vs {plain:.0f}/s",
        )
    )
    result.checks.append(
        Check(
            "fanout: server CPU per delivery, plain / envelope",
            round(plain_cpu / env_cpu, 3),
            None,
            True,
            note=f"{env_cpu:.0f} vs {plain_cpu:.0f} µs",
        )
    )
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("fanout", __doc__, run, argv)
    print(result.figures or result.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
