"""The `envelope` command: `envelope trace`, `envelope bench`, `envelope demo`.

envelope trace 9f2c1a [trace.jsonl worker.jsonl ...]   # one trace, from files or stdin
envelope trace --slowest 10 trace.jsonl                # the slowest envelopes
envelope bench [pipeline sockets ...] [--quick]        # the routing benchmarks (a checkout)
envelope demo [--port 8000]                            # the example server (a checkout)
envelope schema [--out DIR] [--check OLD.json]         # the contract: AsyncAPI, JSON Schema, TS
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import orjson

from actors import contract
from actors.tracing import (
    TRACE_LOG_SETTING,
    format_slowest,
    format_timeline,
    read_logs,
    slowest,
    timeline,
)

_TRACE_HELP = "show the timeline of one trace id from JSON-lines logs"


def _trace_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envelope trace",
        description=(
            "Merge JSON-lines trace logs (ENVELOPE_TRACE_LOG files of servers and workers, "
            "or stdin) and show every event of one trace id in time order, or the slowest "
            "envelopes. Lines that are not JSON objects are skipped and counted."
        ),
    )
    parser.add_argument("trace_id", nargs="?", help="the envelope's `i`")
    parser.add_argument(
        "files",
        nargs="*",
        help="log files; '-' is stdin. Without files: stdin, or the ENVELOPE_TRACE_LOG file "
        "when stdin is a terminal",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--slowest", type=int, metavar="N", help="list the N slowest envelopes instead"
    )
    return parser


@contextlib.contextmanager
def _open_sources(paths: Sequence[str]) -> Iterator[list[tuple[str, IO[bytes]]]]:
    with contextlib.ExitStack() as stack:
        sources: list[tuple[str, IO[bytes]]] = []
        for path in paths or ["-"]:
            if path == "-":
                sources.append(("<stdin>", sys.stdin.buffer))
            else:
                sources.append((path, stack.enter_context(open(path, "rb"))))
        yield sources


def run_trace(args: argparse.Namespace) -> int:
    files = list(args.files)
    if args.slowest is not None:
        # `envelope trace --slowest 5 a.jsonl b.jsonl`: the first positional is a file.
        if args.trace_id is not None:
            files.insert(0, args.trace_id)
        if args.slowest < 1:
            print("envelope trace: --slowest takes a number >= 1", file=sys.stderr)
            return 2
    elif args.trace_id is None:
        print("envelope trace: give a trace id (the envelope's i), or --slowest N", file=sys.stderr)
        return 2
    if not files and sys.stdin.isatty():
        default = os.environ.get(TRACE_LOG_SETTING)
        if not default:
            print(
                "envelope trace: give log files, pipe them in, or set ENVELOPE_TRACE_LOG",
                file=sys.stderr,
            )
            return 2
        files = [default]
    try:
        with _open_sources(files) as sources:
            logs = read_logs(sources)
    except OSError as exc:
        print(f"envelope trace: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if logs.malformed:
        print(
            f"envelope trace: skipped {logs.malformed} malformed line"
            f"{'s' if logs.malformed != 1 else ''} of {logs.lines}",
            file=sys.stderr,
        )
    if args.slowest is not None:
        rows = slowest(logs, args.slowest)
        if not rows:
            print(
                f"envelope trace: no envelope.handled events in {logs.lines} lines",
                file=sys.stderr,
            )
            return 1
        if args.json:
            sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            print(format_slowest(rows))
        return 0
    events = timeline(logs, args.trace_id)
    if not events:
        print(
            f"envelope trace: no event has i={args.trace_id!r} "
            f"({len(logs.events)} events read from {len(files) or 1} source"
            f"{'s' if len(files) > 1 else ''})",
            file=sys.stderr,
        )
        return 1
    if args.json:
        doc = {"i": args.trace_id, "events": events, "malformed": logs.malformed}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        print(format_timeline(args.trace_id, events))
    return 0


#: What `envelope bench` and `envelope demo` run: they live in the repository, beside the
#: packages, and are not installed with them.
_CHECKOUT_ONLY = {
    "bench": ("benchmarks.run", "benchmarks/run.py", "the benchmarks"),
    "demo": ("example.demo", "example/demo.py", "the example project"),
}


def checkout_root(marker: str, package_dir: Path | None = None) -> Path | None:
    """The repository checkout `actors` runs from (an editable install, or the source tree
    itself), found by `marker` beside the package; None for an installed package."""
    root = (package_dir or Path(__file__).resolve().parent).parent
    if (root / "pyproject.toml").is_file() and (root / marker).is_file():
        return root
    return None


def _delegate(what: str, argv: list[str]) -> int:
    module, marker, description = _CHECKOUT_ONLY[what]
    root = checkout_root(marker)
    if root is None:
        print(
            f"envelope {what}: {description} ({marker}) are not part of the installed package; "
            f"`envelope {what}` needs a checkout of the Envelope Router repository: clone it "
            f"and run `make {what}` (or `.venv/bin/envelope {what}`) there.",
            file=sys.stderr,
        )
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    target = importlib.import_module(module)
    return int(target.main(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `envelope` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="envelope", description="Envelope Router: trace viewer, benchmarks, demo, contract."
    )
    sub = parser.add_subparsers(dest="command", metavar="{trace,bench,demo,schema}")
    # Each subcommand parses its own arguments; their own --help describes them.
    sub.add_parser("trace", help=_TRACE_HELP, add_help=False)
    sub.add_parser(
        "bench",
        help="run the routing benchmarks, from a checkout of the repository "
        "(envelope bench --help)",
        add_help=False,
    )
    sub.add_parser(
        "demo",
        help="run the example server, from a checkout of the repository (envelope demo --help)",
        add_help=False,
    )
    sub.add_parser(
        "schema",
        help="the contract for frontends: AsyncAPI, JSON Schema, TypeScript; --check for "
        "breaking changes (envelope schema --help)",
        add_help=False,
    )
    if argv and argv[0] == "trace":
        # Intermixed: options may come after the files (`trace abc a.jsonl --json`).
        return run_trace(_trace_parser().parse_intermixed_args(argv[1:]))
    if argv and argv[0] == "bench":
        return _delegate("bench", argv[1:])
    if argv and argv[0] == "schema":
        return contract.main(argv[1:])
    if argv and argv[0] == "demo":
        return _delegate("demo", argv[1:])
    parser.parse_args(argv)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
