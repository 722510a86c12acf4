"""`LayerOutbox`: a job's way back to its connection from an RQ worker process (the
channel layer), and the mark that a job was answered (`job.meta["envelope_answered"]`),
which keeps a recovered job (`answer_lost_job`) from being answered a second time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
from channels.layers import get_channel_layer
from rq.job import Job

from actors._settings import EnvelopeSettings
from actors.publishing import PUSH, PUSHES, direct_sender, run_sync
from actors.tracing import logger

#: Redis key marking a connection that has closed, so its jobs send nothing more.
GONE_KEY = "envelope:gone:{}"
ANSWERED = "envelope_answered"
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class LayerOutbox:
    """A job's way back to its connection, from a worker process: the channel layer.

    While Redis is away (a restart, a failover), an answer is retried with backoff for
    `ENVELOPE_ANSWER_RETRY_SECONDS` (the job waits); past that it is logged as lost
    under its `i` (`job.answer_lost`), never dropped silently.

    To a plain `RedisChannelLayer` a reply goes in one round trip from the job's thread
    (`actors.publishing.direct_sender`), on Redis connections kept by the process; to
    other layers through the layer's `send`, on the process's `WorkerLoop` when it has
    one (`EnvelopeSimpleWorker`).

    `deliver` records the job answered (`job.meta["envelope_answered"]`, which stops a
    second answer from `answer_lost_job`) with its last reply. When the layer's channel
    lives on the job's Redis, the check that the connection is not gone, the reply and
    that mark are one script: one round trip, and no crash between the reply and the
    mark. Otherwise they are three, in that order.
    """

    def __init__(
        self,
        address: str | None,
        connection: Any,
        settings: EnvelopeSettings,
        job: Job | None = None,
    ) -> None:
        self.address = address
        self.redis = connection
        self.job = job
        self.layer = get_channel_layer()
        self.via_layer = self.layer is not None
        self.patience = settings.answer_retry_seconds
        self.direct = direct_sender(self.layer, settings.layer_timeout)
        self._shared: bool | None = None  # the layer's channel on `connection`'s Redis?
        if self.layer is None:
            logger.warning("job.no_channel_layer", conn=address)

    def connection_gone(self) -> bool:
        if self.address is None or self.layer is None:
            return True
        if self.redis is None:
            return False
        key = GONE_KEY.format(self.address)
        return bool(self._patiently("job.gone_check", lambda: self.redis.exists(key), False))

    def deliver(self, texts: tuple[str, ...], last: bool) -> bool:
        direct, address, job = self.direct, self.address, self.job
        if direct is None or address is None or self.redis is None:
            return self._deliver_in_steps(texts, last)
        if self._shared is None:
            self._shared = direct.same_redis(address, self.redis)
        if not self._shared:
            return self._deliver_in_steps(texts, last)
        message = _message(texts)
        mark = None
        if last and job is not None:
            mark = (job.key, "meta", job.serializer.dumps({**job.meta, ANSWERED: True}))
        gone = GONE_KEY.format(address)
        sent = self._patiently(
            "job.answer", lambda: direct.send(address, message, unless=gone, mark=mark), True
        )
        if sent and job is not None and mark is not None:
            job.meta[ANSWERED] = True  # as written: RQ's later saves of the job keep it
        return bool(sent)

    def _deliver_in_steps(self, texts: tuple[str, ...], last: bool) -> bool:
        if self.connection_gone():
            return False
        self.to_connection(*texts)
        if last:
            mark_answered(self.job)
        return True

    def to_connection(self, *texts: str) -> None:
        message = _message(texts)
        direct, address = self.direct, self.address
        if direct is not None and address is not None:  # one round trip, from this thread
            self._patiently("job.answer", lambda: direct.send(address, message), None)
        else:
            self._patiently(
                "job.answer", lambda: run_sync(self.layer.send, self.address, message), None
            )

    def _patiently(self, what: str, call: Callable[[], Any], lost: Any) -> Any:
        deadline = time.monotonic() + self.patience
        delay = 0.1
        while True:
            try:
                return call()
            except UNREACHABLE as exc:
                if time.monotonic() + delay > deadline:
                    logger.error(f"{what}_lost", conn=self.address, error=type(exc).__name__)
                    return lost
                logger.warning(f"{what}_waiting", conn=self.address, error=type(exc).__name__)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def _message(texts: tuple[str, ...]) -> dict[str, Any]:
    # Several replies (a held `r` and the terminal one) in one message: one send, one
    # delivery to the server, which posts them in order (`envelope.pushes`).
    if len(texts) > 1:
        return {"type": PUSHES, "texts": list(texts)}
    return {"type": PUSH, "text": texts[0]}


def mark_answered(job: Job | None) -> None:
    """Record `job` answered (on its own: the reply went without it)."""
    if job is not None:
        job.meta[ANSWERED] = True
        job.save_meta()
