"""Metrics without a server: bounded labels, off by setting, and the library without
prometheus-client at all (in a fresh process where it cannot be imported)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY, CollectorRegistry

from actors.metrics import Metrics, recorder
from actors.testing import ActorHarness
from envelope import State
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


def test_label_children_are_made_once_per_label_set() -> None:
    metrics = Metrics(CollectorRegistry())

    class Request:  # what `handled` reads of a RequestContext
        def __init__(self, t: str) -> None:
            self.envelope = type("Env", (), {"t": t, "i": "x"})()
            self.route = object()
            self.started = 0.0

    for _ in range(3):
        metrics.handled(Request("a.b"), "s", None)
        metrics.handled(Request("a.b"), "f", "forbidden")
    assert set(metrics._frames) == {("a.b", "s", ""), ("a.b", "f", "forbidden")}
    assert set(metrics._durations) == {"a.b"}


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
