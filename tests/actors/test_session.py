"""A socket follows its user's session: a password change, a deactivation, a deleted
session close it with 4002; deferred jobs refuse a user who is no longer active."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from actors import CLOSE_SESSION_ENDED, EnvelopeConsumer
from actors.deferred import ThreadBackend
from actors.testing import ActorHarness, EnvelopeCommunicator, WithUser, login_headers
from envelope import State
from tests.actors.deferred_app import jobs
from tests.actors.sample import router

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def app(**options: Any) -> Any:
    return AuthMiddlewareStack(
        EnvelopeConsumer.as_asgi(routers=[router], allow_unauthenticated=False, **options)
    )


async def logged_in(**options: Any) -> tuple[Any, EnvelopeCommunicator]:
    user = await sync_to_async(User.objects.create_user)("ada", password="old")
    client = EnvelopeCommunicator(app(**options), headers=await login_headers(user))
    assert (await client.connect())[0]
    assert (await client.request("t.private")).s is State.SUCCESS
    return user, client


async def assert_closed_for(client: EnvelopeCommunicator, reason: str) -> None:
    """The next thing the client gets is the `connection.closing` push, then the close."""
    closing = await client.receive_output(5)
    assert json.loads(closing["text"]) == {
        "t": "connection.closing",
        "p": {"code": CLOSE_SESSION_ENDED, "reason": reason},
    }
    assert await client.receive_output(5) == {"type": "websocket.close", "code": 4002}


def change_password(pk: int) -> None:
    user = User.objects.get(pk=pk)
    user.set_password("new")
    user.save()


def deactivate(pk: int) -> None:
    user = User.objects.get(pk=pk)
    user.is_active = False
    user.save()


def delete(pk: int) -> None:
    User.objects.get(pk=pk).delete()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(change_password, "session_invalid", id="password changed"),
        pytest.param(deactivate, "user_inactive", id="deactivated"),
        pytest.param(delete, "user_inactive", id="deleted"),
    ],
)
async def test_a_change_saved_elsewhere_closes_the_idle_socket_with_4002(
    change: Callable[[int], None], reason: str
) -> None:
    # The default interval is a minute: what closes the idle socket is the signal.
    user, client = await logged_in()
    await sync_to_async(change)(user.pk)
    await assert_closed_for(client, reason)


def deactivate_behind_djangos_back(pk: int) -> None:
    User.objects.filter(pk=pk).update(is_active=False)  # no signal


def end_sessions(pk: int) -> None:
    Session.objects.all().delete()  # flushed elsewhere, or expired and cleared


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(deactivate_behind_djangos_back, "user_inactive", id="QuerySet.update"),
        pytest.param(end_sessions, "session_invalid", id="session deleted"),
    ],
)
async def test_a_change_no_signal_reports_closes_the_socket_at_its_next_check(
    change: Callable[[int], None], reason: str
) -> None:
    _, client = await logged_in(session_check_interval=0)  # a check before every frame
    user = await sync_to_async(User.objects.get)(username="ada")
    await sync_to_async(change)(user.pk)
    await client.send("t.private", i="after")
    await assert_closed_for(client, reason)  # and the frame was not handled


async def test_a_password_change_in_the_sockets_own_session_keeps_it_open() -> None:
    # Django's PasswordChangeView: save the user, then `update_session_auth_hash`.
    user, client = await logged_in()

    def change_in_own_session() -> None:
        change_password(user.pk)
        session = Session.objects.get()
        data = session.get_decoded()
        data[HASH_SESSION_KEY] = User.objects.get(pk=user.pk).get_session_auth_hash()
        Session.objects.save(session.session_key, data, session.expire_date)

    await sync_to_async(change_in_own_session)()
    # The signal made the next frame wait for a check: it passed.
    assert (await client.request("t.private", i="still")).s is State.SUCCESS
    await client.disconnect()


async def test_saving_other_fields_of_the_user_keeps_the_socket_open() -> None:
    user, client = await logged_in()

    def save_name() -> None:
        fresh = User.objects.get(pk=user.pk)
        fresh.first_name = "Ada"
        fresh.last_login = timezone.now()
        fresh.save()

    await sync_to_async(save_name)()
    assert (await client.request("t.private", i="still")).s is State.SUCCESS
    await client.disconnect()


async def test_without_a_session_the_user_must_still_be_active() -> None:
    user = await sync_to_async(User.objects.create_user)("bob", password="x")
    app = WithUser(EnvelopeConsumer.as_asgi(routers=[router], session_check_interval=0), user)
    client = EnvelopeCommunicator(app)
    assert (await client.connect())[0]
    assert (await client.request("t.private")).s is State.SUCCESS
    await sync_to_async(deactivate_behind_djangos_back)(user.pk)
    await client.send("t.private")
    await assert_closed_for(client, "user_inactive")


async def test_a_deferred_job_refuses_a_user_deactivated_since_the_socket_opened(
    backend: ThreadBackend,
) -> None:
    user = await sync_to_async(User.objects.create_user)("cy", password="x")
    async with ActorHarness([jobs], backend=backend, user=user) as client:
        assert (await client.request("dtest.mine", i="before")).p == {"username": "cy"}
        await sync_to_async(deactivate_behind_djangos_back)(user.pk)
        refused = await client.request("dtest.mine", i="after")
        assert (refused.s, refused.p["code"]) == (State.FAILED, "unauthenticated")
        states = [env.s for env in client.seen if env.i == "after" and env.s is not None]
        assert states == [State.QUEUED, State.RUNNING, State.FAILED]
