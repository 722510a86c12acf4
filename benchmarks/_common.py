"""What every scenario shares: Django set-up, logging off, results and their targets."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks._procs import add_server_option, use_servers

_smoke = False


def use_smoke() -> None:
    """From now on this process makes a smoke run (`envelope bench --smoke`): what
    `--quick` runs (its levels, rounds, connections and bursts: the same figures and
    checks), with the timed windows that only make the figures steadier shortened (a
    socket round's seconds, the soak's length). The test suite runs it to see that every
    scenario works; its figures are not worth comparing."""
    global _smoke
    _smoke = True


def smoke() -> bool:
    """Whether this is a smoke run (`use_smoke`)."""
    return _smoke


def setup_django(settings_module: str = "benchmarks.settings") -> None:
    """Configure Django once, with the benchmark settings unless some are already chosen."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django
    from django.conf import settings

    if not settings.configured or not getattr(settings, "_envelope_bench_ready", False):
        django.setup()
        settings._envelope_bench_ready = True  # type: ignore[misc]


def logging_off() -> None:
    """structlog at WARNING: `envelope.handled` (INFO) and the stage events are filtered out.

    This replaces whatever configuration the process had: a benchmark measures the
    library, not a console renderer. Warnings and errors still reach stderr.
    """
    from actors.tracing import configure_logging

    configure_logging(logging.WARNING, json=True, force=True, stream=sys.stderr, trace_log="")


def progress(message: str) -> None:
    """One live progress line on stderr (stdout is kept for the final table)."""
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


@dataclass
class Check:
    """A ratio measured side by side in one run, beside its target from DESIGN.md."""

    label: str
    ratio: float  # the measured value: a ratio, or a difference for absolute targets
    target: float | None  # None: reported for information, DESIGN.md sets no target
    higher_is_better: bool
    stretch: float | None = None
    note: str = ""

    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.ratio >= self.target
        return self.ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "(info)"
        op = ">=" if self.higher_is_better else "<="
        text = f"{op} {self.target:g}{self.unit if self.unit != 'x' else ''}"
        if self.stretch is not None:
            text += f" (stretch {self.stretch:g})"
        return text

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        out["target_text"] = self.target_text
        return out


@dataclass
class ScenarioResult:
    """One scenario's raw figures (`figures`), its ratios (`checks`), or why it was skipped."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "figures": self.figures,
            "checks": [c.as_json() for c in self.checks],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
        }


def count_lines(path: str) -> int:
    """Lines in the file at `path` (0 when there is none): a trace log's, say."""
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def run_from_command_line(
    module: str,
    doc: str | None,
    run: Callable[..., ScenarioResult],
    argv: list[str] | None,
    *,
    servers: bool = False,
) -> ScenarioResult:
    """`python -m benchmarks.<module> [--quick] [--server ...]`: parse the arguments and
    run the scenario; `--server` for the scenarios that take one (`servers=True`)."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{module}", description=doc)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    if servers:
        add_server_option(parser)
    args = parser.parse_args(argv)
    if servers and args.server:
        use_servers(args.server)
    return run(quick=args.quick)
