"""Metrics without a server: bounded labels, off by setting, and the library without
prometheus-client at all (in a fresh process where it cannot be imported)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY, CollectorRegistry

from actors.deferred import ThreadBackend
from actors.metrics import InMemoryMetrics, MultiProcessMetrics, recorder
from actors.testing import ActorHarness
from envelope import State
from tests.actors.deferred_app import jobs
from tests.actors.metrics_app import router
from tests.processes import ROOT, python_env


def frames(**labels: str) -> float:
    return REGISTRY.get_sample_value("envelope_frames_total", labels) or 0.0


def type_labels() -> set[str]:
    return {
        sample.labels["type"]
        for family in REGISTRY.collect()
        if family.name == "envelope_frames"
        for sample in family.samples
    }


async def test_unknown_types_never_become_labels() -> None:
    before = frames(type="_unknown", state="f", code="unknown_type")
    async with ActorHarness([router], allow_unauthenticated=True) as client:
        for n in range(50):
            reply = await client.request(f"mt.made.up.{n}", {})
            assert reply.p["code"] == "unknown_type"
    assert frames(type="_unknown", state="f", code="unknown_type") - before == 50
    assert not any(t.startswith("mt.made.up") for t in type_labels())


@pytest.mark.parametrize(
    "frame, code",
    [
        pytest.param("{nope", "bad_json", id="not-json"),
        pytest.param('{"p": {}}', "bad_envelope", id="no-t"),
        pytest.param(b"\x00binary", "bad_envelope", id="binary"),
    ],
)
async def test_unreadable_frames_are_counted_as_invalid(frame: str | bytes, code: str) -> None:
    before = frames(type="_invalid", state="f", code=code)
    async with ActorHarness([router], allow_unauthenticated=True) as client:
        await client.send_frame(frame)
        assert (await client.receive()).p["code"] == code
    assert frames(type="_invalid", state="f", code=code) - before == 1


async def test_metrics_off_counts_nothing() -> None:
    before = frames(type="mt.echo", state="s", code="")
    async with ActorHarness([router], allow_unauthenticated=True, metrics=False) as client:
        assert client.config.metrics is None
        assert (await client.request("mt.echo", {"text": "x"})).s is State.SUCCESS
    assert frames(type="mt.echo", state="s", code="") == before


async def test_metrics_on_count_the_same_request() -> None:
    before = frames(type="mt.echo", state="s", code="")
    async with ActorHarness([router], allow_unauthenticated=True) as client:
        assert client.config.metrics is recorder()
        assert (await client.request("mt.echo", {"text": "x"})).s is State.SUCCESS
    assert frames(type="mt.echo", state="s", code="") - before == 1


@pytest.mark.django_db(transaction=True)
async def test_a_job_that_expired_in_its_queue_is_timed_waiting_not_running() -> None:
    def observed(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"type": "dtest.late", "queue": "", **labels}) or 0

    wait = "envelope_deferred_queue_wait_seconds"
    waits, runs = (
        observed(f"{wait}_count"),
        observed("envelope_deferred_run_seconds_count", outcome="f"),
    )
    slow_waits = observed(f"{wait}_bucket", le="0.5")
    pool = ThreadBackend(workers=1)
    try:
        async with ActorHarness([jobs], backend=pool) as client:
            await client.send("dtest.sleep", {"seconds": 1.0}, i="busy")
            reply = await client.request("dtest.late", {"name": "m-late"}, timeout=5)
            assert reply.p["code"] == "timeout"
    finally:
        pool.shutdown()
    assert observed(f"{wait}_count") - waits == 1
    assert observed(f"{wait}_bucket", le="0.5") == slow_waits  # it waited longer than that
    assert observed("envelope_deferred_run_seconds_count", outcome="f") == runs


class Request:
    """What a recorder reads of a RequestContext."""

    def __init__(self, t: str | None, served: bool = True, seconds: float = 0.001) -> None:
        self.envelope = type("Env", (), {"t": t, "i": "req-1"})() if t is not None else None
        self.route = object() if served else None
        self.started = time.perf_counter() - seconds
        self.seconds = seconds


def feed(metrics: Any) -> None:
    """The same observations, for either recorder."""

    def handled(request: Request, state: State, code: str | None) -> None:
        metrics.handled(request, state, code, request.seconds)

    for _ in range(3):
        handled(Request("a.b"), State.SUCCESS, None)
    handled(Request("a.b"), State.FAILED, "forbidden")
    handled(Request("a.b", seconds=0.3), State.SUCCESS, None)
    handled(Request("zzz", served=False), State.FAILED, "unknown_type")
    handled(Request(None, served=False), State.FAILED, "bad_json")
    for depth in (0, 0, 3, 70):
        metrics.posted(depth)
    metrics.refused()
    metrics.closed_slow("over_budget")
    metrics.opened()
    metrics.opened()
    metrics.closed()
    metrics.delivered()
    metrics.subscribed(3)
    metrics.left(1)
    metrics.job_started("d.job", "default", 0.02)
    metrics.job_finished("d.job", "default", "s", 0.5)
    metrics.job_finished("d.job", None, "f", 0.004)


def exposed(registry: CollectorRegistry) -> dict[tuple[str, frozenset[Any]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")  # prometheus-client's own timestamps
    }


def test_both_recorders_expose_the_same_samples() -> None:
    alone, shared = CollectorRegistry(), CollectorRegistry()
    feed(InMemoryMetrics(alone))
    feed(MultiProcessMetrics(shared))
    found, other = exposed(alone), exposed(shared)
    timed = ("envelope_handler_duration_seconds_sum", frozenset({("type", "a.b")}))
    assert found.pop(timed) >= 0.3 and other.pop(timed) >= 0.3  # measured at the call
    untimed = {key for key in found if key[0] == "envelope_handler_duration_seconds_sum"}
    assert {key: found[key] for key in found.keys() - untimed} == {
        key: other[key] for key in other.keys() - untimed
    }
    assert (
        found[("envelope_frames_total", frozenset({("type", "a.b"), ("state", "s"), ("code", "")}))]
        == 4
    )
    assert (
        found[
            (
                "envelope_frames_total",
                frozenset({("type", "_unknown"), ("state", "f"), ("code", "unknown_type")}),
            )
        ]
        == 1
    )
    assert (
        found[
            (
                "envelope_frames_total",
                frozenset({("type", "_invalid"), ("state", "f"), ("code", "bad_json")}),
            )
        ]
        == 1
    )
    assert found[("envelope_mailbox_depth_bucket", frozenset({("le", "0.0")}))] == 2
    assert found[("envelope_mailbox_depth_bucket", frozenset({("le", "64.0")}))] == 3
    assert found[("envelope_mailbox_depth_bucket", frozenset({("le", "+Inf")}))] == 4
    assert found[("envelope_connections_open", frozenset())] == 1
    assert found[("envelope_topic_subscribers", frozenset())] == 2
    assert (
        len({labels for name, labels in found if name == "envelope_handler_duration_seconds_count"})
        == 3
    )


def test_a_slow_request_leaves_its_i_as_an_exemplar() -> None:
    registry = CollectorRegistry()
    feed(InMemoryMetrics(registry))
    marked = [
        sample
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "envelope_handler_duration_seconds_bucket" and sample.exemplar
    ]
    assert [(s.labels["le"], s.exemplar.labels) for s in marked] == [("0.5", {"i": "req-1"})]


@pytest.mark.parametrize("bad", ["yes", 1, 0.0])
def test_a_setting_that_is_not_a_bool_is_refused(bad: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_METRICS"):
        ActorHarness([router], metrics=bad)


WITHOUT_PROMETHEUS = """
import sys
sys.modules["prometheus_client"] = None  # import fails, as when it is not installed
import asyncio, django
django.setup()
from django.core.exceptions import ImproperlyConfigured
from actors.metrics import recorder
from actors.testing import ActorHarness
from tests.actors.deferred_app import jobs
from tests.actors.metrics_app import router

assert recorder() is None
try:
    recorder(True)
except ImproperlyConfigured as exc:
    print("insisting:", exc)
try:
    import actors.metrics.views
except ImproperlyConfigured as exc:
    print("view:", exc)

async def main():
    async with ActorHarness([router], allow_unauthenticated=True) as client:
        assert client.config.metrics is None
        print("reply:", (await client.request("mt.echo", {"text": "ok"})).p)

asyncio.run(main())
"""


def test_the_library_runs_without_prometheus_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PROMETHEUS],
        cwd=ROOT,
        env=python_env(DJANGO_SETTINGS_MODULE="tests.settings"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "insisting: ENVELOPE_METRICS = True needs prometheus-client" in out
    assert "view: actors.metrics.views needs prometheus-client" in out
    assert "reply: {'text': 'ok'}" in out
