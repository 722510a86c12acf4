"""`ThreadBackend`: deferred handlers in a bounded in-process thread pool.

The default when no Redis is configured (no `RQ_QUEUES`), and `ENVELOPE_DEFERRED =
"thread"`. Same states (`q`, `r`, `s`/`f`) and the same guarantees as the RQ backend,
but in the server's process: a handler's `timeout=` answers `f` / `timeout` when it
passes and rolls the transaction back when the handler ends (a thread cannot be killed),
and jobs still running when the process exits are lost.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

from actors._database import database_work
from actors.deferred._jobs import Resolved, execute, make_request, queued, resolved_for
from actors.deferred._lookup import import_dotted
from actors.publishing import PUSH, pushes_through, thread_sender
from actors.request import Queued, RequestContext
from actors.tracing import logger


class ActorOutbox:
    """A job's way back to its connection, on the actor's event loop: through the channel
    layer when the connection has an address (so that its on-commit pushes, sent that way
    too, keep their order with its replies), else straight into the actor's mailbox."""

    __slots__ = ("actor", "token", "via_layer")

    def __init__(self, actor: Any, token: Any) -> None:
        self.actor = actor
        self.token = token
        self.via_layer = actor.layer is not None and actor.address is not None

    def connection_gone(self) -> bool:
        return bool(self.actor.mailbox.statistics().closed)

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            anyio.from_thread.run(fn, *args, token=self.token)
        except RuntimeError:
            # The event loop has ended (server shut down): nobody is left to tell.
            logger.info("job.loop_gone", conn=self.actor.address)

    def to_connection(self, *texts: str) -> None:
        for text in texts:
            if self.via_layer:
                self._run(self.actor.layer.send, self.actor.address, {"type": PUSH, "text": text})
            else:
                self._run(self.actor.deliver, text)


class ThreadBackend:
    """Runs deferred requests in at most `workers` threads (`ENVELOPE_THREAD_WORKERS`)."""

    kind = "thread"

    def __init__(self, workers: int = 4) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="envelope-job")
        self._pending: set[Future[None]] = set()
        # Connection address -> its jobs queued or running, for the shutdown drain.
        self._by_address: Counter[str | None] = Counter()
        self._lock = threading.Lock()

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        future = self._pool.submit(fn, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def jobs_in_flight(self, address: str | None) -> int:
        with self._lock:
            return self._by_address[address]

    def _count(self, address: str | None, delta: int) -> None:
        with self._lock:
            self._by_address[address] += delta
            if self._by_address[address] <= 0:
                del self._by_address[address]

    @property
    def pending(self) -> int:
        """Jobs queued or running in the pool."""
        return len(self._pending)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every job submitted so far has ended; False on timeout."""
        _, not_done = wait(list(self._pending), timeout=timeout)
        return not not_done

    async def submit(
        self,
        ctx: RequestContext,
        *,
        target: Callable[..., Any] | None = None,
        queue: str | None = None,
    ) -> Queued:
        """Hand the request to the pool; returns at once, `Queued`."""
        req = make_request(ctx, target)
        resolved = resolved_for(ctx, target)
        outbox = ActorOutbox(ctx.actor, anyio.lowlevel.current_token())
        retries = ctx.spec.retries if target is None else 0
        self._count(req["conn"], 1)
        self._submit(self._work, req, outbox, resolved, retries)
        return queued(ctx, req, backend=self.kind, queue=None)

    def _work(
        self, req: dict[str, Any], outbox: ActorOutbox, resolved: Resolved, retries: int
    ) -> None:
        try:
            # On-commit pushes (actors.publishing._publish) run on the server's loop, like
            # the replies.
            with pushes_through(thread_sender(outbox.token)):
                ThreadBackend._attempts(req, outbox, resolved, retries)
        finally:
            self._count(req["conn"], -1)

    @staticmethod
    def _attempts(
        req: dict[str, Any], outbox: ActorOutbox, resolved: Resolved, retries: int
    ) -> None:
        for attempt in range(retries + 1):
            try:
                execute(
                    req,
                    outbox,
                    resolved=resolved,
                    last_attempt=attempt == retries,
                    watchdog=req.get("timeout"),
                )
                return
            except Exception as exc:
                if attempt == retries:  # execute() answers and logs its own failures
                    logger.error("job.crashed", i=req.get("i"), exc_info=exc)
                # else: logged as job.retrying by execute(); the next attempt runs now

    def enqueue_call(self, queue: str | None, fn: str | Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` in the pool, fire and forget (errors are logged)."""
        self._submit(_call_logged, fn, args)

    async def aenqueue_call(
        self, queue: str | None, fn: str | Callable[..., Any], *args: Any
    ) -> None:
        self.enqueue_call(queue, fn, *args)

    async def connection_closed(self, address: str | None) -> None:
        """Nothing to do: a job of this process sees its connection's mailbox closed."""
        return None

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


def _call_logged(fn: str | Callable[..., Any], args: tuple[Any, ...]) -> None:
    with database_work():
        try:
            func = import_dotted(fn) if isinstance(fn, str) else fn
            func(*args)
        except Exception as exc:
            logger.error("job.call_failed", fn=str(fn), exc_info=exc)
