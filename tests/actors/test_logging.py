"""Trace logs: one `envelope.handled` per envelope, `i` bound per envelope and never leaked,
stage timings, the set-up that respects the application's, the JSON-lines sink."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from django.test import override_settings
from pydantic import BaseModel

from actors import DEFAULT_PIPELINE, EnvelopeConsumer, configure_logging
from actors.pipeline import StageTimer, build_traced_chain
from actors.testing import ActorHarness, EnvelopeCommunicator, capture_trace
from actors.tracing import TraceLogSink, flush_trace_logs, is_enabled, logger, trace_log_path
from envelope import State, message
from handlers import Context, Router
from tests.processes import ROOT, python_env

router = Router("logging-tests")
gates: dict[str, anyio.Event] = {}
app_log = structlog.get_logger("app")
STAGES = ["respond", "parse", "validate", "authorize", "dispatch"]


@message("log.echo")
class LogEcho(BaseModel):
    text: str


@router.handler(public=True)
async def log_echo(msg: LogEcho, ctx: Context) -> LogEcho:
    ctx.log.info("handler.ctx_log", text=msg.text)
    app_log.warning("handler.app_log", text=msg.text)
    return msg


@message("log.wait")
class LogWait(BaseModel):
    tag: str


@router.handler(public=True)
async def log_wait(msg: LogWait) -> None:
    app_log.info("wait.before", tag=msg.tag)
    await gates[msg.tag].wait()
    app_log.info("wait.after", tag=msg.tag)


@message("log.wait.concurrent")
class LogWaitConcurrent(LogWait):
    pass


@router.handler(public=True, concurrent=True)
async def log_wait_concurrent(msg: LogWaitConcurrent) -> None:
    await log_wait(msg)


@message("log.fail")
class LogFail(BaseModel):
    pass


@router.handler(public=True)
async def log_fail(msg: LogFail) -> None:
    raise RuntimeError("kaboom")


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Each test configures structlog as it needs; the session's configuration comes back."""
    saved = structlog.get_config()
    processors = list(saved["processors"])
    was_configured = structlog.is_configured()
    gates.clear()
    yield
    structlog.reset_defaults()
    if was_configured:
        structlog.configure(**{**saved, "processors": processors})


def at(level: int) -> io.StringIO:
    stream = io.StringIO()
    assert configure_logging(level, json=True, stream=stream, trace_log="", force=True)
    return stream


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


async def test_one_handled_event_per_envelope_with_stage_timings() -> None:
    at(logging.INFO)
    async with ActorHarness([router], address="conn-1") as client:
        with capture_trace() as events:
            ok = await client.request("log.echo", {"text": "hi"}, i="e1")
            bad = await client.request("log.nope", {}, i="e2")
            failed = await client.request("log.fail", {}, i="e3")
    assert (ok.s, bad.s, failed.s) == (State.SUCCESS, State.FAILED, State.FAILED)
    handled = named(events, "envelope.handled")
    assert [(e["i"], e["t"], e["state"], e["code"]) for e in handled] == [
        ("e1", "log.echo", "s", None),
        ("e2", "log.nope", "f", "unknown_type"),
        ("e3", "log.fail", "f", "internal"),
    ]
    for event in handled:
        assert event["level"] == "info"
        assert event["conn"] == "conn-1"
        assert "user" in event
        assert isinstance(event["duration_us"], int) and event["duration_us"] >= 0
        assert list(event["stages_us"]) == STAGES
        assert all(v >= 0 for v in event["stages_us"].values())
        # The stages' own times add up to the envelope's whole time, give or take rounding.
        assert sum(event["stages_us"].values()) <= event["duration_us"] + 5
    # The validate stage did nothing for an unknown type's envelope beyond failing.
    assert handled[1]["stages_us"]["dispatch"] == 0
    internal = named(events, "envelope.internal_error")
    assert internal[0]["i"] == "e3" and internal[0]["exc_info"]


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING], ids=["info", "warning"])
async def test_the_handler_duration_metric_is_the_envelopes_time(level: int) -> None:
    """With INFO on, the histogram takes the envelope's time from the clock read that
    times its stages (its `duration_us`); with logging off, from a clock read of its own."""
    from prometheus_client import REGISTRY

    def observed(suffix: str) -> float:
        name = f"envelope_handler_duration_seconds_{suffix}"
        return REGISTRY.get_sample_value(name, {"type": "log.echo"}) or 0.0

    at(level)
    count, total = observed("count"), observed("sum")
    async with ActorHarness([router], address="conn-1", metrics=True) as client:
        assert client.config.timer.timed is (level == logging.INFO)
        with capture_trace() as events:
            await client.request("log.echo", {"text": "hi"}, i="m1")
    assert observed("count") - count == 1
    spent = observed("sum") - total
    assert 0 < spent < 1.0
    if level == logging.INFO:
        (handled,) = named(events, "envelope.handled")
        assert spent == pytest.approx(handled["duration_us"] * 1e-6)


async def test_log_lines_inside_a_handler_carry_its_i() -> None:
    at(logging.INFO)
    async with ActorHarness([router], address="conn-1") as client:
        with capture_trace() as events:
            await client.request("log.echo", {"text": "hi"}, i="abc")
            app_log.info("outside")
    (via_ctx,) = named(events, "handler.ctx_log")
    assert (via_ctx["i"], via_ctx["t"], via_ctx["conn"]) == ("abc", "log.echo", "conn-1")
    (via_app,) = named(events, "handler.app_log")
    assert (via_app["i"], via_app["t"], via_app["conn"]) == ("abc", "log.echo", "conn-1")
    (outside,) = named(events, "outside")
    assert "i" not in outside and "t" not in outside and "conn" not in outside


async def test_context_never_leaks_between_interleaved_connections_and_envelopes() -> None:
    at(logging.INFO)
    for tag in ("a1", "b1", "c1", "c2"):
        gates[tag] = anyio.Event()
    async with (
        ActorHarness([router], address="conn-a") as a,
        ActorHarness([router], address="conn-b") as b,
    ):
        with capture_trace() as events:
            await a.send("log.wait", {"tag": "a1"}, i="A1")
            await b.send("log.wait", {"tag": "b1"}, i="B1")
            # Two concurrent envelopes on one connection (they start once B1 is done),
            # interleaved too.
            await b.send("log.wait.concurrent", {"tag": "c1"}, i="C1")
            await b.send("log.wait.concurrent", {"tag": "c2"}, i="C2")
            with anyio.fail_after(2):
                while len(named(events, "wait.before")) < 2:  # noqa: ASYNC110 (a plain list)
                    await anyio.sleep(0.005)
            gates["b1"].set()
            await b.until_terminal("B1")
            with anyio.fail_after(2):
                while len(named(events, "wait.before")) < 4:  # noqa: ASYNC110 (a plain list)
                    await anyio.sleep(0.005)
            gates["c2"].set()
            gates["a1"].set()
            gates["c1"].set()
            await a.until_terminal("A1")
            await b.until_terminal("C1")
            await b.until_terminal("C2")
            await a.request("log.echo", {"text": "next"}, i="A2")
    expected = {"a1": "A1", "b1": "B1", "c1": "C1", "c2": "C2"}
    waits = named(events, "wait.before") + named(events, "wait.after")
    assert len(waits) == 8
    for event in waits:
        assert event["i"] == expected[event["tag"]], event
        assert event["conn"] == ("conn-a" if event["tag"] == "a1" else "conn-b"), event
    conns = {e["i"]: e["conn"] for e in named(events, "envelope.handled")}
    assert conns == {"A1": "conn-a", "B1": "conn-b", "C1": "conn-b", "C2": "conn-b", "A2": "conn-a"}
    (echo,) = named(events, "handler.app_log")
    assert echo["i"] == "A2"


async def test_with_logging_off_nothing_is_timed_but_warnings_still_carry_i() -> None:
    at(logging.WARNING)
    _, timer = build_traced_chain(DEFAULT_PIPELINE)
    assert timer.timed is False
    async with ActorHarness([router]) as client:
        with capture_trace() as events:
            await client.request("log.echo", {"text": "hi"}, i="w1")
    assert named(events, "envelope.handled") == []
    (warning,) = named(events, "handler.app_log")
    assert warning["i"] == "w1"


async def test_debug_adds_one_event_per_stage() -> None:
    at(logging.DEBUG)
    _, timer = build_traced_chain(DEFAULT_PIPELINE)
    assert timer.timed is True
    async with ActorHarness([router]) as client:
        with capture_trace() as events:
            await client.request("log.echo", {"text": "hi"}, i="d1")
    stages = named(events, "envelope.stage")
    assert sorted(e["stage"] for e in stages) == sorted(STAGES)
    assert {(e["i"], e["level"]) for e in stages} == {("d1", "debug")}


async def test_connection_opened_and_closed_events() -> None:
    at(logging.INFO)
    app = EnvelopeConsumer.as_asgi(routers=[router])
    with capture_trace() as events:
        client = EnvelopeCommunicator(app, "/ws/")
        connected, _ = await client.connect()
        assert connected
        await client.request("log.echo", {"text": "x"})
        await client.request("log.fail", {})
        await client.disconnect(code=4000)
    (opened,) = named(events, "connection.opened")
    assert opened["path"] == "/ws/"
    assert "user" in opened and "conn" in opened
    (closed,) = named(events, "connection.closed")
    assert (closed["code"], closed["handled"], closed["failed"]) == (4000, 2, 1)


def test_the_library_leaves_an_applications_configuration_alone() -> None:
    structlog.reset_defaults()
    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    assert configure_logging() is False
    logger.info("mine", k=1)
    assert json.loads(stream.getvalue()) == {"event": "mine", "k": 1}


def test_the_default_chain_json_and_console() -> None:
    structlog.reset_defaults()
    stream = io.StringIO()
    assert configure_logging(logging.INFO, json=True, stream=stream, trace_log="") is True
    with structlog.contextvars.bound_contextvars(i="x1"):
        logger.info("hello", n=1)
    logger.debug("hidden")
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert set(event) == {"event", "n", "i", "level", "timestamp", "process"}
    assert event["timestamp"].endswith("Z") and event["level"] == "info"
    stream = io.StringIO()
    configure_logging(logging.INFO, json=False, stream=stream, trace_log="", force=True)
    logger.info("hello", n=1)
    assert "hello" in stream.getvalue() and "n=1" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


class _Writes(io.StringIO):
    """A stream that counts its writes (each one a system call on an unbuffered stderr)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize("as_json", [True, False])
def test_a_console_line_is_one_write(as_json: bool) -> None:
    stream = _Writes()
    configure_logging(logging.INFO, json=as_json, stream=stream, trace_log="", force=True)
    logger.info("hello", n=1)
    logger.info("again", n=2)
    assert stream.writes == 2
    assert [line.endswith("\n") for line in stream.getvalue().splitlines(True)] == [True] * 2


def test_is_enabled_follows_the_level() -> None:
    at(logging.WARNING)
    assert not is_enabled(logging.INFO) and is_enabled(logging.ERROR)
    at(logging.DEBUG)
    assert is_enabled(logging.DEBUG)


def test_trace_log_path_from_environment_or_settings(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.delenv("ENVELOPE_TRACE_LOG", raising=False)
    assert trace_log_path() is None
    with override_settings(ENVELOPE_TRACE_LOG=str(tmp_path / "s.jsonl")):
        assert trace_log_path() == str(tmp_path / "s.jsonl")
        monkeypatch.setenv("ENVELOPE_TRACE_LOG", str(tmp_path / "e.jsonl"))
        assert trace_log_path() == str(tmp_path / "e.jsonl")


def test_the_sink_writes_json_lines_with_exceptions(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    configure_logging(logging.INFO, trace_log=path, console=False, force=True)
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.error("failed", i="x", exc_info=True)
    logger.info("fine", i="y", obj=object())
    flush_trace_logs()  # with `console=False`, a writer process writes the lines
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["failed", "fine"]
    assert "ValueError: bad value" in lines[0]["exception"]
    assert lines[1]["obj"].startswith("<object object")
    sink = TraceLogSink(path)
    sink.close()


WRITER = """
import logging, sys
from actors.tracing import configure_logging, logger
configure_logging(logging.INFO, trace_log=sys.argv[1], console=False, force=True)
for n in range(int(sys.argv[2])):
    logger.info("line", i=f"{sys.argv[3]}-{n}", pad="x" * 6000)
"""


def test_several_processes_append_whole_lines_to_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "300", f"w{k}"],
            cwd=ROOT,
            env=python_env(DJANGO_SETTINGS_MODULE="tests.settings"),
        )
        for k in range(4)
    ]
    for proc in procs:
        assert proc.wait(60) == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1200
    per_process: dict[int, int] = {}
    for raw in lines:
        event = json.loads(raw)  # a torn line would not parse
        per_process[event["process"]] = per_process.get(event["process"], 0) + 1
    assert sorted(per_process.values()) == [300, 300, 300, 300]


def test_timestamps_are_iso_utc_with_microseconds() -> None:
    import datetime as dt
    import re

    from actors.tracing import UTCTimeStamper

    stamp = UTCTimeStamper()
    before = dt.datetime.now(dt.UTC)
    values = [stamp(None, "info", {})["timestamp"] for _ in range(3)]
    after = dt.datetime.now(dt.UTC)
    for value in values:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", value)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert before - dt.timedelta(microseconds=2) <= parsed <= after


def test_capture_trace_restores_the_configuration() -> None:
    stream = at(logging.INFO)
    before = list(structlog.get_config()["processors"])
    with capture_trace() as events:
        logger.info("captured", i="c1")
    assert [e["event"] for e in events] == ["captured"]
    assert stream.getvalue() == ""
    assert structlog.get_config()["processors"] == before
    logger.info("printed")
    assert json.loads(stream.getvalue())["event"] == "printed"


def test_trace_log_only_prints_nothing(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "only.jsonl"
    configure_logging(logging.INFO, trace_log=path, console=False, force=True)
    logger.info("quiet", i="q1")
    flush_trace_logs()
    assert capsys.readouterr() == ("", "")
    assert json.loads(path.read_text())["event"] == "quiet"


async def test_pushes_are_logged_with_the_i_that_caused_them() -> None:
    from actors import publish
    from tests.actors.sample import Pushed
    from tests.actors.sample import router as sample_router

    at(logging.INFO)
    async with ActorHarness([sample_router]) as client:
        with capture_trace() as events:
            await client.request("t.push", {"text": "x"}, i="P1")
            await publish("room.logs", Pushed(text="y"), i="P2")
    sent = [(e["event"], e["i"], e["t"]) for e in events if e["event"].startswith("push.")]
    assert ("push.sent", "P1", "t.pushed") in sent
    assert ("push.published", "P2", "t.pushed") in sent


def test_the_chain_is_structlogs_own_processors_with_the_librarys() -> None:
    from actors.tracing import UTCTimeStamper, add_process, default_processors, render_json_line

    chain = default_processors(json=True)
    assert chain[:2] == [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    assert isinstance(chain[2], UTCTimeStamper) and chain[3] is add_process
    assert chain[-2:] == [structlog.processors.format_exc_info, render_json_line]


def _lines(path: Any) -> list[dict[str, Any]]:
    import orjson

    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_sink_gathers_handled_lines_and_writes_others_at_once_in_order(
    tmp_path: Any,
) -> None:
    import time

    from actors import TraceLogSink

    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=0.2)
    sink(None, "info", {"event": "envelope.handled", "i": "1"})
    sink(None, "info", {"event": "envelope.handled", "i": "2"})
    assert not path.exists() or path.read_bytes() == b""  # gathered
    sink(None, "warning", {"event": "envelope.overloaded", "i": "3"})
    assert [e["i"] for e in _lines(path)] == ["1", "2", "3"]  # in order, at once
    sink(None, "info", {"event": "envelope.handled", "i": "4"})
    deadline = time.monotonic() + 3
    while len(_lines(path)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [e["i"] for e in _lines(path)] == ["1", "2", "3", "4"]  # written by the timer
    sink(None, "info", {"event": "envelope.handled", "i": "5"})
    sink.close()
    assert [e["i"] for e in _lines(path)][-1] == "5"


def test_a_forked_child_does_not_write_its_parents_gathered_lines(tmp_path: Any) -> None:
    import os
    import warnings

    from actors import TraceLogSink

    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=5)
    sink(None, "info", {"event": "envelope.handled", "i": "parent"})
    with warnings.catch_warnings():  # Python 3.12 warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: an RQ work horse, say
        sink(None, "info", {"event": "job.started", "i": "child"})
        os._exit(0)
    os.waitpid(pid, 0)
    sink.close()
    assert sorted(e["i"] for e in _lines(path)) == ["child", "parent"]


def test_the_sink_writes_events_with_keys_that_are_not_strings(tmp_path: Any) -> None:
    from actors import TraceLogSink

    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=0)
    sink(None, "info", {"event": "odd", "counts": {1: "one"}, "obj": object()})
    (line,) = _lines(path)
    assert line["counts"] == {"1": "one"} and line["obj"].startswith("<object")
    sink.close()


def _handled_event(**extra: Any) -> dict[str, Any]:
    return {
        "conn": "c1",
        "user": None,
        "i": "w1",
        "t": "log.echo",
        "state": State.SUCCESS,
        "code": None,
        "duration_us": 12,
        "stages_us": {"respond": 3, "parse": 9},
        **extra,
        "event": "envelope.handled",
    }


@pytest.mark.parametrize("console", [False, True])
def test_the_direct_writer_writes_what_the_processors_would(
    tmp_path: Path, console: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`info_writer` skips structlog's machinery under the library's own configuration;
    its lines must be the bytes structlog's run of the chain writes."""
    import time

    from actors.tracing import flush_trace_logs, info_writer

    monkeypatch.setattr(time, "time_ns", lambda: 1_767_323_045_000_678_000)
    path = tmp_path / "trace.jsonl"
    stream = io.StringIO()
    configure_logging(
        logging.INFO, json=True, trace_log=path, stream=stream, console=console, force=True
    )
    structlog.contextvars.bind_contextvars(request_id="r-1")
    try:
        direct = info_writer(later=True)
        assert direct.__name__ == "write"  # the direct writer, not structlog's
        direct(_handled_event())
        event = _handled_event()
        logger.bind().info(event.pop("event"), **event)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    flush_trace_logs()
    first, second = path.read_bytes().splitlines()
    assert first == second
    line = json.loads(first)
    assert list(line)[:4] == ["conn", "user", "i", "t"]
    assert (line["state"], line["level"], line["request_id"]) == ("s", "info", "r-1")
    assert line["timestamp"] == "2026-01-02T03:04:05.000678Z"
    printed = stream.getvalue().splitlines()
    if console:
        assert printed == [first.decode(), second.decode()]
    else:
        assert printed == []


def test_the_handled_writer_writes_what_the_processors_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`handled_writer` builds the `envelope.handled` line itself under the production
    configuration (trace log only): the bytes structlog's run of the chain writes, with
    what the application bound (looked for only when the context holds a variable it has
    not seen to add nothing), and without it once it is unbound."""
    import contextvars
    import time

    from actors.tracing import flush_trace_logs, handled_writer

    monkeypatch.setattr(time, "time_ns", lambda: 1_767_323_045_000_678_000)
    path = tmp_path / "trace.jsonl"
    configure_logging(logging.INFO, json=True, trace_log=path, console=False, force=True)
    other = contextvars.ContextVar[int]("not-structlog")
    fields = ("c1", None, "w1", "log.echo", State.SUCCESS, None, 12, {"respond": 3})

    def both() -> None:
        write = handled_writer()
        assert write.__name__ == "write"  # the fast writer, not structlog's
        write(*fields)
        event = dict(zip(_HANDLED_KEYS, fields, strict=True))
        logger.bind().info("envelope.handled", **event)

    def run() -> None:
        other.set(1)  # a variable it learns adds nothing
        both()
        structlog.contextvars.bind_contextvars(request_id="r-1", user="bound-user")
        both()  # request_id is carried; the event's own user wins over the bound one
        structlog.contextvars.unbind_contextvars("request_id")
        both()
        structlog.contextvars.bind_contextvars(level="bound", process="p-1", zone="z")
        both()  # a bound level is written over in its place; a bound process is kept
        structlog.contextvars.clear_contextvars()

    contextvars.copy_context().run(run)
    flush_trace_logs()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 8
    assert all(lines[k] == lines[k + 1] for k in range(0, 8, 2))
    plain, bound, unbound = (json.loads(lines[k]) for k in (0, 2, 4))
    assert list(plain) == [*_HANDLED_KEYS, "event", "level", "timestamp", "process"]
    assert plain["timestamp"] == "2026-01-02T03:04:05.000678Z"
    assert (bound["request_id"], bound["user"]) == ("r-1", None)
    assert unbound == plain
    odd = json.loads(lines[6])
    assert (odd["level"], odd["process"], odd["zone"]) == ("info", "p-1", "z")


_HANDLED_KEYS = ("conn", "user", "i", "t", "state", "code", "duration_us", "stages_us")


def test_the_handled_writer_follows_a_chain_changed_in_place(tmp_path: Path) -> None:
    from actors.tracing import handled_writer

    configure_logging(
        logging.INFO, json=True, trace_log=tmp_path / "t.jsonl", console=False, force=True
    )
    write = handled_writer()
    with capture_trace() as events:
        write("c1", None, "w2", "log.echo", State.SUCCESS, None, 5, None)
    assert [(e["event"], e["i"]) for e in events] == [("envelope.handled", "w2")]


def test_the_direct_writer_under_an_applications_configuration_uses_structlog() -> None:
    from actors.tracing import info_writer

    stream = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(stream),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    info_writer(later=True)(_handled_event())
    assert json.loads(stream.getvalue())["i"] == "w1"


async def test_capture_trace_sees_events_of_an_actor_logging_before_it() -> None:
    at(logging.INFO)
    async with ActorHarness([router], address="conn-1") as client:
        await client.request("log.echo", {"text": "before"}, i="b1")  # its writer is made
        with capture_trace() as events:
            await client.request("log.echo", {"text": "inside"}, i="b2")
        await client.request("log.echo", {"text": "after"}, i="b3")
    assert [e["i"] for e in named(events, "envelope.handled")] == ["b2"]


@message("log.bind")
class LogBind(BaseModel):
    request_id: str


@router.handler(public=True)
async def log_bind(msg: LogBind) -> None:
    structlog.contextvars.bind_contextvars(request_id=msg.request_id)


async def test_what_a_handler_binds_reaches_its_handled_line(tmp_path: Path) -> None:
    from actors.tracing import flush_trace_logs

    path = tmp_path / "trace.jsonl"
    configure_logging(logging.INFO, trace_log=path, console=False, force=True)
    async with ActorHarness([router], address="conn-1") as client:
        await client.request("log.bind", {"request_id": "r-42"}, i="k1")
    flush_trace_logs()
    (handled,) = [e for e in _lines(path) if e["event"] == "envelope.handled"]
    assert (handled["i"], handled["request_id"]) == ("k1", "r-42")


async def test_a_trace_log_that_cannot_be_written_fails_no_envelope(
    tmp_path: Path, capfd: Any
) -> None:
    """Said once on stderr - by the trace log's writer process, which shares it."""
    from actors.tracing import flush_trace_logs

    folder = tmp_path / "gone"
    folder.mkdir()
    configure_logging(logging.INFO, trace_log=folder / "trace.jsonl", console=False, force=True)
    folder.rmdir()  # the file cannot be opened now
    async with ActorHarness([router], address="conn-1") as client:
        for k in range(3):
            reply = await client.request("log.echo", {"text": "x"}, i=f"x{k}")
            assert reply.s == State.SUCCESS
    flush_trace_logs()
    err = capfd.readouterr().err
    assert err.count("cannot write the trace log") == 1
    assert "lines are dropped" in err


def test_stage_durations_are_given_to_the_stage_names() -> None:
    durations = StageTimer(("respond", "pa'rse", 'va"lidate'), timed=True).durations
    marks = [1_000, 3_000, 7_000, 12_000]  # perf_counter_ns when each stage started
    assert durations(marks, 20_000) == {"respond": 2 + 8, "pa'rse": 4, 'va"lidate': 5}
    assert list(durations(marks, 20_000)) == ["respond", "pa'rse", 'va"lidate']  # in order
    assert durations([1_999, 3_000, 3_999, 5_000], 5_001) == {
        "respond": 1,  # (1_001 + 1) // 1000: the outermost's two spans summed, then whole µs
        "pa'rse": 0,
        'va"lidate': 1,
    }
    assert StageTimer().durations([0], 5) == {}


def test_the_default_pipelines_timings_are_the_general_durations() -> None:
    """`timings` reads five stages (the default pipeline) without `durations`' loop: the
    same µs, in the same order."""
    import time

    names = ("respond", "parse", "validate", "authorize", "dispatch")
    timer = StageTimer(names, timed=True)
    start = time.perf_counter_ns() - 40_000
    marks = [start + offset for offset in (1, 3_500, 4_999, 9_000, 9_001, 20_000)]
    ctx = type("Ctx", (), {"timings": marks, "started": 0.0})()
    before = time.perf_counter_ns()
    total, stages = timer.timings(ctx)  # type: ignore[arg-type]
    after = time.perf_counter_ns()
    assert stages is not None and list(stages) == list(names)
    early, late = timer.durations(marks, before), timer.durations(marks, after)
    assert {k: stages[k] for k in names[1:]} == {k: early[k] for k in names[1:]}
    assert early["respond"] <= stages["respond"] <= late["respond"]
    assert (before - marks[0]) // 1000 <= total <= (after - marks[0]) // 1000


def test_gathered_events_are_rendered_in_order_with_other_lines(tmp_path: Path) -> None:
    """`envelope.handled` events wait as events and are rendered when the lines are
    written: before any other line, and all of them at exit (`flush`)."""
    import datetime as dt

    from actors import TraceLogSink

    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=30)
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)
    for k in range(3):
        sink.gather({"event": "envelope.handled", "i": f"g{k}", "timestamp": stamp})
    assert not path.exists() or path.read_bytes() == b""
    sink(None, "warning", {"event": "envelope.overloaded", "i": "w"})
    lines = _lines(path)
    assert [e["i"] for e in lines] == ["g0", "g1", "g2", "w"]
    assert lines[0]["timestamp"] == "2026-01-02T03:04:05.000678Z"
    for k in range(TraceLogSink.MAX_EVENTS + 1):  # a full batch is rendered at once
        sink.gather({"event": "envelope.handled", "i": f"b{k}", "odd": {1: object()}})
    sink.flush()
    lines = _lines(path)
    assert len(lines) == 4 + TraceLogSink.MAX_EVENTS + 1
    assert lines[-1]["i"] == f"b{TraceLogSink.MAX_EVENTS}" and "1" in lines[-1]["odd"]
    sink.close()


def test_gathering_without_a_delay_writes_at_once_and_bad_events_still_get_a_line(
    tmp_path: Path,
) -> None:
    from actors import TraceLogSink

    path = tmp_path / "trace.jsonl"
    sink = TraceLogSink(path, flush_seconds=0)
    sink.gather({"event": "envelope.handled", "i": "now"})
    assert [e["i"] for e in _lines(path)] == ["now"]
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(300):  # deeper than orjson renders
        inner["x"] = {}
        inner = inner["x"]
    sink.gather({"event": "envelope.handled", "i": "deep", "value": deep})
    last = _lines(path)[-1]
    assert last["i"] == "deep" and "render_error" in last
    sink.close()
