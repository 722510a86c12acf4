"""The trace log's writer process (`TraceLogSink(writer_process=True)`, what
`configure_logging(console=False)` uses): `envelope.handled` taken as records and made
into the same lines there, every line in the order it was logged, nothing lost when the
server is killed, and the server writing the file itself when the writer is gone."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import TraceLogSink, configure_logging
from actors.pipeline import StageTimer
from actors.testing import ActorHarness
from actors.tracing import flush_trace_logs, handled_recorder, handled_writer, stage_durations
from envelope import State
from tests.actors.test_logging import router
from tests.processes import ROOT, python_env

NAMES = ("respond", "parse", "validate", "authorize", "dispatch")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _wait_gone(pid: int, seconds: float = 10) -> None:
    """Until `pid` has exited (a zombie not yet reaped by its parent counts as gone)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still runs")


def _record(i: str, now: int = 50_000) -> tuple[Any, ...]:
    marks = (1_000, 3_000, 7_000, 12_000, 13_000, 40_000)
    return ("c1", 7, i, "log.echo", "s", None, marks, NAMES, now)


def test_a_record_becomes_the_line_the_handled_writer_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record, made into a line by the writer process, is byte for byte the line
    `handled_writer` writes from the durations the stage timer gives."""
    monkeypatch.setattr(time, "time_ns", lambda: 1_767_323_045_000_678_000)
    # The record is stamped with its `now` on the wall clock: both clocks read when the
    # batch is rendered, the monotonic one here at `now`.
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 50_000)
    path = tmp_path / "trace.jsonl"
    configure_logging(logging.INFO, json=True, trace_log=path, console=False, force=True)
    record, write = handled_recorder(), handled_writer()
    assert record is not None
    marks = [1_000, 3_000, 7_000, 12_000, 13_000, 40_000]
    ctx = type("Ctx", (), {"timings": marks, "started": 0.0})()
    duration, stages = StageTimer(NAMES, timed=True).timings(ctx, 50_000)  # type: ignore[arg-type]
    assert record("c1", 7, "w1", "log.echo", State.SUCCESS, None, marks, NAMES, 50_000)
    write("c1", 7, "w1", "log.echo", State.SUCCESS, None, duration, stages)
    flush_trace_logs()
    first, second = path.read_bytes().splitlines()
    assert first == second
    line = json.loads(first)
    expected = {"respond": 12, "parse": 4, "validate": 5, "authorize": 1, "dispatch": 27}
    assert line["stages_us"] == expected
    assert line["duration_us"] == 49 and line["state"] == "s"
    assert line["timestamp"] == "2026-01-02T03:04:05.000678Z"


def test_a_record_is_stamped_when_it_was_made_not_when_it_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record carries only the monotonic clock: its line's time is that reading on the
    wall clock, however long after the batch is written."""
    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, writer_process=True)
    sink.gather_handled(_record("early", now=50_000))
    sink.gather_handled(_record("later", now=1_050_000))
    monkeypatch.setattr(time, "time_ns", lambda: 1_767_323_045_000_678_000)
    monkeypatch.setattr(time, "perf_counter_ns", lambda: 2_050_000)  # 2 ms after the first
    sink.flush()
    monkeypatch.undo()
    sink.close()
    stamps = {line["i"]: line["timestamp"] for line in _lines(path)}
    assert stamps == {
        "early": "2026-01-02T03:04:04.998678Z",
        "later": "2026-01-02T03:04:04.999678Z",
    }


def test_stage_durations_of_a_request_that_stopped_in_a_stage() -> None:
    marks = [1_000, 3_000, 0, 0]  # the second stage never called on
    assert stage_durations(("a", "b", "c"), marks, 10_000) == (9, {"a": 2, "b": 7, "c": 0})


async def test_a_server_logs_its_envelopes_through_its_writer_process(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    configure_logging(logging.INFO, trace_log=path, console=False, force=True)
    async with ActorHarness([router], address="conn-1") as client:
        for k in range(300):  # more than a batch (256) and the rest by the timer
            await client.request("log.echo", {"text": "x"}, i=f"w{k}")
    flush_trace_logs()
    handled = [e for e in _lines(path) if e["event"] == "envelope.handled"]
    assert [e["i"] for e in handled] == [f"w{k}" for k in range(300)]
    first = handled[0]
    assert list(first) == [
        *("conn", "user", "i", "t", "state", "code", "duration_us", "stages_us"),
        *("event", "level", "timestamp", "process"),
    ]
    assert first["process"] == os.getpid() and first["conn"] == "conn-1"
    assert list(first["stages_us"]) == ["respond", "parse", "validate", "authorize", "dispatch"]
    assert first["duration_us"] >= sum(first["stages_us"].values()) - len(NAMES)
    (sink,) = [p for p in _chain() if isinstance(p, TraceLogSink)]
    assert sink.writer_pid is not None and sink.writer_pid != os.getpid()


def _chain() -> list[Any]:
    import structlog

    return list(structlog.get_config()["processors"])


def test_lines_keep_the_order_they_were_logged_in(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=5, writer_process=True)
    sink.gather_handled(_record("1"))
    sink.gather_handled(_record("2"))
    sink(None, "warning", {"event": "envelope.overloaded", "i": "3"})  # handed over at once
    sink.gather({"event": "envelope.handled", "i": "4", "level": "info"})
    sink.gather_handled(_record("5"))
    sink.flush()
    assert [e["i"] for e in _lines(path)] == ["1", "2", "3", "4", "5"]
    writer = sink.writer_pid
    assert writer is not None
    sink.close()
    _wait_gone(writer, 5)  # it ends with its input


KILLED = """
import os, signal, sys, time
from actors import TraceLogSink
sink = TraceLogSink(sys.argv[1], flush_seconds=0.05, writer_process=True)
for k in range(1000):
    sink.gather_handled(("c", None, f"k{k}", "t", "s", None, (1, 2, 3), ("a", "b"), 9))
sink(None, "error", {"event": "last", "i": "last"})
print(sink.writer_pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_a_killed_server_handed_over_is_written(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(path)],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE="tests.settings"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _wait_gone(int(proc.stdout.strip()))  # the writer read its pipe to the end
    ids = [e["i"] for e in _lines(path)]
    assert ids == [f"k{k}" for k in range(1000)] + ["last"]


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[TraceLogSink, int, Path]]:
    """A sink whose writer process has written its first line ("1"): the sink, the
    writer's pid, the file."""
    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=5, writer_process=True)
    sink.gather_handled(_record("1"))
    sink.flush()
    writer = sink.writer_pid
    assert writer is not None
    yield sink, writer, path
    sink.close()


def test_a_dead_writer_leaves_the_server_writing_the_file(
    started: tuple[TraceLogSink, int, Path], capfd: Any
) -> None:
    sink, writer, path = started
    os.kill(writer, signal.SIGKILL)
    _wait_gone(writer)
    for k in range(3):
        sink.gather_handled(_record(f"after{k}"))
        sink(None, "warning", {"event": "odd", "i": f"line{k}"})
    sink.flush()
    assert sink.writer_pid is None
    assert [e["i"] for e in _lines(path)] == [
        *("1", "after0", "line0", "after1", "line1", "after2", "line2")
    ]
    err = capfd.readouterr().err
    assert err.count("the trace log writer") == 1 and "writes the file itself" in err


def test_the_writer_outlives_a_ctrl_c_of_its_process_group(
    started: tuple[TraceLogSink, int, Path],
) -> None:
    """A Ctrl-C reaches the whole foreground group: the writer leaves the stopping to the
    server, whose lines it still writes."""
    sink, writer, path = started
    os.kill(writer, signal.SIGINT)
    os.kill(writer, signal.SIGTERM)
    sink.gather_handled(_record("2"))
    sink.flush()
    assert sink.writer_pid == writer
    assert [e["i"] for e in _lines(path)] == ["1", "2"]


def test_a_forked_child_writes_its_own_lines_and_starts_no_writer(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=5, writer_process=True)
    sink.gather_handled(_record("parent"))
    sink.flush()
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12 warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: an RQ work horse, say
        os.close(read)
        sink.gather_handled(_record("child"))
        sink(None, "info", {"event": "job.started", "i": "child-line"})
        sink.flush()
        os.write(write, b"none" if sink.writer_pid is None else b"some")
        os._exit(0)
    os.close(write)
    assert os.read(read, 8) == b"none"
    os.close(read)
    os.waitpid(pid, 0)
    sink.gather_handled(_record("parent-again"))
    sink.close()
    assert sorted(e["i"] for e in _lines(path)) == ["child", "child-line", "parent", "parent-again"]


async def test_configuring_again_stops_the_replaced_sinks_writer(tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    configure_logging(logging.INFO, trace_log=first, console=False, force=True)
    async with ActorHarness([router], address="conn-1") as client:
        await client.request("log.echo", {"text": "x"}, i="one")
        (sink,) = [p for p in _chain() if isinstance(p, TraceLogSink)]
        writer = sink.writer_pid
        assert writer is not None
        configure_logging(
            logging.INFO, trace_log=tmp_path / "second.jsonl", console=False, force=True
        )
        _wait_gone(writer, 5)
        # This connection's actor keeps the configuration it was made under (as a bound
        # logger does): its lines still reach the first file, written by the server.
        await client.request("log.echo", {"text": "x"}, i="two")
    flush_trace_logs()
    assert [e["i"] for e in _lines(first) if e["event"] == "envelope.handled"] == ["one", "two"]


def test_a_writer_that_cannot_start_leaves_the_server_writing_the_file(
    tmp_path: Path, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=5, writer_process=True)
    sink.gather_handled(_record("1"))
    sink(None, "warning", {"event": "odd", "i": "2"})
    sink.flush()
    assert sink.writer_pid is None
    assert [e["i"] for e in _lines(path)] == ["1", "2"]
    err = capfd.readouterr().err
    assert err.count("cannot start the trace log writer") == 1
    sink.close()
