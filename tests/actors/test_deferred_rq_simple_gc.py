"""The non-forking worker freezes what start-up made before its first job
(`ENVELOPE_WORKER_GC_FREEZE`, on by default): a real `EnvelopeSimpleWorker` process,
asked through a job."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from rq import Queue

from tests.actors.rq_support import SIMPLE, deferred_run, running_worker, wait_until

pytestmark = pytest.mark.slow


async def _freeze_count_seen_by_a_job(redis_url: str, tmp: Path, **extra: str) -> int:
    with (
        deferred_run(redis_url, tmp, **extra) as env,
        running_worker(env, tmp / "worker.log", *SIMPLE),
    ):
        client = redis.Redis.from_url(redis_url)
        try:
            job = Queue(env["ENVELOPE_TEST_QUEUE"], connection=client).enqueue(
                "gc.get_freeze_count"
            )
            await wait_until(lambda: job.get_status(refresh=True) == "finished")
            return int(job.return_value())
        finally:
            client.close()


async def test_start_up_objects_are_frozen_before_the_first_job(
    redis_url: str, tmp_path: Path
) -> None:
    # Django, the handlers and the libraries: tens of thousands of objects.
    assert await _freeze_count_seen_by_a_job(redis_url, tmp_path) > 10_000


async def test_nothing_is_frozen_with_the_setting_off(redis_url: str, tmp_path: Path) -> None:
    found = await _freeze_count_seen_by_a_job(
        redis_url, tmp_path, ENVELOPE_TEST_WORKER_GC_FREEZE="0"
    )
    assert found == 0
