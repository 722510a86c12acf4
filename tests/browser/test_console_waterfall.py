"""The console's waterfall: click a request, see its life from the trace log - the stages
on the server, the queue, the job on a real RQ worker - as rows on one time axis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks._redis import private_redis
from tests.browser.test_console_first_look import png_size
from tests.example.server import ExampleServer, example_server, example_worker

pytestmark = pytest.mark.slow

STAGES = ["parse", "validate", "authorize", "dispatch", "respond"]
ROWS = """rows => rows.map(row => ({
  kind: row.dataset.kind,
  text: row.querySelector(".wf-text").textContent,
  where: row.querySelector(".wf-where").textContent,
  start: row.cells[3].textContent,
  duration: row.cells[4].textContent,
}))"""


@pytest.fixture(scope="module")
def rq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    """The example as `make demo` runs it with Redis: daphne, an RQ worker, DEBUG on.
    A Redis of its own: the demo's queue is RQ's `default`, with no prefix."""
    tmp = tmp_path_factory.mktemp("waterfall")
    with private_redis() as url:
        extra = {"REDIS_URL": url, "EXAMPLE_DEBUG": "1"}
        with example_server(tmp, **extra) as server, example_worker(tmp, **extra):
            yield server


def log_in(page: Any, server: ExampleServer) -> None:
    page.goto(f"{server.http}/")
    page.wait_for_selector("#status[data-status='open']")
    page.click("#login")
    page.wait_for_selector("#user:has-text('user: demo')")
    page.wait_for_selector("#status[data-status='open']")


def send(page: Any, t: str, payload: str = "") -> str:
    """Send `t` from the console; the trace id of its entry in the request list."""
    before = page.locator(".request").count()
    page.select_option("#type", t)
    page.fill("#payload", payload)
    page.click("#send")
    page.wait_for_function(f"document.querySelectorAll('.request').length > {before}")
    return str(page.locator(".request").first.get_attribute("data-i"))


def open_waterfall(page: Any, i: str, click: str) -> list[dict[str, str]]:
    page.click(f".request[data-i='{i}'] {click}")
    page.wait_for_selector(f"#waterfall[data-i='{i}']:not([hidden])")
    page.wait_for_selector("#wf-status[data-state='complete']")
    rows: list[dict[str, str]] = page.eval_on_selector_all("#wf-rows tr", ROWS)
    return rows


def test_a_deferred_requests_waterfall_shows_stages_queue_and_the_workers_job(
    page: Any, rq_server: ExampleServer, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, rq_server)
    ping = send(page, "ping")
    report = send(page, "report.build", '{"rows": 3000}')
    page.wait_for_selector(f".request[data-i='{ping}'][data-state='s']")
    page.wait_for_selector(f".request[data-i='{report}'][data-state='s']", timeout=60_000)

    # A plain request, chosen by its reply: the request and its stages, answered `s`.
    rows = open_waterfall(page, ping, "li[data-state='s']")
    assert [(r["kind"], r["text"]) for r in rows] == [
        ("states", "s"),
        ("request", "ping handled → s"),
        *[("stage", name) for name in STAGES],
    ]
    server_side = rows[1]["where"]
    assert server_side.startswith("server ")
    assert all(r["where"] == server_side for r in rows[1:])
    assert page.inner_text("#wf-states") == "s +" + rows[1]["duration"]

    # The deferred one, chosen by the frame that left: stages on the server, the time in
    # the queue, the job's run on the worker with its progress, q -> r -> s.
    rows = open_waterfall(page, report, "li[data-state='sent']")
    kinds = [r["kind"] for r in rows]
    assert rows[0] == {**rows[0], "kind": "states", "text": "q → r → s"}
    assert [r["text"] for r in rows if r["kind"] == "stage"] == STAGES
    (request,) = [r for r in rows if r["kind"] == "request"]
    assert request["text"] == "report.build handled → q"
    assert request["where"] == server_side  # the same daphne
    (wait,) = [r for r in rows if r["kind"] == "wait"]
    assert wait["text"] == "queued (q → r)" and wait["where"] == "queue"
    (job,) = [r for r in rows if r["kind"] == "job"]
    assert job["text"] == "job report.build → s"
    assert job["where"].startswith("worker ") and job["where"] != server_side
    assert kinds.index("wait") == kinds.index("job") - 1
    events = [(r["text"], r["where"]) for r in rows if r["kind"] == "event"]
    assert events == [("job.queued q", server_side)] + [("job.progress", job["where"])] * 3
    states = page.locator("#wf-states li")
    assert [states.nth(k).get_attribute("data-state") for k in range(3)] == ["q", "r", "s"]
    summary = page.inner_text("#wf-summary")
    assert summary.startswith("report.build · s after ") and "worker" in summary

    # Bars on one axis: the job starts after the request arrived, and ends last.
    request_bar = page.locator("#wf-rows tr[data-kind='request'] .wf-bar").bounding_box()
    job_bar = page.locator("#wf-rows tr[data-kind='job'] .wf-bar").bounding_box()
    lane = page.locator("#wf-rows tr[data-kind='job'] .wf-lane").bounding_box()
    assert request_bar["x"] <= job_bar["x"]
    assert job_bar["x"] + job_bar["width"] == pytest.approx(lane["x"] + lane["width"], abs=2)

    shot = tmp_path / "waterfall.png"
    page.screenshot(path=str(shot))
    assert png_size(shot) == (1280, 900)


def test_with_debug_off_the_panel_says_why_there_is_no_waterfall(
    page: Any, server: ExampleServer
) -> None:
    page.goto(f"{server.http}/")
    page.wait_for_selector("#status[data-status='open']")
    i = send(page, "ping")
    page.wait_for_selector(f".request[data-i='{i}'][data-state='s']")
    page.click(f".request[data-i='{i}'] .show-waterfall")
    page.wait_for_selector("#wf-status[data-state='error']")
    assert "only when DEBUG is on" in page.inner_text("#wf-status")
    assert page.locator("#wf-rows tr").count() == 0
    page.click("#wf-close")
    assert page.locator("#waterfall").is_hidden()
    page.click(f".request[data-i='{i}'] .show-waterfall")
    page.wait_for_selector("#waterfall:not([hidden])")
    page.keyboard.press("Escape")
    assert page.locator("#waterfall").is_hidden()
