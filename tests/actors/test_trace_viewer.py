"""`envelope trace`: one trace id's timeline merged from several processes' JSON lines."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from actors.cli import main
from tests.processes import ROOT, python_env

SERVER = [
    {
        "event": "connection.opened",
        "timestamp": "2026-01-01T10:00:00.000000Z",
        "process": 11,
        "level": "info",
        "conn": "c1",
        "path": "/ws/",
    },
    {
        "event": "envelope.handled",
        "timestamp": "2026-01-01T10:00:00.010000Z",
        "process": 11,
        "level": "info",
        "i": "abc",
        "t": "report.build",
        "state": "q",
        "code": None,
        "duration_us": 350,
        "stages_us": {"respond": 20.0, "parse": 5.0, "dispatch": 300.0},
    },
    {
        "event": "envelope.handled",
        "timestamp": "2026-01-01T10:00:00.020000Z",
        "process": 11,
        "level": "info",
        "i": "fast",
        "t": "t.ping",
        "state": "s",
        "code": None,
        "duration_us": 40,
    },
    {
        "event": "envelope.handled",
        "timestamp": "2026-01-01T10:00:00.030000Z",
        "process": 11,
        "level": "info",
        "i": "slow",
        "t": "t.sleep",
        "state": "f",
        "code": "timeout",
        "duration_us": 90_000,
    },
]
WORKER = [
    {
        "event": "job.started",
        "timestamp": "2026-01-01T10:00:00.015000Z",
        "process": 22,
        "level": "info",
        "i": "abc",
        "t": "report.build",
        "job": "j1",
    },
    {
        "event": "job.finished",
        "timestamp": "2026-01-01T10:00:00.215000Z",
        "process": 22,
        "level": "info",
        "i": "abc",
        "t": "report.build",
        "job": "j1",
        "outcome": "s",
        "duration_us": 199_000,
    },
]


def write(path: Path, events: list[dict[str, Any]], junk: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [json.dumps(e) for e in events] + list(junk)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def logs(tmp_path: Path) -> list[str]:
    # The worker's file is given first: the order of files must not matter.
    worker = write(tmp_path / "worker.jsonl", WORKER, junk=["not json at all", "[1, 2]"])
    server = write(tmp_path / "server.jsonl", SERVER, junk=['{"no": "event key"}'])
    return [str(worker), str(server)]


def test_timeline_merges_processes_in_time_order(logs: list[str], capsys: Any) -> None:
    assert main(["trace", "abc", *logs]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("trace abc: 3 events from 2 processes, 205.000 ms")
    events = [line.split()[2] for line in lines[2:]]
    assert events == ["envelope.handled", "job.started", "job.finished"]
    assert lines[2].split()[:2] == ["0.000", "11"]
    assert lines[3].split()[:2] == ["5.000", "22"]
    assert "stages respond=20.0 parse=5.0 dispatch=300.0" in lines[2]
    assert "199.000 ms" in lines[4] and " s " in lines[4]
    assert "skipped 3 malformed lines of 9" in err


def test_json_output(logs: list[str], capsys: Any) -> None:
    assert main(["trace", "abc", "--json", *logs]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["i"] == "abc"
    assert doc["malformed"] == 3
    assert [(e["event"], e["rel_ms"], e["process"]) for e in doc["events"]] == [
        ("envelope.handled", 0.0, 11),
        ("job.started", 5.0, 22),
        ("job.finished", 205.0, 22),
    ]


def test_nothing_matches_is_said_clearly(logs: list[str], capsys: Any) -> None:
    assert main(["trace", "nope", *logs]) == 1
    assert "no event has i='nope'" in capsys.readouterr().err


def test_slowest_counts_the_worker_time_of_a_deferred_request(logs: list[str], capsys: Any) -> None:
    assert main(["trace", "--slowest", "2", *logs]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in out[1:]] == ["abc", "slow"]
    assert out[1].split()[0] == "205.000"
    assert "f/timeout" in out[2]


def test_slowest_json(logs: list[str], capsys: Any) -> None:
    assert main(["trace", "--slowest", "5", "--json", *logs]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["i"] for r in rows] == ["abc", "slow", "fast"]
    assert rows[2] == {
        "i": "fast",
        "t": "t.ping",
        "state": "s",
        "code": None,
        "duration_ms": 0.04,
        "span_ms": 0.04,
        "timestamp": "2026-01-01T10:00:00.020000Z",
        "process": 11,
    }


def test_stdin_is_read_when_no_file_is_given(monkeypatch: Any, capsys: Any) -> None:
    data = "\n".join(json.dumps(e) for e in SERVER + WORKER).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["trace", "fast"]) == 0
    assert "trace fast: 1 events from 1 process" in capsys.readouterr().out


def test_usage_errors(tmp_path: Path, capsys: Any) -> None:
    assert main(["trace"]) == 2
    assert "give a trace id" in capsys.readouterr().err
    assert main(["trace", "abc", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["trace", "--slowest", "0", str(tmp_path)]) == 2


def test_slowest_with_no_handled_events(tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path / "w.jsonl", WORKER)
    assert main(["trace", "--slowest", "3", str(path)]) == 1
    assert "no envelope.handled events" in capsys.readouterr().err


def test_the_command_runs_as_a_module_reading_stdin(logs: list[str]) -> None:
    data = Path(logs[1]).read_bytes() + Path(logs[0]).read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "actors.cli", "trace", "abc"],
        input=data,
        capture_output=True,
        cwd=ROOT,
        env=python_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert b"job.finished" in result.stdout
    assert b"skipped 3 malformed lines" in result.stderr


def test_the_envelope_command_without_a_subcommand_shows_its_help(capsys: Any) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "trace" in out and "bench" in out and "demo" in out


def test_demo_and_bench_are_handed_their_arguments(capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "pipeline, consumer, sockets, fanout, memory, soak, storm, deferred" in out


def test_integer_ids_and_lines_without_a_timestamp(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "odd.jsonl"
    write(
        path,
        [
            {"event": "late", "i": 42, "process": 1},
            {"event": "first", "i": 42, "timestamp": "2026-01-01T10:00:00Z", "process": 1},
            {"event": "second", "i": "42", "timestamp": "2026-01-01T10:00:01+00:00", "process": 1},
        ],
    )
    assert main(["trace", "42", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(e["event"], e["rel_ms"]) for e in doc["events"]] == [
        ("first", 0.0),
        ("second", 1000.0),
        ("late", None),
    ]


class _Terminal(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_without_files_it_reads_envelope_trace_log(
    logs: list[str], monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(io.BytesIO(b"")))
    monkeypatch.delenv("ENVELOPE_TRACE_LOG", raising=False)
    assert main(["trace", "abc"]) == 2
    assert "set ENVELOPE_TRACE_LOG" in capsys.readouterr().err
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", logs[1])
    assert main(["trace", "fast"]) == 0
    assert "trace fast: 1 events" in capsys.readouterr().out
