"""`TripsWorker`: `EnvelopeSimpleWorker` that counts its round trips to Redis.

Every request a redis-py connection of the process writes (a command, a pipeline, a
script) is one round trip; after each job starts, the worker writes the process's total
so far to `ENVELOPE_TEST_TRIPS` (one line per job), for the test to take differences.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from redis.connection import AbstractConnection

from actors.workers import EnvelopeSimpleWorker

_lock = threading.Lock()
_sent = [0]
_original = AbstractConnection.send_packed_command


def _counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    with _lock:
        _sent[0] += 1
    _original(self, command, check_health)


class TripsWorker(EnvelopeSimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        AbstractConnection.send_packed_command = _counted  # type: ignore[method-assign]
        super().__init__(*args, **kwargs)

    def execute_job(self, job: Any, queue: Any) -> None:
        with open(os.environ["ENVELOPE_TEST_TRIPS"], "a") as out:
            out.write(f"{_sent[0]}\n")
        super().execute_job(job, queue)
