"""`envelope trace`: read JSON-lines trace logs of several processes, show one trace.

A trace is every event carrying one `i`: the server's `envelope.handled` (with its
per-stage timings), the worker's `job.started` / `job.progress` / `job.finished`,
pushes caused by it. Files of several processes (or one shared `ENVELOPE_TRACE_LOG`)
are merged by `timestamp`; lines that are not JSON objects are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

#: Keys shown in their own columns; the rest of an event goes to "details".
_COLUMNS = frozenset(("timestamp", "event", "i", "process", "level", "state", "duration_us"))
_QUIET = frozenset(("stages_us", "exception"))


@dataclass(slots=True)
class Event:
    """One parsed log line."""

    data: dict[str, Any]
    when: datetime | None
    order: int  # position among all lines read: keeps file order for equal timestamps
    source: str

    @property
    def i(self) -> str | None:
        value = self.data.get("i")
        return None if value is None else str(value)

    @property
    def name(self) -> str:
        return str(self.data.get("event", "?"))


@dataclass(slots=True)
class Logs:
    """Every event read, plus how many lines were skipped as malformed."""

    events: list[Event] = field(default_factory=list)
    malformed: int = 0
    lines: int = 0


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def read_logs(sources: Iterable[tuple[str, Iterable[bytes]]]) -> Logs:
    """Read JSON lines from each `(name, lines)` (a binary stream, or any iterable of
    lines); anything else is skipped and counted."""
    logs = Logs()
    for name, stream in sources:
        for raw in stream:
            line = raw.strip()
            if not line:
                continue
            logs.lines += 1
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                logs.malformed += 1
                continue
            if not isinstance(data, dict) or "event" not in data:
                logs.malformed += 1
                continue
            when = _parse_time(data.get("timestamp"))
            logs.events.append(Event(data, when, len(logs.events), name))
    return logs


def _sort_key(event: Event) -> tuple[int, float, int]:
    # Events without a timestamp go last, in the order they were read.
    if event.when is None:
        return (1, 0.0, event.order)
    return (0, event.when.timestamp(), event.order)


def timeline(logs: Logs, trace_id: str) -> list[dict[str, Any]]:
    """The events of one trace in time order, each with `rel_ms` from the first one."""
    matching = sorted((e for e in logs.events if e.i == trace_id), key=_sort_key)
    first = next((e.when for e in matching if e.when is not None), None)
    out = []
    for event in matching:
        row = dict(event.data)
        row["rel_ms"] = (
            round((event.when - first).total_seconds() * 1000, 3)
            if event.when is not None and first is not None
            else None
        )
        row["source"] = event.source
        out.append(row)
    return out


def _state(row: dict[str, Any]) -> str:
    for key in ("state", "outcome", "s"):
        if row.get(key) is not None:
            return str(row[key])
    return ""


def _details(row: dict[str, Any], shown: dict[str, Any]) -> str:
    """`key=value` for the event's other keys; a value already shown for the same key in
    an earlier event of the trace (the connection, the job id...) is not repeated."""
    parts = []
    for key, value in row.items():
        if key in _COLUMNS or key in _QUIET or key in ("rel_ms", "source") or value is None:
            continue
        if key in shown and shown[key] == value:
            continue
        shown[key] = value
        parts.append(f"{key}={value}")
    stages = row.get("stages_us")
    if isinstance(stages, dict) and stages:
        parts.append("stages " + " ".join(f"{k}={v}" for k, v in stages.items()))
    return " ".join(parts)


def _duration(row: dict[str, Any]) -> str:
    value = row.get("duration_us")
    if not isinstance(value, int | float):
        return ""
    return f"{value / 1000:.3f} ms" if value >= 1000 else f"{value:g} µs"


def format_timeline(trace_id: str, rows: list[dict[str, Any]]) -> str:
    """A readable table: relative time, process, event, state, duration, details."""
    processes = {row.get("process") for row in rows}
    span = max((r["rel_ms"] for r in rows if r["rel_ms"] is not None), default=0.0)
    head = (
        f"trace {trace_id}: {len(rows)} events from {len(processes)} "
        f"process{'es' if len(processes) != 1 else ''}, {span:.3f} ms from first to last"
    )
    lines = [
        head,
        f"{'+ms':>10}  {'process':>8}  {'event':22} {'state':5} {'duration':>11}  details",
    ]
    shown: dict[str, Any] = {}
    for row in rows:
        rel = "?" if row["rel_ms"] is None else f"{row['rel_ms']:.3f}"
        lines.append(
            f"{rel:>10}  {row.get('process', '?')!s:>8}  {row.get('event', '?')!s:22} "
            f"{_state(row):5} {_duration(row):>11}  {_details(row, shown)}".rstrip()
        )
        if row.get("exception"):
            lines.extend("            | " + ln for ln in str(row["exception"]).splitlines())
    return "\n".join(lines)


def slowest(logs: Logs, count: int) -> list[dict[str, Any]]:
    """The `count` slowest envelopes (`envelope.handled`), with the span of their trace.

    `span_ms` runs from the first to the last event with the same `i` in any process,
    so a deferred request counts its time on the worker too.
    """
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for event in logs.events:
        i, when = event.i, event.when
        if i is None or when is None:
            continue
        if i not in first or when < first[i]:
            first[i] = when
        if i not in last or when > last[i]:
            last[i] = when
    rows = []
    for event in logs.events:
        if event.name != "envelope.handled" or event.i is None:
            continue
        duration = event.data.get("duration_us")
        duration_ms = duration / 1000 if isinstance(duration, int | float) else 0.0
        i = event.i
        span_ms = (last[i] - first[i]).total_seconds() * 1000 if i in first else 0.0
        rows.append(
            {
                "i": i,
                "t": event.data.get("t"),
                "state": event.data.get("state"),
                "code": event.data.get("code"),
                "duration_ms": round(duration_ms, 3),
                "span_ms": round(max(span_ms, duration_ms), 3),
                "timestamp": event.data.get("timestamp"),
                "process": event.data.get("process"),
            }
        )
    rows.sort(key=lambda r: (r["span_ms"], r["duration_ms"]), reverse=True)
    return rows[:count]


def format_slowest(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'span ms':>10} {'handled ms':>10}  {'state':5} {'t':28} i"]
    for row in rows:
        state = row["state"] or ""
        if row["code"]:
            state = f"{state}/{row['code']}"
        lines.append(
            f"{row['span_ms']:>10.3f} {row['duration_ms']:>10.3f}  {state:5} "
            f"{row['t'] or '?':28} {row['i']}"
        )
    return "\n".join(lines)
