"""Connection tracking: async signals at accept/close, Connection rows written by jobs
(here on the thread backend; tests/actors/test_deferred_rq.py does it on a real
rqworker), the update interval, and the admin page."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from django.contrib.auth.models import Group
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from actors import EnvelopeConsumer, EnvelopeSettings
from actors._tracking import record_activity, record_close, record_open
from actors.deferred import get_backend
from actors.models import Connection
from actors.signals import consumer_closed, consumer_connected
from actors.testing import EnvelopeCommunicator
from tests.actors.deferred_app import jobs
from tests.actors.rq_support import migrate, python_snippet
from tests.processes import UNREACHABLE_REDIS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def jobs_end_before_the_database_is_flushed() -> Iterator[None]:
    """The connection jobs run in the thread backend's pool after a socket closes; the
    test database (shared-cache in-memory SQLite) cannot be flushed under them."""
    yield
    assert get_backend(EnvelopeSettings(), "thread").wait_idle(timeout=10)


def _read(fn: Any) -> Any:
    # Shared-cache SQLite answers "table is locked" at once instead of waiting for a
    # writer in another thread: such a read is simply tried again.
    try:
        return fn()
    except OperationalError:
        return None


async def poll(fn: Any, timeout: float = 5.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = await anyio.to_thread.run_sync(_read, fn)
        if value:
            return value
        await anyio.sleep(0.05)
    raise TimeoutError("condition not met")


def tracked_app(**options: Any) -> Any:
    return EnvelopeConsumer.as_asgi(
        routers=[jobs],
        deferred="thread",
        connections_queue="connections",
        timestamp_queue="timestamps",
        **options,
    )


async def test_async_signals_fire_at_accept_and_at_close_with_the_code() -> None:
    calls: list[tuple[str, Any, Any]] = []

    async def connected(sender: Any, consumer: Any, user: Any, address: Any, **kw: Any) -> None:
        calls.append(("connected", address, None))

    async def closed(
        sender: Any, consumer: Any, user: Any, address: Any, code: Any, **kw: Any
    ) -> None:
        calls.append(("closed", address, code))

    def broken(**kw: Any) -> None:
        raise RuntimeError("a receiver that fails does not break the connection")

    consumer_connected.connect(connected, weak=False)
    consumer_connected.connect(broken, weak=False)
    consumer_closed.connect(closed, weak=False)
    try:
        client = EnvelopeCommunicator(EnvelopeConsumer.as_asgi(routers=[jobs]))
        connected_ok, _ = await client.connect()
        assert connected_ok
        address = (await client.request("dtest.address", {})).p["address"]
        assert calls == [("connected", address, None)]
        await client.disconnect(code=4002)
        assert calls == [("connected", address, None), ("closed", address, 4002)]
    finally:
        consumer_connected.disconnect(connected)
        consumer_connected.disconnect(broken)
        consumer_closed.disconnect(closed)


async def test_rows_follow_the_connection_and_signals_fire() -> None:
    client = EnvelopeCommunicator(tracked_app(connection_update_interval=0.3))
    await client.connect()
    address = (await client.request("dtest.address", {})).p["address"]
    row = await poll(lambda: Connection.objects.filter(channel_name=address, online=True).first())
    assert row.online_at is not None and row.offline_at is None and row.user_id is None
    assert row.last_action == row.online_at
    await anyio.sleep(0.4)
    await client.request("dtest.echo", {"text": "tick"})
    await poll(lambda: Connection.objects.get(pk=row.pk).last_action > row.online_at)
    await client.disconnect(code=4003)
    closed = await poll(
        lambda: Connection.objects.filter(pk=row.pk, online=False, close_code=4003).first()
    )
    assert closed.offline_at >= closed.online_at
    names = {f"created:{address}", f"closed:{address}"}
    await poll(lambda: Group.objects.filter(name__in=names).count() == 2)


async def test_the_update_interval_is_honoured() -> None:
    client = EnvelopeCommunicator(tracked_app(connection_update_interval=180))
    await client.connect()
    address = (await client.request("dtest.address", {})).p["address"]
    row = await poll(lambda: Connection.objects.filter(channel_name=address).first())
    for n in range(5):
        await client.request("dtest.echo", {"text": str(n)})
    await anyio.sleep(0.3)
    fresh = await poll(lambda: Connection.objects.get(pk=row.pk))
    assert fresh.last_action == row.online_at
    await client.disconnect()


def test_a_connect_job_running_after_the_close_job_leaves_the_row_offline() -> None:
    opened = timezone.now()
    closed = opened + dt.timedelta(seconds=1)
    record_close("specific.late!1", None, closed, 1001)
    record_open("specific.late!1", None, opened)
    row = Connection.objects.get(channel_name="specific.late!1")
    assert (row.online, row.online_at, row.offline_at, row.close_code) == (
        False,
        opened,
        closed,
        1001,
    )
    record_activity("specific.late!1", closed + dt.timedelta(seconds=5))
    assert Connection.objects.get(pk=row.pk).last_action is None


def test_activity_only_moves_last_action_forward() -> None:
    opened = timezone.now()
    record_open("specific.fwd!1", None, opened)
    record_activity("specific.fwd!1", opened + dt.timedelta(seconds=10))
    record_activity("specific.fwd!1", opened + dt.timedelta(seconds=5))  # arrives late
    row = Connection.objects.get(channel_name="specific.fwd!1")
    assert row.online and row.last_action == opened + dt.timedelta(seconds=10)


def test_admin_page_lists_connections(tmp_path: Path) -> None:
    env = {"ENVELOPE_TEST_DB": str(tmp_path / "admin.sqlite3"), "ENVELOPE_TEST_ADMIN": "1"}
    migrate(env)
    out = python_snippet(
        env,
        """
from django.contrib.auth.models import User
from django.test import Client
from django.db import OperationalError, connections, transaction
from django.utils import timezone
from actors.models import Connection

admin = User.objects.create_superuser("root", "root@example.com", "pw")
Connection.objects.create(user=admin, channel_name="specific.admin!42", online=True,
                          online_at=timezone.now(), close_code=None)
client = Client()
client.force_login(admin)
page = client.get("/admin/actors/connection/")
print(page.status_code, "specific.admin!42" in page.content.decode())
add = client.get("/admin/actors/connection/add/")
print(add.status_code)
""",
    )
    assert out.split()[-3:] == ["200", "True", "403"]


async def test_the_row_records_the_connections_user() -> None:
    from django.contrib.auth.models import User

    user = await anyio.to_thread.run_sync(lambda: User.objects.create_user("grace"))
    app = tracked_app()

    async def with_user(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "user": user}, receive, send)

    client = EnvelopeCommunicator(with_user)
    await client.connect()
    address = (await client.request("dtest.address", {})).p["address"]
    row = await poll(lambda: Connection.objects.filter(channel_name=address).first())
    assert row.user_id == user.pk
    await client.disconnect()
    await poll(lambda: not Connection.objects.get(pk=row.pk).online)


@pytest.mark.django_db(transaction=False)
def test_a_tracking_queue_missing_from_rq_queues_fails_at_start_up() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from handlers import Router

    with override_settings(RQ_QUEUES={"default": {"URL": UNREACHABLE_REDIS}}):
        with pytest.raises(ImproperlyConfigured, match="ENVELOPE_TIMESTAMP_QUEUE = 'ts'"):
            EnvelopeConsumer.as_asgi(routers=[Router("none")], timestamp_queue="ts")
        EnvelopeConsumer.as_asgi(routers=[Router("none")], timestamp_queue="default")
        EnvelopeConsumer.as_asgi(routers=[Router("none")], timestamp_queue="ts", deferred="thread")


@contextmanager
def connection_table_read_locked(seconds: float) -> Iterator[None]:
    """Another thread's connection reads the `Connection` table in a transaction held
    open `seconds`: shared-cache SQLite then refuses writers at once ("table is locked")."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Connection.objects.all())
                held.set()
                time.sleep(seconds)
        finally:
            held.set()
            connections.close_all()
            done.set()

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(5)
    try:
        yield
    finally:
        assert done.wait(5)


def _write_refused_now(address: str) -> bool:
    try:
        Connection.objects.filter(channel_name=address).update(close_code=None)
    except OperationalError:
        return True
    return False


def test_an_activity_update_waits_out_a_lock_held_by_another_connection() -> None:
    opened = timezone.now()
    record_open("specific.locked!1", None, opened)
    with connection_table_read_locked(0.15):
        assert _write_refused_now("specific.locked!1")  # the lock is real
        record_activity("specific.locked!1", opened + dt.timedelta(seconds=10))
    row = Connection.objects.get(channel_name="specific.locked!1")
    assert row.last_action == opened + dt.timedelta(seconds=10)


def test_an_activity_update_gives_up_on_a_lock_that_outlasts_its_attempts() -> None:
    opened = timezone.now()
    record_open("specific.stuck!1", None, opened)
    with connection_table_read_locked(2.0):
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            record_activity("specific.stuck!1", opened + dt.timedelta(seconds=10))
        # It paused 20 + 40 + 80 + 160 ms between its attempts, and no longer.
        assert 0.29 <= time.monotonic() - started < 1.5
    assert Connection.objects.get(channel_name="specific.stuck!1").last_action == opened
