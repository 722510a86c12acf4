"""Prometheus metrics of a real daphne, scraped over HTTP from `metrics_view` and read with
prometheus-client's own parser, after real websocket clients drove it.

One daphne on its own (deferred handlers in its thread pool, the default registry), and
one daphne beside a real RQ worker sharing a `PROMETHEUS_MULTIPROC_DIR`, whose scrape
sums both processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from envelope import State
from tests.actors.rq_support import deferred_run, running_worker, ws_client
from tests.processes import asgi_server
from tests.scrape import Samples, label_values, parsed, scrape, value

pytestmark = pytest.mark.slow

ASGI_APP = "tests.actors.metrics_asgi:application"
SETTINGS = "tests.metrics_settings"


async def samples(port: int) -> Samples:
    """Every sample of a scrape of `metrics_view`, by its name and labels."""
    return parsed(await anyio.to_thread.run_sync(scrape, port))


# -- one daphne -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def port(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with deferred_run(redis_url, tmp_path_factory.mktemp("metrics")) as env:
        env["ENVELOPE_TEST_DEFERRED"] = "thread"
        with asgi_server(ASGI_APP, SETTINGS, **env) as p:
            yield p


async def test_answers_are_counted_by_type_state_and_code(port: int) -> None:
    before = await samples(port)
    async with ws_client(port) as client:
        assert (await client.request("mt.echo", {"text": "hi"})).s is State.SUCCESS
        assert (await client.request("mt.echo", {"text": "again"})).s is State.SUCCESS
        refused = await client.request("mt.refuse", {})
        assert refused.p["code"] == "mt.refused"
        invalid = await client.request("mt.echo", {"wrong": 1})
        assert invalid.p["code"] == "invalid_payload"
    after = await samples(port)

    def delta(**labels: str) -> float:
        return value(after, "envelope_frames_total", **labels) - value(
            before, "envelope_frames_total", **labels
        )

    assert delta(type="mt.echo", state="s", code="") == 2
    assert delta(type="mt.refuse", state="f", code="mt.refused") == 1
    assert delta(type="mt.echo", state="f", code="invalid_payload") == 1
    count = "envelope_handler_duration_seconds_count"
    assert value(after, count, type="mt.echo") - value(before, count, type="mt.echo") == 3


async def test_unknown_types_and_unreadable_frames_share_fixed_labels(port: int) -> None:
    async with ws_client(port) as client:
        for n in range(5):
            reply = await client.request(f"mt.nothing{n}", {})
            assert reply.p["code"] == "unknown_type"
        await client.ws.send("{not json")
        bad = await client.receive()
        assert bad.t == "error" and bad.p["code"] == "bad_json"
    found = await samples(port)
    types = label_values(found, "envelope_frames_total", "type")
    assert not any(t.startswith("mt.nothing") for t in types)
    assert value(found, "envelope_frames_total", type="_unknown", state="f", code="unknown_type")
    assert value(found, "envelope_frames_total", type="_invalid", state="f", code="bad_json")


async def test_a_full_mailbox_is_counted_as_overload_refusals(port: int) -> None:
    before = await samples(port)
    async with ws_client(port) as client:
        nap = await client.send("mt.nap", {"seconds": 1.5})
        sent = [await client.send("mt.echo", {"text": str(n)}) for n in range(12)]
        replies = [await client.until_terminal(i) for i in [nap, *sent]]
    overloaded = sum(1 for reply in replies if reply.p and reply.p.get("code") == "overloaded")
    assert overloaded >= 1  # a mailbox of 4 behind a 1.5 s nap
    after = await samples(port)
    refusals = "envelope_overload_refusals_total"
    assert value(after, refusals) - value(before, refusals) == overloaded
    posted = "envelope_mailbox_depth_count"
    assert value(after, posted) - value(before, posted) == 13 - overloaded
    # Frames queued behind the nap saw a mailbox that was not empty.
    deep = "envelope_mailbox_depth_bucket"
    assert value(after, deep, le="0.0") - value(before, deep, le="0.0") < 13 - overloaded


async def until_gauges(port: int, connections: float, subscribers: float) -> None:
    """Poll the scrape until the gauges read as given (a closed socket is counted out
    when the server has seen it go)."""
    for _ in range(100):
        found = await samples(port)
        if (
            value(found, "envelope_connections_open") == connections
            and value(found, "envelope_topic_subscribers") == subscribers
        ):
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"gauges never read {connections}, {subscribers}")


async def test_connections_and_subscribers_are_gauges_of_now(port: int) -> None:
    await until_gauges(port, 0, 0)  # the other tests' connections are gone
    async with ws_client(port) as listener, ws_client(port) as speaker:
        reply = await listener.request("topic.subscribe", {"topic": "mt.open.lobby"})
        assert reply.s is State.SUCCESS
        found = await samples(port)
        assert value(found, "envelope_connections_open") == 2
        assert value(found, "envelope_topic_subscribers") == 1
        before = value(found, "envelope_topic_deliveries_total")
        await speaker.request("mt.shout", {"topic": "mt.open.lobby", "text": "hello"})
        push = await listener.receive()
        assert push.t == "mt.echo" and push.s is None
        found = await samples(port)
        # The push counts; the speaker's own `s` reply, not a push, does not.
        assert value(found, "envelope_topic_deliveries_total") - before == 1

    await until_gauges(port, 0, 0)


async def test_deferred_jobs_are_timed_where_they_run(port: int) -> None:
    async with ws_client(port) as client:
        reply = await client.request("dtest.add", {"a": 1, "b": 2, "steps": 0})
        assert reply.s is State.SUCCESS
    found = await samples(port)
    # The thread backend runs jobs in this process; its queue label is empty.
    assert value(found, "envelope_deferred_queue_wait_seconds_count", type="dtest.add", queue="")
    runs = "envelope_deferred_run_seconds_count"
    assert value(found, runs, type="dtest.add", queue="", outcome="s") >= 1
    assert value(found, "envelope_frames_total", type="dtest.add", state="q", code="") >= 1


async def test_slow_requests_carry_their_i_as_an_exemplar_in_openmetrics(port: int) -> None:
    async with ws_client(port) as client:
        await client.request("mt.nap", {"seconds": 0.2}, i="slow-one")
    text = await anyio.to_thread.run_sync(scrape, port, "application/openmetrics-text")
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("envelope_handler_duration_seconds_bucket{") and 'type="mt.nap"' in line
    ]
    assert any('# {i="slow-one"}' in line for line in lines)
    plain = await anyio.to_thread.run_sync(scrape, port)
    assert "slow-one" not in plain  # the text format has no exemplars


# -- daphne and an RQ worker, one multi-process directory ----------------------------


async def test_a_workers_job_times_reach_the_servers_scrape(redis_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    with deferred_run(redis_url, tmp_path) as env:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
        with (
            running_worker(env, tmp_path / "worker.log"),
            asgi_server(ASGI_APP, SETTINGS, **env) as server_port,
        ):
            async with ws_client(server_port) as client:
                for n in range(2):  # two jobs: two work horses of the forking worker
                    reply = await client.request("dtest.add", {"a": n, "b": 3, "steps": 0})
                    assert reply.s is State.SUCCESS
                assert (await client.request("mt.echo", {"text": "x"})).s is State.SUCCESS
                queue = env["ENVELOPE_TEST_QUEUE"]

                async def job_seen() -> Samples | None:
                    found = await samples(server_port)
                    runs = "envelope_deferred_run_seconds_count"
                    return (
                        found
                        if value(found, runs, type="dtest.add", queue=queue, outcome="s") == 2
                        else None
                    )

                found = None
                for _ in range(100):
                    found = await job_seen()
                    if found:
                        break
                    await anyio.sleep(0.1)
                assert found, "the worker's job never reached the scrape"
                wait = "envelope_deferred_queue_wait_seconds_count"
                assert value(found, wait, type="dtest.add", queue=queue) == 2
                # The server's own metrics, from its file, in the same scrape.
                assert (
                    value(found, "envelope_frames_total", type="mt.echo", state="s", code="") == 1
                )
                assert value(found, "envelope_connections_open") == 1
    # One set of files per process, daphne's and the worker's: its horses wrote into its own.
    assert len([path for path in shared.iterdir() if path.name.startswith("histogram_")]) == 2
    # daphne stopped: it marked itself dead, so no live gauge of it is left.
    assert not any(path.name.startswith("gauge_livesum_") for path in shared.iterdir())
