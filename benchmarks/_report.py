"""The end of a run: the table, `results/latest.json` and `BENCHMARKS.md`."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from benchmarks._common import ScenarioResult

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
MARKDOWN = ROOT / "BENCHMARKS.md"
PACKAGES = (
    "Django",
    "channels",
    "daphne",
    "Twisted",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "orjson",
    "structlog",
    "anyio",
    "channels-redis",
    "redis",
    "rq",
    "django-rq",
    "websockets",
    "prometheus-client",
)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import pydantic

        compiled = bool(getattr(pydantic, "compiled", False))
    except ImportError:  # pragma: no cover
        compiled = False
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "pydantic_compiled": compiled,
        "packages": versions,
    }


def document(results: list[ScenarioResult], quick: bool, argv: list[str]) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "command": "envelope bench " + " ".join(argv),
        "machine": machine(),
        "scenarios": [r.as_json() for r in results],
    }


def _met(met: bool | None) -> str:
    return {True: "ok", False: "MISSED", None: "-"}[met]


def table(results: list[ScenarioResult]) -> str:
    """Each ratio beside its DESIGN.md target."""
    rows = [("check", "measured", "target", "", "figures")]
    for result in results:
        if result.skipped:
            rows.append((f"{result.name}: SKIPPED", "", "", "", result.skipped))
        for check in result.checks:
            unit = "x" if check.unit == "x" else check.unit
            rows.append(
                (
                    check.label,
                    f"{check.ratio:.2f}{unit}",
                    check.target_text,
                    _met(check.met),
                    check.note,
                )
            )
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(widths[k]) for k, cell in enumerate(row[:4])) + "  " + row[4]
        )
        if n == 0:
            lines.append("-" * (sum(widths) + 8 + len(row[4])))
    return "\n".join(line.rstrip() for line in lines)


def write_json(doc: dict[str, Any], path: Path = RESULTS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def _markdown_table(doc: dict[str, Any]) -> list[str]:
    lines = ["| check | measured | target | | figures |", "|---|---|---|---|---|"]
    for scenario in doc["scenarios"]:
        if scenario["skipped"]:
            lines.append(f"| {scenario['name']} | skipped | | | {scenario['skipped']} |")
        for check in scenario["checks"]:
            unit = "\u00d7" if check["unit"] == "x" else check["unit"]
            lines.append(
                f"| {check['label']} | {check['ratio']:.2f}{unit} | {check['target_text']} | "
                f"{_met(check['met'])} | {check['note']} |"
            )
    return lines


def _sockets_details(doc: dict[str, Any]) -> list[str]:
    scenario = next((s for s in doc["scenarios"] if s["name"] == "sockets"), None)
    if scenario is None or scenario["skipped"]:
        return []
    lines = [
        "",
        "### Over real sockets (each kind of server process three times, measured in turn; "
        "the client is another process)",
        "",
        "| connections | target | round trips/s | p50 ms | p90 ms | p99 ms | server CPU µs/msg "
        "| client CPU µs/msg |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, targets in scenario["figures"].items():
        if not key.endswith("_connections"):
            continue
        for name, fig in targets.items():
            lines.append(
                f"| {fig['connections']} | {name} | {fig['per_second']:.0f} | {fig['p50_ms']} | "
                f"{fig['p90_ms']} | {fig['p99_ms']} | {fig['server_cpu_us']} | "
                f"{fig['client_cpu_us']} |"
            )
    return lines


def _deferred_details(doc: dict[str, Any]) -> list[str]:
    scenario = next((s for s in doc["scenarios"] if s["name"] == "deferred"), None)
    if scenario is None or scenario["skipped"]:
        return []
    figures = scenario["figures"]
    lines = [
        "",
        "### Deferred work: the forking and the non-forking RQ worker",
        "",
        "| worker | processes | burst | last `s` after ms | jobs/s per process | "
        "worker CPU ms per job | server CPU ms per job | Redis commands per job | "
        "p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, fig in figures.items():
        if "_burst_" not in key:
            continue
        lines.append(
            f"| {key.split('_')[0]} | {fig['processes']} | {fig['requests']} | "
            f"{fig['until_last_s_ms']} | {fig['jobs_per_second_per_process']} | "
            f"{fig['worker_cpu_ms_per_job']} | {fig.get('server_cpu_ms_per_job', '-')} | "
            f"{fig.get('redis_commands_per_job', '-')} | {fig['p50_ms']} | {fig['p99_ms']} |"
        )
    ratios = [(key, fig) for key, fig in figures.items() if key.startswith("burst_ratio_")]
    if ratios:
        lines += [
            "",
            f"Medians over {figures.get('rounds', '?')} rounds per row; the ratio of jobs/s per "
            "process (simple / forking) is the median of the per-round ratios:",
            "",
            "| processes | simple / forking, median | per round |",
            "|---|---|---|",
        ]
        for key, fig in ratios:
            per_round = ", ".join(f"{x:g}" for x in fig["per_round"])
            lines.append(f"| {key.rsplit('_', 1)[1]} | {fig['median']:g} | {per_round} |")
    lines += [
        "",
        "| worker, idle, requests one by one | request to `q` p50 ms | request to `s` p50 ms "
        "| p90 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for key, fig in figures.items():
        if key.endswith("_idle"):
            to_s = fig["to_s_ms"]
            lines.append(
                f"| {key.split('_')[0]} | {fig['to_q_ms']['p50']} | {to_s['p50']} | "
                f"{to_s['p90']} | {to_s['p99']} |"
            )
    return lines


def _run_kind(doc: dict[str, Any]) -> str:
    if doc.get("smoke"):
        return " (smoke run: quick, with shorter timed windows)"
    return " (quick run)" if doc["quick"] else ""


def write_markdown(doc: dict[str, Any], path: Path = MARKDOWN) -> Path:
    m = doc["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    lines = [
        "# Benchmarks",
        "",
        "Envelope Router against plain Channels, each ratio measured side by side in one run",
        "and compared with its target in the performance budget (docs/benchmarks.md).",
        f"Generated by `{doc['command'].strip()}` on {doc['when']}{_run_kind(doc)}.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; {m['os']}",
        f"- Python {m['python']} (pydantic compiled: {'yes' if m['pydantic_compiled'] else 'no'})",
        f"- {packages}",
        f"- load client: {doc.get('client', 'raw')}",
        "",
        "The machine was shared with other work while this ran: treat single figures as",
        "noisy; the ratios are more stable because both sides run interleaved in one run.",
        "",
        "## Results",
        "",
        *_markdown_table(doc),
        *_sockets_details(doc),
        *_deferred_details(doc),
        "",
        "## What each scenario measures",
        "",
        "- **pipeline**: the consumer's chain (`respond, parse, validate, authorize, dispatch`)",
        "  on a `ConnectionActor`, in-process, against the floor of one routing step (orjson",
        "  decode, `t` lookup, `parse_obj`, await the handler, build and encode the reply);",
        "  logging at WARNING. Small (54 B), medium (282 B) and large (4.7 KB) echo payloads.",
        "  The small one also with OpenTelemetry spans (the SDK, a `BatchSpanProcessor`, an",
        "  exporter dropping the spans) against none, in alternating rounds",
        "  (`benchmarks/otel.py`; `benchmarks.instructions --variant otel` counts",
        "  instructions instead).",
        "- **consumer**: `channels.testing.WebsocketCommunicator`, one message at a time,",
        "  `EnvelopeConsumer` against a stock `AsyncJsonWebsocketConsumer` echo. The budget",
        "  sets no target for it. Its target of >= 5x channels-envelope's ping throughput",
        "  on this harness is not measured: channels-envelope is not a dependency here.",
        "- **sockets**: per server (daphne; uvicorn with uvloop, httptools and",
        "  `--ws websockets-sansio`) processes on loopback serving the envelope consumer,",
        "  a stock `AsyncJsonWebsocketConsumer` echo (`plain`) and the same echo without",
        "  the per-frame thread hop (`nohop`); a client process with 1, 50 and 500",
        "  connections per target doing request/response for a fixed time, all targets",
        "  of both servers interleaved in rounds (6 of 1.5 s with two servers, 9 with",
        "  one). Each kind of server process runs three times, and round r measures",
        "  process r mod 3 of each: two processes of the same code differ by up to ±5%",
        "  (address-space layout, hash seed), as much as some costs measured here.",
        "  Within a round each target is measured in slices (0.25 s; 0.5 s at 500",
        "  connections), the targets taking turns, so that a swing of the machine's",
        "  speed falls on all of them. Throughput ratios are the geometric mean of the",
        "  per-round ratios; server CPU from",
        "  /proc. The load client is a minimal asyncio websocket client",
        "  (`benchmarks/_rawws.py`, about 20-25 µs of CPU per round trip against 35-45 µs",
        "  for the `websockets` package, selectable with `--client websockets`): on 2",
        "  cores the client shares the machine with the server, the cheaper the better.",
        "  Processes of the first server run the envelope consumer with INFO trace",
        "  events to an `ENVELOPE_TRACE_LOG` file: their throughput against the unlogged",
        "  ones is the cost of trace logging. Others run it with INFO trace events and",
        "  Prometheus metrics (`BENCH_METRICS=on`): the cost of both, against neither.",
        "- **fanout**: 100 and 1,000 subscribers per side, on one and two server processes",
        "  (daphne, then uvicorn) sharing one Redis; bursts of about 10,000 deliveries",
        "  published with `actors.publish` (one Redis PUBLISH each, fanned out by each",
        "  server) against a plain consumer's `group_send` over `channels_redis` (one Redis",
        "  message per subscriber), until every subscriber got all of them; 6 rounds",
        "  alternate the two, and the ratio is the median of the per-round ratios. Server",
        "  CPU per delivery from /proc of every server process, from the start of a burst",
        "  until the servers are idle again.",
        "- **memory**: RSS growth of a fresh daphne per 500 idle connections (each sent one",
        "  message), envelope against plain.",
        "- **soak**: 50 normal connections for 60 s on daphne with a 256 KiB outbound",
        "  budget; from a third of the way, 20 never-reading clients (half flooding echo",
        "  requests, half subscribers fed pushes), replaced as the server drops them (4008).",
        "  The server's RSS growth per never-reading client at its peak (target: the budget",
        "  plus 1 MiB), and the normal ones' throughput and p99 beside them vs alone.",
        "- **deferred**: a deferred handler through real `rqworker` processes, the forking",
        "  `EnvelopeWorker` against the non-forking `EnvelopeSimpleWorker`, both running on",
        "  queues of their own: with 1 and then 4 processes of each, 7 rounds (3 quick) of a",
        "  burst (`--burst N`, default 200: N connections each send one request at the same",
        "  moment) to one and then the other (the order flips every round); the ratio is the",
        "  median of the per-round ratios. Requests one by one on an idle worker too. Worker",
        "  CPU per job from /proc (work horses included). Skipped when the RQ backend or",
        "  Redis is not available.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench                          # = .venv/bin/envelope bench (all, < 5 min)",
        ".venv/bin/envelope bench --quick    # a smoke run, < 60 s",
        ".venv/bin/envelope bench pipeline sockets",
        ".venv/bin/envelope bench sockets --server uvicorn   # or daphne; both by default",
        ".venv/bin/python -m benchmarks.pipeline",
        "```",
        "",
        "Redis is taken from `REDIS_URL`, else 127.0.0.1:6379, else a private `redis-server`.",
        "Raw figures of the latest run: `benchmarks/results/latest.json` (not committed).",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def print_table(results: list[ScenarioResult]) -> None:
    sys.stdout.write("\n" + table(results) + "\n")
