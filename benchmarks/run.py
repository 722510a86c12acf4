"""`envelope bench`: run the scenarios, print the table, write the JSON and BENCHMARKS.md."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks._common import ScenarioResult, progress, use_smoke
from benchmarks._procs import add_server_option, chosen_servers, use_servers
from benchmarks._report import (
    MARKDOWN,
    RESULTS,
    document,
    print_table,
    write_json,
    write_markdown,
)
from benchmarks._ws import CLIENTS, use_client
from benchmarks.fanout import add_fanout_options

#: In the order they run; `deferred` last (it needs the RQ backend and a worker).
SCENARIOS = (
    "pipeline",
    "consumer",
    "sockets",
    "fanout",
    "memory",
    "soak",
    "storm",
    "deferred",
)


def run_scenario(
    name: str, quick: bool, burst: int | None = None, fanout: dict[str, Any] | None = None
) -> ScenarioResult:
    module = importlib.import_module(f"benchmarks.{name}")
    started = time.perf_counter()
    try:
        options: dict[str, Any] = {"burst": burst} if name == "deferred" and burst else {}
        if name == "fanout" and fanout:
            options.update(fanout)
        result: ScenarioResult = module.run(quick=quick, **options)
    except Exception as exc:
        # One broken scenario does not hide the others' figures; it is reported as failed.
        traceback.print_exc()
        leaf: BaseException = exc
        while isinstance(leaf, BaseExceptionGroup) and leaf.exceptions:
            leaf = leaf.exceptions[0]
        result = ScenarioResult(name, skipped=f"FAILED: {type(leaf).__name__}: {leaf}")
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="envelope bench",
        description="Routing benchmarks against plain Channels (see BENCHMARKS.md).",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"which to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run, under 60 s")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="what --quick runs, every figure and check, with shorter timed windows "
        "(socket rounds, the soak): to see that the scenarios work (the test suite's run)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="raw",
        help="the load client of sockets/fanout/memory: a minimal asyncio one (default), "
        "or the websockets package (about twice its CPU per round trip)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        metavar="N",
        help="deferred: N connections each send one request at the same moment "
        "(default 200, 20 with --quick)",
    )
    add_server_option(parser)
    add_fanout_options(parser)
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help=f"write the report there (default: {MARKDOWN.name} after a full run of all "
        "scenarios, nothing otherwise)",
    )
    args = parser.parse_args(argv)
    if args.burst is not None and args.burst < 1:
        parser.error("--burst takes a number >= 1")
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    chosen = [s for s in SCENARIOS if s in args.scenarios] if args.scenarios else list(SCENARIOS)
    if args.smoke:
        args.quick = True
        use_smoke()
    use_client(args.client)
    if args.server:
        use_servers(args.server)
    started = time.perf_counter()
    results = []
    for n, name in enumerate(chosen, 1):
        mode = " quick (smoke)" if args.smoke else " quick" if args.quick else ""
        progress(f"== {name} ({n}/{len(chosen)}){mode}")
        fanout = {"subscribers": args.subscribers, "nodes": args.nodes}
        result = run_scenario(name, args.quick, args.burst, fanout)
        results.append(result)
        progress(f"== {name} done in {result.seconds:.1f} s")
    doc = document(results, args.quick, argv)
    doc["smoke"] = args.smoke
    doc["client"] = args.client
    doc["servers"] = list(chosen_servers())
    doc["seconds"] = round(time.perf_counter() - started, 1)
    print_table(results)
    path = write_json(doc, args.json)
    progress(f"figures written to {path}")
    markdown = args.markdown
    if markdown is None and not args.quick and len(chosen) == len(SCENARIOS):
        markdown = MARKDOWN
    if markdown is not None:
        progress(f"report written to {write_markdown(doc, markdown)}")
    progress(f"total {doc['seconds']:.0f} s")
    failed = [r.name for r in results if r.skipped and r.skipped.startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
