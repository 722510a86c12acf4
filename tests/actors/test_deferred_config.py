"""Choosing the deferred backend, and the start-up checks of its configuration."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from pydantic import BaseModel

from actors import ConsumerConfig, EnvelopeSettings
from actors._settings import current_settings
from actors.deferred import RQBackend, ThreadBackend, backend_kind
from envelope import message
from handlers import JobContext, Router
from tests.actors.deferred_app import QUEUE, Add, jobs
from tests.processes import UNREACHABLE_REDIS

QUEUES = {QUEUE: {"URL": UNREACHABLE_REDIS}}
REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


def test_without_rq_queues_the_thread_backend_is_chosen() -> None:
    assert backend_kind(EnvelopeSettings()) == "thread"
    assert isinstance(ConsumerConfig.build([jobs]).backend, ThreadBackend)


@override_settings(RQ_QUEUES=QUEUES, CHANNEL_LAYERS=REDIS_LAYER)
def test_with_rq_queues_rq_is_chosen_unless_thread_is_asked_for() -> None:
    assert backend_kind(EnvelopeSettings()) == "rq"
    assert isinstance(ConsumerConfig.build([jobs]).backend, RQBackend)
    assert isinstance(ConsumerConfig.build([jobs], deferred="thread").backend, ThreadBackend)


def test_rq_without_rq_queues_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="RQ_QUEUES"):
        ConsumerConfig.build([jobs], deferred="rq")


@override_settings(RQ_QUEUES={"default": {"URL": UNREACHABLE_REDIS}})
def test_a_queue_missing_from_rq_queues_names_the_handler_and_the_queue() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        ConsumerConfig.build([jobs], deferred="rq")
    text = str(caught.value)
    assert "tests.actors.deferred_app." in text and repr(QUEUE) in text
    assert "RQ_QUEUES (configured: default)" in text


@message("dtest.cfg.noop")
class Noop(BaseModel):
    pass


only_default = Router("only-default")


@only_default.handler
def noop(msg: Noop, ctx: JobContext) -> None:
    return None


@override_settings(RQ_QUEUES={"default": {"URL": UNREACHABLE_REDIS}}, CHANNEL_LAYERS=REDIS_LAYER)
def test_a_handler_without_queue_uses_default() -> None:
    assert isinstance(ConsumerConfig.build([only_default], deferred="rq").backend, RQBackend)


def test_thread_workers_must_be_positive() -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_THREAD_WORKERS"):
        EnvelopeSettings.from_django(thread_workers=0)


def test_update_interval_must_be_positive() -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_CONNECTION_UPDATE_INTERVAL"):
        EnvelopeSettings.from_django(connection_update_interval=0)


@pytest.mark.parametrize(
    "hold", [-0.1, 1.5, "0.05", None], ids=["negative", "over_1s", "str", "none"]
)
def test_running_hold_must_be_seconds_from_0_to_1(hold: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_RUNNING_HOLD"):
        EnvelopeSettings.from_django(running_hold=hold)


@pytest.mark.parametrize("freeze", [1, "yes", None], ids=["int", "str", "none"])
def test_worker_gc_freeze_must_be_true_or_false(freeze: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="ENVELOPE_WORKER_GC_FREEZE"):
        EnvelopeSettings.from_django(worker_gc_freeze=freeze)


def test_the_settings_read_once_per_job_follow_a_changed_setting() -> None:
    # `perform` reads them for every job: once per process, again after a change.
    first = current_settings()
    assert current_settings() is first
    with override_settings(ENVELOPE_RUNNING_HOLD=0.2):
        assert current_settings().running_hold == 0.2
    assert current_settings().running_hold == first.running_hold


def test_a_local_function_cannot_be_sent_to_a_worker() -> None:
    from actors.deferred import dotted_name

    def local(msg: Add, ctx: JobContext) -> None: ...

    with pytest.raises(ValueError, match="module-level function"):
        dotted_name(local)


@override_settings(RQ_QUEUES=QUEUES)
def test_rq_with_an_in_memory_channel_layer_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="crosses processes"):
        ConsumerConfig.build([jobs])
    with override_settings(CHANNEL_LAYERS={}), pytest.raises(ImproperlyConfigured, match="missing"):
        ConsumerConfig.build([jobs])
