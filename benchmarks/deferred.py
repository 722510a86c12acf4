"""Scenario `deferred`: request to `s` latency of a deferred handler through a real RQ worker."""

from __future__ import annotations

from benchmarks._common import ScenarioResult, progress


def run(quick: bool = False) -> ScenarioResult:
    result = ScenarioResult("deferred")
    result.skipped = "the RQ backend is not available yet"
    progress(f"deferred: skipped, {result.skipped}")
    return result
