"""No queue flooding: deferred work is refused in the actor, before anything is enqueued,
for anonymous connections and past `ENVELOPE_MAX_DEFERRED` requests in flight."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from actors.deferred import ThreadBackend
from actors.testing import ActorHarness
from envelope import State
from tests.actors.deferred_app import jobs

pytestmark = pytest.mark.django_db(transaction=True)


def states(client: ActorHarness, i: str) -> list[str]:
    return [env.s.value for env in client.seen if env.i == i and env.s is not None]


async def test_an_anonymous_deferred_request_is_refused_without_a_job(
    backend: ThreadBackend,
) -> None:
    # The test settings let anonymous connections in (ENVELOPE_ALLOW_UNAUTHENTICATED):
    # that covers async handlers, not work for a worker.
    async with ActorHarness([jobs], backend=backend) as client:
        refused = await client.request("dtest.mine", i="anon")
        assert (refused.s, refused.p["code"]) == (State.FAILED, "unauthenticated")
        assert states(client, "anon") == ["f"]  # no `q`: nothing was enqueued
        assert backend.pending == 0
        # A deferred handler declared public=True still runs for anyone.
        assert (await client.request("dtest.whoami", i="public")).s is State.SUCCESS


async def test_deferred_requests_in_flight_are_bounded_per_connection(
    backend: ThreadBackend,
) -> None:
    async with ActorHarness([jobs], backend=backend, max_deferred=2) as client:
        for i in ("a", "b"):
            await client.send("dtest.sleep", {"seconds": 0.3}, i=i)
        over = await client.request("dtest.sleep", {"seconds": 0}, i="c")
        assert over.s is State.FAILED
        assert over.p == {
            "code": "too_many_jobs",
            "message": "Too many deferred requests of this connection are in progress; "
            "retry when one has finished.",
            "limit": 2,
        }
        assert states(client, "c") == ["f"]
        assert (await client.until_terminal("a", timeout=10)).s is State.SUCCESS
        # Its terminal reply freed its place.
        assert (await client.request("dtest.sleep", {"seconds": 0}, i="d")).s is State.SUCCESS
        assert (await client.until_terminal("b", timeout=10)).s is State.SUCCESS


async def test_reusing_a_trace_id_does_not_escape_the_bound(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend, max_deferred=2) as client:
        await client.send("dtest.sleep", {"seconds": 0.3}, i="same")
        await client.send("dtest.sleep", {"seconds": 0.3}, i="same")
        await client.send("dtest.sleep", {"seconds": 0}, i="same")
        terminal: list[Any] = []
        while len(terminal) < 3:
            env = await client.receive(timeout=10)
            if env.i == "same" and env.s is not None and env.s.terminal:
                terminal.append(env)
        codes = [env.p["code"] if env.s is State.FAILED else "ok" for env in terminal]
        assert codes == ["too_many_jobs", "ok", "ok"]


async def test_a_failed_job_frees_its_place_too(backend: ThreadBackend) -> None:
    async with ActorHarness([jobs], backend=backend, max_deferred=1) as client:
        for n in range(3):
            failed = await client.request("dtest.boom", i=f"boom-{n}")
            assert failed.p["code"] == "job_failed"


async def test_a_logged_in_users_deferred_request_runs(backend: ThreadBackend) -> None:
    user = await sync_to_async(User.objects.create_user)("dee", password="x")
    async with ActorHarness([jobs], backend=backend, user=user) as client:
        reply = await client.request("dtest.mine", i="mine")
        assert (reply.s, reply.p) == (State.SUCCESS, {"username": "dee"})
        assert states(client, "mine") == ["q", "r", "s"]
