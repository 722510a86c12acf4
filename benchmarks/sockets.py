"""Scenario `sockets`: real servers, real sockets, envelope vs plain Channels echoes.

For each chosen server (`--server daphne|uvicorn|both`, both by default when uvicorn is
installed) processes serve `/envelope/` (EnvelopeConsumer), `/plain/` (a stock
`AsyncJsonWebsocketConsumer` echo) and `/nohop/` (the same echo without the per-frame
thread hop) with logging off; processes of the first server serve the envelope consumer
with INFO trace events to a JSON-lines file (`ENVELOPE_TRACE_LOG`), and others add
Prometheus metrics to them (`BENCH_METRICS=on`; their metrics are scraped at the end to
check that they counted). This process is the client (`benchmarks._rawws` by default, or
the `websockets` package): with 1, 50 and 500 connections per target, each connection
does request/response for a fixed time, all targets interleaved in rounds.

Every kind of server process runs as `PROCESSES` processes (one in a quick run), and
round r measures each kind's process r mod `PROCESSES`: two processes of the same code
differ by up to ±5% in throughput (their address-space layout and hash seed differ,
which is why pyperf spreads a benchmark over many processes), as much as the costs being
measured; taking every process in turn averages that out. A ratio is the geometric mean
of the per-round ratios. Within a round every target is measured in short slices
(`slices`), the targets taking turns, so that a change of the machine's speed during the
round falls on all of them alike, and a change between rounds cancels out in the ratio;
each process counts the same.

Reported per target: round trips/s, p50/p90/p99 latency, the server's CPU µs per message
(from /proc), the client's; and the ratios: envelope/plain per server (target >= 1.8x,
p99 no worse), envelope/no-hop (on uvicorn: ahead), uvicorn/daphne for the envelope
consumer (target >= 2.4x at 50 and 500 connections), logged/unlogged (logging costs
<= 15%), logged with metrics/unlogged (logging plus metrics cost <= 10%).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks._common import (
    Check,
    ScenarioResult,
    count_lines,
    percentile,
    progress,
    run_from_command_line,
    smoke,
)
from benchmarks._procs import Server, bench_server, chosen_servers, cpu_seconds

#: A target: the server processes that serve it (measured in turn, round r the process
#: r mod their number) and the path they serve it on.
Target = tuple[list[Server], str]

FRAME = '{"t":"bench.small","i":"b1","p":{"n":7,"text":"hello"}}'
TARGET_RATIO = 1.8
LOG_COST = 0.15
#: INFO trace events to a file plus Prometheus metrics, as a share of socket throughput.
LOG_AND_METRICS_COST = 0.10
#: uvicorn (websockets-sansio) against daphne, the same envelope consumer, from 50 connections.
UVICORN_OVER_DAPHNE = 2.4
#: The targets each server process serves, by path.
PATHS = ("plain", "nohop", "envelope")
#: Processes of each kind of server process, measured in turn (see the module's doc).
PROCESSES = 3
#: A round measures each target in slices, the targets taking turns (A B C A B C ...):
#: the machine's speed drifts over seconds (on a shared virtual machine the same server
#: ran 15% faster or slower than itself five seconds before), and short interleaved
#: slices share those swings out between the targets compared. A slice lasts at least
#: `MIN_SLICE_SECONDS`, and a millisecond per connection: it ends by waiting for the
#: round trips in flight (at 500 connections a round trip takes about 100 ms).
MIN_SLICE_SECONDS = 0.25


def slices(level: int, seconds: float) -> int:
    """How many slices a round's `seconds` per target at `level` connections is cut into."""
    return max(1, int(seconds / max(MIN_SLICE_SECONDS, level / 1000)))


#: A round's seconds per target in a smoke run (0.7 quick): still enough clock ticks of
#: server CPU to count at one connection on a busy machine.
SMOKE_SECONDS = 0.25


async def _measure_level(
    targets: dict[str, Target], level: int, rounds: int, seconds: float
) -> dict[str, dict[str, Any]]:
    from benchmarks._ws import close_many, open_many, request, round_trips

    conns: dict[tuple[str, int], list[Any]] = {}
    try:
        for name, (servers, path) in targets.items():
            for k, server in enumerate(servers):
                conns[name, k] = group = await open_many(server.url(path), level)
                reply = await request(group[0], FRAME)
                if orjson.loads(reply).get("p") != {"n": 7, "text": "hello"}:
                    raise RuntimeError(f"{name} answered {reply!r}")
        # Warm-up, not counted.
        for group in conns.values():
            await round_trips(group, FRAME, min(0.3, seconds / 2))
        totals: dict[str, dict[str, Any]] = {
            name: {
                "count": 0,
                "elapsed": 0.0,
                "server_cpu": 0.0,
                "client_cpu": 0.0,
                "latencies": [],
                "round_rates": [],
            }
            for name in targets
        }
        names = list(targets)
        cuts = slices(level, seconds)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            in_round = {name: [0, 0.0] for name in names}  # round trips, seconds
            for _ in range(cuts):
                for name in order:
                    servers = targets[name][0]
                    k = r % len(servers)
                    pid = servers[k].pid
                    cpu0, own0 = cpu_seconds(pid), time.process_time()
                    count, latencies, elapsed = await round_trips(
                        conns[name, k], FRAME, seconds / cuts
                    )
                    total = totals[name]
                    total["server_cpu"] += cpu_seconds(pid) - cpu0
                    total["client_cpu"] += time.process_time() - own0
                    total["count"] += count
                    total["elapsed"] += elapsed
                    total["latencies"].extend(latencies)
                    in_round[name][0] += count
                    in_round[name][1] += elapsed
            for name, (count, elapsed) in in_round.items():
                totals[name]["round_rates"].append(count / elapsed)
    finally:
        for group in conns.values():
            await close_many(group)
    out = {}
    for name, total in totals.items():
        lat = sorted(total["latencies"])
        count = max(1, total["count"])
        out[name] = {
            "connections": level,
            "processes": len(targets[name][0]),
            "round_trips": total["count"],
            "per_second": round(total["count"] / total["elapsed"], 1),
            "p50_ms": round(percentile(lat, 50) * 1000, 3),
            "p90_ms": round(percentile(lat, 90) * 1000, 3),
            "p99_ms": round(percentile(lat, 99) * 1000, 3),
            "server_cpu_us": round(total["server_cpu"] / count * 1e6, 1),
            "client_cpu_us": round(total["client_cpu"] / count * 1e6, 1),
            "per_round": [round(rate, 1) for rate in total["round_rates"]],
        }
    return out


def round_ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The geometric mean over rounds of a's rate / b's rate in the same round: the two
    took turns in that round, so a change of the machine's load between rounds cancels
    out, and every server process measured in turn counts the same."""
    ratios = [x / y for x, y in zip(a["per_round"], b["per_round"], strict=True)]
    return round(statistics.geometric_mean(ratios), 3)


def run(quick: bool = False, servers: tuple[str, ...] | None = None) -> ScenarioResult:
    servers = servers or chosen_servers()
    result = ScenarioResult("sockets")
    started = time.perf_counter()
    levels = [1, 20, 100] if quick else [1, 50, 500]
    # Every target runs in every round: with two servers (7 targets) fewer rounds, a
    # multiple of the processes each kind has.
    rounds = 1 if quick else (3 * PROCESSES if len(servers) == 1 else 2 * PROCESSES)
    processes = min(PROCESSES, rounds)
    seconds = (SMOKE_SECONDS if smoke() else 0.7) if quick else 1.5
    result.figures["servers"] = list(servers)
    result.figures["rounds"] = rounds
    result.figures["processes"] = processes
    result.figures["round_seconds"] = seconds
    logged = f"{servers[0]}/envelope_info_log"
    metered = f"{servers[0]}/envelope_info_log_metrics"
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as running:

        def start(server: str, **env: str) -> list[Server]:
            return [running.enter_context(bench_server(server, **env)) for _ in range(processes)]

        trace_log = os.path.join(tmp, "trace.jsonl")
        targets: dict[str, Target] = {}
        for server in servers:
            unlogged = start(server, BENCH_LOG="off")
            targets.update({f"{server}/{path}": (unlogged, path) for path in PATHS})
        targets[logged] = (
            start(servers[0], BENCH_LOG="info", ENVELOPE_TRACE_LOG=trace_log),
            "envelope",
        )
        # INFO trace events and Prometheus metrics on.
        targets[metered] = (
            start(
                servers[0],
                BENCH_LOG="info",
                BENCH_METRICS="on",
                ENVELOPE_TRACE_LOG=os.path.join(tmp, "metered.jsonl"),
            ),
            "envelope",
        )
        for level in levels:
            progress(
                f"sockets: {level} connection(s) per target, {rounds} round(s) of "
                f"{seconds:g} s, targets interleaved"
            )
            figures = asyncio.run(_measure_level(targets, level, rounds, seconds))
            result.figures[f"{level}_connections"] = figures
            for name, fig in figures.items():
                progress(
                    f"  {name:26} {fig['per_second']:9.0f}/s  p50 {fig['p50_ms']:.2f} "
                    f"p99 {fig['p99_ms']:.2f} ms  server {fig['server_cpu_us']:.0f} µs"
                    f"  client {fig['client_cpu_us']:.0f} µs per message"
                )
            for server in servers:
                result.checks += _server_checks(level, server, figures)
            if set(SERVERS_COMPARED) <= set(servers):
                uvicorn, daphne = (figures[f"{s}/envelope"] for s in SERVERS_COMPARED)
                result.checks += [
                    _rates(
                        f"sockets/{level}: round trips/s envelope, uvicorn vs daphne",
                        uvicorn,
                        daphne,
                        UVICORN_OVER_DAPHNE if level > 1 else None,
                    ),
                    # What a round trip costs the server is steadier than round trips/s
                    # on a machine that other work keeps busy: reported beside it.
                    _cpu(
                        f"sockets/{level}: server CPU per round trip envelope, daphne / uvicorn",
                        daphne,
                        uvicorn,
                    ),
                ]
            result.checks.append(
                _rates(
                    f"sockets/{level} {servers[0]}: round trips/s INFO log to file vs off",
                    figures[logged],
                    figures[f"{servers[0]}/envelope"],
                    1 - LOG_COST,
                )
            )
            result.checks += _metered_checks(level, servers[0], figures)
        result.figures["trace_log_lines"] = count_lines(trace_log)
        result.figures["metered_frames"] = _frames_counted(targets[metered][0])
    result.seconds = time.perf_counter() - started
    return result


def _metered_checks(level: int, server: str, figures: dict[str, Any]) -> list[Check]:
    metered = figures[f"{server}/envelope_info_log_metrics"]
    label = f"sockets/{level} {server}"
    return [
        _rates(
            f"{label}: round trips/s INFO log + metrics vs off",
            metered,
            figures[f"{server}/envelope"],
            1 - LOG_AND_METRICS_COST,
        ),
        # The metrics' own share, steadier than round trips/s on a busy machine.
        _cpu(
            f"{label}: server CPU per message, log + metrics / log",
            metered,
            figures[f"{server}/envelope_info_log"],
        ),
    ]


def _frames_counted(servers: list[Server]) -> float:
    """`envelope_frames_total` of the metered processes, scraped from each: a run whose
    metrics counted nothing measured nothing."""
    counted = 0.0
    for server in servers:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        counted += sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "envelope_frames"
            for sample in family.samples
            if sample.name == "envelope_frames_total"
        )
    if not counted:
        raise RuntimeError("the metered servers counted no frames")
    return counted


#: (faster, slower): the cross-server check is uvicorn's envelope round trips / daphne's.
SERVERS_COMPARED = ("uvicorn", "daphne")


def _server_checks(level: int, server: str, figures: dict[str, Any]) -> list[Check]:
    plain, nohop, env = (figures[f"{server}/{path}"] for path in PATHS)
    label = f"sockets/{level} {server}"
    return [
        _rates(f"{label}: round trips/s envelope vs plain", env, plain, TARGET_RATIO),
        # On uvicorn the router must stay ahead of it; on daphne it is level with it (both
        # sit at daphne's limit), reported for information.
        _rates(
            f"{label}: round trips/s envelope vs plain without the hop",
            env,
            nohop,
            1.0 if server == "uvicorn" else None,
        ),
        Check(
            f"{label}: p99 latency envelope vs plain",
            round(env["p99_ms"] / plain["p99_ms"], 3),
            1.0,
            False,
            note=f"{env['p99_ms']:.2f} vs {plain['p99_ms']:.2f} ms",
        ),
        _cpu(f"{label}: server CPU per message, no-hop / envelope", nohop, env),
        _cpu(f"{label}: server CPU per message, plain / envelope", plain, env),
    ]


def _rates(label: str, a: dict[str, Any], b: dict[str, Any], target: float | None) -> Check:
    """a's round trips/s over b's (per round, see `round_ratio`); the note says a vs b."""
    note = f"{a['per_second']:.0f} vs {b['per_second']:.0f}/s"
    return Check(label, round_ratio(a, b), target, True, note=note)


def _cpu(label: str, a: dict[str, Any], b: dict[str, Any]) -> Check:
    """a's server CPU per message over b's, for information; the note says a vs b."""
    ratio = round(a["server_cpu_us"] / b["server_cpu_us"], 3)
    note = f"{a['server_cpu_us']:.0f} vs {b['server_cpu_us']:.0f} µs"
    return Check(label, ratio, None, True, note=note)


def main(argv: list[str] | None = None) -> int:
    result = run_from_command_line("sockets", __doc__, run, argv, servers=True)
    for check in result.checks:
        met = {True: "ok", False: "MISSED", None: "-"}[check.met]
        print(f"{check.label:55} {check.ratio:6.2f}  {check.target_text}  {met}  {check.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
