"""Pushes made inside a transaction: held until it commits, then sent in order, batched.

Each push inside `transaction.atomic()` is registered with `on_commit` on its own (so a
rolled-back savepoint drops exactly its pushes, the way Django drops its callbacks), and
is also kept, in order, in the transaction's `TransactionPushes`. Their own `on_commit`
callback comes first (it is registered with the transaction's first push) and sends every
push that survived:

- a run of `BATCH_MIN` (3) or more *consecutive* pushes of one type to one target
  becomes one batch frame (see `batch_frame`);
- everything else goes out one by one, in the order it was pushed. Batching never moves
  a push past another one.

Survival: a push's own callback is referenced only by Django's list of pending callbacks;
when a savepoint rolls back, Django rebuilds that list without it and the callback is
freed (CPython frees it at once: it is in no reference cycle), so the outbox, holding
only a weak reference, sees it gone. The outbox is created by the transaction's first
push, so its callback runs before those of all its pushes, while the survivors are
still alive in Django's list. If the outbox's callback was rolled back, so were all the
pushes made while it was pending, and the next push starts a new outbox.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from pydantic import BaseModel

from actors.publishing._topics import PUSH, group_for
from actors.tracing import publish_spans
from envelope import encode, wire_name

#: Consecutive pushes of one type to one target from which they are sent as one batch.
BATCH_MIN = 3
#: The `t` of a batch frame.
BATCH_TYPE = "batch"

Send = Callable[[list[tuple[str, str, dict[str, Any]]]], None]


@dataclass(slots=True)
class Pending:
    """One push waiting for its transaction: to a topic (`kind="topic"`) or a connection."""

    kind: str
    target: str
    model: BaseModel
    i: str | None
    t: str = ""
    #: The OpenTelemetry span context active when it was pushed (its span links to it).
    origin: Any = None
    committed: bool = False
    alive: Callable[[], Any] = field(default=lambda: None, repr=False)

    def __post_init__(self) -> None:
        self.t = wire_name(self.model)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.target, self.t)


def batch_frame(t: str, items: list[Pending]) -> str:
    """``{"t": "batch", "i"?: ..., "p": {"t": <type>, "items": [{"i"?: ..., "p": {...}}]}}``.

    Every item keeps its own `i`; the batch itself carries an `i` only when all its items
    have the same one.
    """
    entries: list[dict[str, Any]] = []
    ids = set()
    for item in items:
        entry: dict[str, Any] = {"p": item.model}
        if item.i is not None:
            entry["i"] = item.i
        ids.add(item.i)
        entries.append(entry)
    common = next(iter(ids)) if len(ids) == 1 else None
    return encode(BATCH_TYPE, common, {"t": t, "items": entries})


def coalesce(items: list[Pending]) -> list[tuple[str, str, dict[str, Any]]]:
    """The channel-layer sends for `items`, in order: (kind, target, message)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    start = 0
    while start < len(items):
        end = start + 1
        key = items[start].key
        while end < len(items) and items[end].key == key:
            end += 1
        run = items[start:end]
        if len(run) >= BATCH_MIN:
            out.append((run[0].kind, run[0].target, _msg(batch_frame(run[0].t, run))))
        else:
            out.extend((p.kind, p.target, _msg(encode(p.t, p.i, p.model))) for p in run)
        start = end
    return out


def send_traced(send: Send, items: list[Pending]) -> None:
    """`send` the pushes `items` (coalesced), inside a span for each (OpenTelemetry)."""
    with publish_spans(
        (
            p.t,
            p.target if p.kind == "topic" else None,
            p.target if p.kind != "topic" else None,
            p.i,
            p.origin,
        )
        for p in items
    ):
        send(coalesce(items))


def _msg(text: str) -> dict[str, Any]:
    return {"type": PUSH, "text": text}


class TransactionPushes:
    """The pushes of one transaction, in push order."""

    __slots__ = ("__weakref__", "items", "send", "sent")

    def __init__(self, send: Send) -> None:
        self.items: list[Pending] = []
        self.send = send
        self.sent = False

    def flush(self) -> None:
        self.sent = True
        survivors = [p for p in self.items if p.committed or p.alive() is not None]
        self.items = []
        if survivors:
            send_traced(self.send, survivors)


_ATTR = "_envelope_outbox"


def hold_until_commit(pending: Pending, send: Send, using: str | None = None) -> None:
    """Keep `pending` for the current transaction of `using`, or send it now if none."""
    if pending.kind == "topic":
        group_for(pending.target)  # a bad topic name fails here, in the caller's code
    conn = transaction.get_connection(using)
    if not conn.in_atomic_block:
        send_traced(send, [pending])
        return
    ref: Callable[[], Any] | None = getattr(conn, _ATTR, None)
    outbox: TransactionPushes | None = getattr(ref() if ref is not None else None, "outbox", None)
    if outbox is None or outbox.sent:
        outbox = TransactionPushes(send)
        flush = _flush_of(outbox)
        transaction.on_commit(flush, using=using, robust=True)
        setattr(conn, _ATTR, weakref.ref(flush))

    def committed() -> None:
        pending.committed = True

    pending.alive = weakref.ref(committed)
    transaction.on_commit(committed, using=using)
    outbox.items.append(pending)


def _flush_of(outbox: TransactionPushes) -> Callable[[], None]:
    # A plain function (Django logs a robust callback's failure by its __qualname__),
    # referenced only by Django's list of callbacks, so that it dies with it.
    def flush_pushes() -> None:
        outbox.flush()

    flush_pushes.outbox = outbox  # type: ignore[attr-defined]
    return flush_pushes
