"""`actors.tracing.views.trace_view`: one trace as a waterfall, from the trace logs of
several processes; served only with DEBUG on, reading a bounded tail of each file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from actors.tracing import views
from actors.tracing.views import trace_view

SERVER_PID, WORKER_PID = 11, 22


def at(ms: float) -> str:
    """A timestamp `ms` after 10:00:00 (µs resolution, as the log writes them)."""
    us = round(ms * 1000)
    return f"2026-01-01T10:00:{us // 1_000_000:02d}.{us % 1_000_000:06d}Z"


def event(name: str, ms: float, process: int, **keys: Any) -> dict[str, Any]:
    return {"event": name, "timestamp": at(ms), "process": process, "level": "info", **keys}


# A deferred request as a server and an RQ worker log it: it arrives at 1.000 ms
# (`envelope.handled` at 1.400 ms with duration 400 µs), is queued at 1.300 ms, waits
# 8.7 ms, runs on the worker from 10.000 ms to 30.000 ms and publishes a push.
SERVER = [
    event("connection.opened", 0, SERVER_PID, conn="c1", path="/ws/"),
    event("job.queued", 1.3, SERVER_PID, i="abc", t="report.build", job="j1", queue="default"),
    event(
        "envelope.handled",
        1.4,
        SERVER_PID,
        i="abc",
        t="report.build",
        state="q",
        code=None,
        duration_us=400,
        stages_us={"respond": 150, "parse": 20, "validate": 30, "authorize": 0, "dispatch": 200},
    ),
    event("envelope.handled", 2.0, SERVER_PID, i="other", t="ping", state="s", duration_us=50),
]
WORKER = [
    event("job.started", 10.2, WORKER_PID, i="abc", t="report.build", job="j1", wait_us=8700),
    event("job.progress", 20, WORKER_PID, i="abc", t="report.build", job="j1"),
    event("push.published", 29, WORKER_PID, i="abc", t="report.ready", topic="user.1"),
    event(
        "job.finished",
        30,
        WORKER_PID,
        i="abc",
        t="report.build",
        job="j1",
        outcome="s",
        code=None,
        duration_us=20_000,
    ),
]


def lines(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text(lines(events))
    return path


def get(i: str, method: str = "get") -> tuple[int, dict[str, Any]]:
    request = getattr(RequestFactory(), method)(f"/envelope/trace/{i}")
    response: HttpResponse = trace_view(request, i)
    return response.status_code, json.loads(response.content) if response.content else {}


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The server's log as ENVELOPE_TRACE_LOG, the worker's as an extra file."""
    server = write(tmp_path / "server.jsonl", SERVER)
    worker = write(tmp_path / "worker.jsonl", WORKER)
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(server))
    return server, worker


def rows_of(answer: dict[str, Any]) -> list[tuple[str, str, int, int | None]]:
    return [(r["kind"], r["label"], r["start_us"], r["duration_us"]) for r in answer["rows"]]


@override_settings(DEBUG=False)
def test_refused_with_a_reason_when_debug_is_off(logs: tuple[Path, Path]) -> None:
    status, answer = get("abc")
    assert status == 404
    assert answer["code"] == "not_found"
    assert "DEBUG" in answer["message"]
    assert "rows" not in answer


def test_events_of_two_processes_make_one_waterfall(logs: tuple[Path, Path]) -> None:
    server, worker = logs
    with override_settings(DEBUG=True, ENVELOPE_TRACE_VIEW_FILES=[str(worker)]):
        status, answer = get("abc")
    assert status == 200
    assert answer["i"] == "abc" and answer["t"] == "report.build"
    # Times from the arrival, 1.000 ms: 400 µs before `envelope.handled` was logged.
    assert rows_of(answer) == [
        ("request", "report.build handled → q", 0, 400),
        # Consecutive stages; the outermost (`respond`, mostly the reply going out) last.
        ("stage", "parse", 0, 20),
        ("stage", "validate", 20, 30),
        ("stage", "authorize", 50, 0),
        ("stage", "dispatch", 50, 200),
        ("stage", "respond", 250, 150),
        ("event", "job.queued q", 300, None),
        # The run is timed from finished - duration (9.000 ms after the arrival); the wait,
        # `wait_us` long, ends there.
        ("wait", "queued (q → r)", 300, 8700),
        ("job", "job report.build → s", 9000, 20_000),
        ("event", "job.progress", 19_000, None),
        ("push", "push.published report.ready → user.1", 28_000, None),
    ]
    sides = {(r["kind"], r["side"], r["process"]) for r in answer["rows"]}
    assert ("request", "server", SERVER_PID) in sides
    assert ("job", "worker", WORKER_PID) in sides
    assert ("wait", "queue", None) in sides
    assert answer["states"] == [
        {"state": "q", "at_us": 300, "event": "job.queued"},
        {"state": "r", "at_us": 9200, "event": "job.started"},
        {"state": "s", "at_us": 29_000, "event": "job.finished"},
    ]
    assert answer["complete"] is True and answer["state"] == "s"
    assert answer["span_us"] == 29_000
    assert answer["processes"] == [
        {"process": SERVER_PID, "kind": "server"},
        {"process": WORKER_PID, "kind": "worker"},
    ]
    # Every event of the trace, in time order, with its offset, process and kind.
    assert [(e["event"], e["at_us"], e["kind"]) for e in answer["events"]] == [
        ("job.queued", 300, "server"),
        ("envelope.handled", 400, "server"),
        ("job.started", 9200, "worker"),
        ("job.progress", 19_000, "worker"),
        ("push.published", 28_000, "worker"),
        ("job.finished", 29_000, "worker"),
    ]
    handled = answer["events"][1]
    assert handled["state"] == "q"
    assert handled["fields"]["stages_us"]["dispatch"] == 200
    assert [f["path"] for f in answer["files"]] == [str(server), str(worker)]


def test_a_plain_request_is_complete_with_its_own_state(logs: tuple[Path, Path]) -> None:
    with override_settings(DEBUG=True):
        _, answer = get("other")
    assert rows_of(answer) == [("request", "ping handled → s", 0, 50)]
    assert answer["states"] == [{"state": "s", "at_us": 50, "event": "envelope.handled"}]
    assert answer["complete"] is True
    assert answer["processes"] == [{"process": SERVER_PID, "kind": "server"}]


@override_settings(DEBUG=True)
def test_without_the_workers_file_the_job_is_not_seen_and_not_complete(
    logs: tuple[Path, Path],
) -> None:
    _, answer = get("abc")
    assert [s["state"] for s in answer["states"]] == ["q"]
    assert answer["complete"] is False
    assert {r["kind"] for r in answer["rows"]} == {"request", "stage", "event"}


def test_a_finished_job_is_not_complete_until_the_request_line_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `envelope.handled` lines are gathered for up to 0.1 s: the worker's may come first.
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(write(tmp_path / "t.jsonl", WORKER)))
    with override_settings(DEBUG=True):
        _, answer = get("abc")
    assert answer["state"] == "s"
    assert answer["complete"] is False


def test_a_job_still_running_is_an_open_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(write(tmp_path / "t.jsonl", SERVER + WORKER[:2])))
    with override_settings(DEBUG=True):
        _, answer = get("abc")
    (job,) = [r for r in answer["rows"] if r["kind"] == "job"]
    assert job["open"] is True and job["duration_us"] is None
    assert job["label"] == "job report.build (running)"
    assert answer["complete"] is False and answer["state"] == "r"


@override_settings(DEBUG=True)
def test_an_unknown_id_answers_an_empty_trace(logs: tuple[Path, Path]) -> None:
    status, answer = get("nobody")
    assert status == 200
    assert answer["rows"] == answer["events"] == answer["states"] == []
    assert answer["complete"] is False and answer["span_us"] == 0


@override_settings(DEBUG=True)
@pytest.mark.parametrize("i", ["a" * 65, "a b", "ä"], ids=["too-long", "space", "non-ascii"])
def test_an_id_the_protocol_would_refuse_is_a_bad_request(logs: tuple[Path, Path], i: str) -> None:
    status, answer = get(i)
    assert status == 400
    assert answer["code"] == "bad_trace_id"


@override_settings(DEBUG=True, ENVELOPE_TRACE_LOG=None)
def test_without_a_trace_log_it_says_which_setting_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENVELOPE_TRACE_LOG", raising=False)
    status, answer = get("abc")
    assert status == 404
    assert answer["code"] == "no_trace_log"
    assert "ENVELOPE_TRACE_LOG" in answer["message"]


@override_settings(DEBUG=True)
def test_only_get(logs: tuple[Path, Path]) -> None:
    status, _ = get("abc", method="post")
    assert status == 405


def test_a_missing_or_unreadable_file_is_reported_not_an_error(
    logs: tuple[Path, Path], tmp_path: Path
) -> None:
    with override_settings(
        DEBUG=True, ENVELOPE_TRACE_VIEW_FILES=[str(tmp_path / "gone.jsonl"), str(tmp_path)]
    ):
        status, answer = get("abc")
    assert status == 200
    gone, directory = answer["files"][1:]
    assert gone["missing"] is True
    assert directory["missing"] is False and directory["error"]
    assert answer["rows"]


def test_only_the_tail_of_a_large_log_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 200 kB of other traces' lines, then the worker's lines of `abc`; the view reads
    # the last 1 kB only: the server's lines of `abc`, at the start, are past the bound.
    noise = [event("envelope.handled", 5, SERVER_PID, i=f"n{k}", state="s") for k in range(2000)]
    path = tmp_path / "big.jsonl"
    path.write_text(lines(SERVER) + lines(noise) + lines(WORKER))
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(path))
    with override_settings(DEBUG=True, ENVELOPE_TRACE_VIEW_MAX_BYTES=1024):
        _, answer = get("abc")
    (read,) = answer["files"]
    assert read["truncated"] is True
    assert read["read_bytes"] == 1024 < read["size"]
    assert answer["max_bytes"] == 1024
    # The line cut in the middle at the start of the tail is dropped, not counted malformed.
    assert answer["malformed"] == 0
    assert [e["event"] for e in answer["events"]] == [
        "job.started",
        "job.progress",
        "push.published",
        "job.finished",
    ]
    with override_settings(DEBUG=True):
        _, whole = get("abc")
    assert whole["files"][0]["truncated"] is False
    assert len(whole["events"]) == 6


def test_at_most_max_events_are_answered(
    logs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "MAX_EVENTS", 2)
    with override_settings(DEBUG=True, ENVELOPE_TRACE_VIEW_FILES=[str(logs[1])]):
        _, answer = get("abc")
    assert [e["event"] for e in answer["events"]] == ["job.queued", "envelope.handled"]
    assert answer["omitted"] == 4


def test_jobs_of_the_thread_backend_run_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_process = [{**e, "process": SERVER_PID} for e in SERVER + WORKER]
    monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(write(tmp_path / "t.jsonl", in_process)))
    with override_settings(DEBUG=True):
        _, answer = get("abc")
    assert answer["processes"] == [{"process": SERVER_PID, "kind": "server"}]
    (job,) = [r for r in answer["rows"] if r["kind"] == "job"]
    assert job["side"] == "server"
