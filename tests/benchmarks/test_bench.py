"""`envelope bench --smoke` (what `--quick` runs, with shorter timed windows) runs every
scenario and produces every figure and check (never timed here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sockets import PATHS, slices
from tests.processes import ROOT, python_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> dict[str, object]:
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "latest.json", out / "BENCHMARKS.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "actors.cli",
            "bench",
            "--smoke",
            "--json",
            str(json_path),
            "--markdown",
            str(md_path),
        ],
        cwd=ROOT,
        env=python_env(REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {
        "doc": json.loads(json_path.read_text()),
        "stdout": result.stdout,
        "stderr": result.stderr,
        "markdown": md_path.read_text(),
    }


def test_every_scenario_ran_or_says_why_not(quick_run: dict) -> None:
    doc = quick_run["doc"]
    names = [s["name"] for s in doc["scenarios"]]
    assert names == [
        "pipeline",
        "consumer",
        "sockets",
        "fanout",
        "memory",
        "soak",
        "storm",
        "deferred",
    ]
    for scenario in doc["scenarios"]:
        # Redis is there (the fixture) and so is the RQ backend: nothing may be skipped.
        assert scenario["skipped"] is None, scenario
        assert scenario["figures"] and scenario["checks"], scenario


@pytest.mark.parametrize("worker", ["forking", "simple"])
def test_a_deferred_trace_spans_the_server_and_the_worker(quick_run: dict, worker: str) -> None:
    scenarios = {s["name"]: s for s in quick_run["doc"]["scenarios"]}
    trace = scenarios["deferred"]["figures"][f"{worker}_example_trace"].splitlines()
    assert " events from 2 processes, " in trace[0]
    rows = [line.split() for line in trace[2:]]
    events = [row[2] for row in rows]
    for name in ("job.queued", "envelope.handled", "job.started", "job.finished"):
        assert name in events, trace
    assert events.index("job.queued") < events.index("job.started") < events.index("job.finished")
    server = {row[1] for row in rows if row[2] in ("job.queued", "envelope.handled")}
    workers = {row[1] for row in rows if row[2] in ("job.started", "job.finished")}
    assert len(server) == 1 and len(workers) == 1 and server != workers
    handled = next(row for row in rows if row[2] == "envelope.handled")
    assert handled[3] == "q"


def test_figures_are_measured(quick_run: dict) -> None:
    scenarios = {s["name"]: s for s in quick_run["doc"]["scenarios"]}
    for payload in ("small", "medium", "large"):
        fig = scenarios["pipeline"]["figures"][payload]
        assert fig["pipeline_us"] > 0 and fig["floor_us"] > 0
    traced = scenarios["pipeline"]["figures"]["small_otel"]  # the SDK is a dev dependency
    assert traced["on_us"] > 0 and traced["off_us"] > 0
    sockets = scenarios["sockets"]["figures"]
    assert sockets["servers"] == ["daphne", "uvicorn"]  # both, uvicorn being installed
    targets = [f"{server}/{path}" for server in sockets["servers"] for path in PATHS]
    for level in ("1_connections", "20_connections", "100_connections"):
        for target in [*targets, "daphne/envelope_info_log", "daphne/envelope_info_log_metrics"]:
            fig = sockets[level][target]
            assert fig["round_trips"] > 0 and fig["p99_ms"] >= fig["p50_ms"] > 0
            assert fig["server_cpu_us"] > 0
    # The logged server did write the trace events to its file.
    assert sockets["trace_log_lines"] > 0
    # The metered server counted its frames (scraped from it at the end).
    assert sockets["metered_frames"] > 0
    assert scenarios["memory"]["figures"]["envelope"]["connections"] == 100
    fanout = scenarios["fanout"]["figures"]
    assert sorted(fanout) == ["daphne/1x50", "daphne/2x50", "uvicorn/1x50", "uvicorn/2x50"]
    for fig in fanout.values():
        assert fig["envelope_deliveries_per_second"] > 0 and fig["plain_deliveries_per_second"] > 0
        assert fig["envelope_server_cpu_us_per_delivery"] > 0
    deferred = scenarios["deferred"]["figures"]
    for worker in ("forking", "simple"):
        for processes in (1, 4):
            burst = deferred[f"{worker}_burst_{processes}"]
            assert burst["requests"] == 20 and burst["processes"] == processes
            assert burst["p99_ms"] >= burst["p50_ms"] > 0 and burst["until_last_s_ms"] > 0
            assert burst["jobs_per_second_per_process"] > 0
            assert burst["worker_cpu_ms_per_job"] > 0
            # To the last `s`, without the closes: part of the whole (CPU time in ticks).
            assert 0 <= burst["server_cpu_ms_per_job_to_last_s"] <= burst["server_cpu_ms_per_job"]
        assert deferred[f"{worker}_idle"]["to_s_ms"]["p50"] > 0
    # In rounds, alternating: every figure per round, the check's ratio their median.
    rounds = deferred["rounds"]
    assert rounds == 3
    for processes in (1, 4):
        for worker in ("forking", "simple"):
            per_round = deferred[f"{worker}_burst_{processes}"]["per_round"]
            assert len(per_round["jobs_per_second_per_process"]) == rounds
        ratio = deferred[f"burst_ratio_{processes}"]
        assert len(ratio["per_round"]) == rounds
        assert min(ratio["per_round"]) <= ratio["median"] <= max(ratio["per_round"])


def test_the_table_and_the_report(quick_run: dict) -> None:
    checks = [c for s in quick_run["doc"]["scenarios"] for c in s["checks"]]
    for check in checks:
        assert check["label"] in quick_run["stdout"]
        assert f"| {check['label']} |" in quick_run["markdown"]
    assert "== sockets (3/8) quick (smoke)" in quick_run["stderr"]  # the live progress lines
    assert quick_run["doc"]["quick"] and quick_run["doc"]["smoke"]
    assert "(smoke run: quick, with shorter timed windows)" in quick_run["markdown"]
    machine = quick_run["doc"]["machine"]
    assert machine["cores"] >= 1 and machine["packages"]["channels"]
    assert "## Reproduce" in quick_run["markdown"]


def bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks *args` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _bench_refuses(*args: str) -> str:
    """Run `python -m benchmarks *args`, which must exit 2; its stderr."""
    result = bench(*args, timeout=60)
    assert result.returncode == 2
    return result.stderr


def test_the_opentelemetry_cost_is_measured_with_spans_on() -> None:
    # `benchmarks.otel` refuses to measure when the chain built with the SDK has no spans.
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.otel", "--quick"],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith("µs per envelope: off ")


def test_a_burst_of_no_requests_is_refused() -> None:
    assert "--burst takes a number >= 1" in _bench_refuses("deferred", "--burst", "0")


def test_a_sockets_round_is_cut_into_slices_long_enough_to_drain() -> None:
    """Targets take turns in slices of at least 0.25 s, and a millisecond per connection
    (each slice ends by waiting for the round trips in flight)."""
    assert [slices(level, 1.5) for level in (1, 50, 500)] == [6, 6, 3]
    assert slices(5000, 1.5) == 1  # never none
    assert slices(1, 0.25) == 1  # a smoke run's window: one slice


def test_unknown_scenario_is_refused() -> None:
    assert "unknown scenario(s) nope" in _bench_refuses("nope")


def test_the_sockets_scenario_compares_the_servers_and_their_baselines(quick_run: dict) -> None:
    (sockets,) = [s for s in quick_run["doc"]["scenarios"] if s["name"] == "sockets"]
    labels = [c["label"] for c in sockets["checks"]]
    for level in (1, 20, 100):
        assert f"sockets/{level}: round trips/s envelope, uvicorn vs daphne" in labels
        for server in ("daphne", "uvicorn"):
            prefix = f"sockets/{level} {server}: round trips/s envelope vs plain"
            assert {prefix, f"{prefix} without the hop"} <= set(labels)
        assert f"sockets/{level} daphne: round trips/s INFO log + metrics vs off" in labels


def test_one_server_can_be_chosen_and_the_websockets_package_can_generate_the_load(
    tmp_path: Path,
) -> None:
    json_path = tmp_path / "uvicorn.json"
    result = bench(
        "sockets", "--smoke", "--server", "uvicorn", "--client", "websockets",
        "--json", str(json_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(json_path.read_text())
    assert doc["servers"] == ["uvicorn"]
    assert doc["client"] == "websockets"
    (sockets,) = doc["scenarios"]
    assert set(sockets["figures"]["1_connections"]) == {
        "uvicorn/plain",
        "uvicorn/nohop",
        "uvicorn/envelope",
        "uvicorn/envelope_info_log",
        "uvicorn/envelope_info_log_metrics",
    }
    assert not any("uvicorn vs daphne" in c["label"] for c in sockets["checks"])
    assert all(
        fig["round_trips"] > 0 for fig in sockets["figures"]["1_connections"].values()
    )  # every target answered the websockets package's frames
