"""One trace as a waterfall: rows on a shared time axis, for the console's panel.

Built from `timeline()` (the events carrying one `i`, from every process, in time
order). Times are whole µs from the trace's start: the first event, or the arrival of
the envelope when that came earlier (`envelope.handled` is logged when the envelope is
done, `duration_us` after it arrived).

Rows, in order of their start:

- `request`: the envelope on the server, arrival to `envelope.handled`;
- `stage`: each stage of `stages_us`, as consecutive bars from the arrival. The
  outermost stage (`respond`) is drawn last: its time is mostly what follows the
  innermost stage (the reply encoded and sent, a `concurrent=True` handler's run);
- `wait`: a deferred request's time in the queue, `job.queued` (or the job's
  `wait_us`) to the job's start;
- `job`: the job's run on the worker, to `job.finished` (open while it runs);
- `push`: a marker for each `push.*` event carrying the `i`;
- `event`: a marker for every other event (`job.queued`, `job.progress`, a handler's
  own log lines...).

States (`a`, `q`, `r`, `s`, `f`) are read from the events: `job.queued` is `q`,
`job.started` `r`, `job.finished` its `outcome`, `job.expired` `f`, and
`envelope.handled` its `state`; each state is listed once, when it was first seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Events only a process that serves websockets logs.
SERVER_EVENTS = frozenset(
    (
        "envelope.handled",
        "envelope.stage",
        "envelope.internal_error",
        "envelope.overloaded",
        "job.queued",
        "push.sent",
    )
)
#: Events of a job's run.
JOB_EVENTS = frozenset(("job.started", "job.progress", "job.finished", "job.expired"))
TERMINAL = frozenset(("s", "f"))
#: Keys the rows and the event list show on their own; the rest goes to `fields`.
_SHOWN = frozenset(("event", "i", "timestamp", "process", "level", "rel_ms", "source", "at_us"))


def _us(row: dict[str, Any]) -> int | None:
    rel = row.get("rel_ms")
    return None if rel is None else round(rel * 1000)


def _number(value: Any) -> int | None:
    return round(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def process_kinds(rows: Iterable[dict[str, Any]]) -> dict[Any, str | None]:
    """`server` or `worker` per process, in order of appearance: a worker runs jobs and
    logs no server event (a thread backend's jobs run in the server's process, which
    stays `server`); None for a process that logged neither kind of event."""
    kinds: dict[Any, str | None] = {}
    for row in rows:
        name, process = row.get("event"), row.get("process")
        if name in SERVER_EVENTS:
            kinds[process] = "server"
        elif name in JOB_EVENTS and kinds.get(process) != "server":
            kinds[process] = "worker"
        else:
            kinds.setdefault(process, None)
    return kinds


def _state_of(row: dict[str, Any]) -> str | None:
    name = row.get("event")
    if name == "job.queued":
        return "q"
    if name == "job.started":
        return "r"
    if name == "job.finished":
        return str(row["outcome"]) if row.get("outcome") else None
    if name == "job.expired":
        return "f"
    if name == "envelope.handled" and row.get("state"):
        return str(row["state"])
    return None


def _stage_rows(row: dict[str, Any], start: int, base: dict[str, Any]) -> list[dict[str, Any]]:
    stages = row.get("stages_us")
    if not isinstance(stages, dict) or not stages:
        return []
    names = list(stages)
    out = []
    at = start
    for name in [*names[1:], names[0]]:  # the outermost last: see the module docstring
        duration = _number(stages[name]) or 0
        out.append({**base, "kind": "stage", "label": name, "start_us": at})
        out[-1]["duration_us"] = duration
        at += duration
    return out


class _Builder:
    """Walks the events once, in time order, into `rows` and `states`.

    Rows are kept in groups (a request with its stages, the queue wait with the job's
    run...) sorted by the group's start, so that a request's stages stay under it."""

    def __init__(self, kinds: dict[Any, str | None]) -> None:
        self.kinds = kinds
        self.groups: list[list[dict[str, Any]]] = []
        self.states: list[dict[str, Any]] = []
        self.queued_at: int | None = None
        self.job: dict[str, Any] | None = None
        self.wait: dict[str, Any] | None = None
        self.waited: int | None = None

    def rows(self) -> list[dict[str, Any]]:
        # Stable: groups starting together keep the order of their events.
        ordered = sorted(self.groups, key=lambda group: min(r["start_us"] for r in group))
        return [row for group in ordered for row in group]

    def group(self, *rows: dict[str, Any]) -> None:
        self.groups.append(list(rows))

    def row(
        self, event: dict[str, Any], kind: str, label: str, start: int, duration: int | None
    ) -> dict[str, Any]:
        process = event.get("process")
        return {
            "kind": kind,
            "label": label,
            "start_us": start,
            "duration_us": duration,
            "process": process,
            "side": self.kinds.get(process),
        }

    def add(self, event: dict[str, Any]) -> None:
        at = event["at_us"]
        name = str(event.get("event"))
        state = _state_of(event)
        if state is not None and at is not None and all(s["state"] != state for s in self.states):
            self.states.append({"state": state, "at_us": at, "event": name})
        if at is None:
            return
        if name == "envelope.handled":
            self.handled(event, at)
        elif name == "job.started":
            self.started(event, at)
        elif name == "job.finished":
            self.finished(event, at)
        elif name.startswith("push."):
            target = event.get("topic") or event.get("to")
            label = f"{name} {event.get('t') or ''}".strip() + (f" → {target}" if target else "")
            self.group(self.row(event, "push", label, at, None))
        else:
            if name == "job.queued":
                self.queued_at = at
            label = name + (f" {state}" if state else "")
            self.group(self.row(event, "event", label, at, None))

    def handled(self, event: dict[str, Any], at: int) -> None:
        duration = _number(event.get("duration_us")) or 0
        start = at - duration
        state = event.get("state")
        label = f"{event.get('t') or '?'} handled" + (f" → {state}" if state else "")
        if event.get("code"):
            label += f" ({event['code']})"
        request = self.row(event, "request", label, start, duration)
        base = {"process": request["process"], "side": request["side"]}
        self.group(request, *_stage_rows(event, start, base))

    @staticmethod
    def job_label(event: dict[str, Any], outcome: str = "") -> str:
        code = f" ({event['code']})" if event.get("code") else ""
        label = f"job {event.get('t') or '?'}"
        return f"{label} → {outcome}{code}" if outcome else f"{label} (running)"

    def started(self, event: dict[str, Any], at: int) -> None:
        self.job = self.row(event, "job", self.job_label(event), at, None)
        self.job["open"] = True
        self.waited = _number(event.get("wait_us"))
        since = self.queued_at if self.waited is None else at - self.waited
        if since is None:
            self.wait = None
            self.group(self.job)
        else:
            self.wait = self.row(event, "wait", "queued (q → r)", since, max(0, at - since))
            self.wait.update(process=None, side="queue")
            self.group(self.wait, self.job)

    def finished(self, event: dict[str, Any], at: int) -> None:
        duration = _number(event.get("duration_us"))
        job = self.job
        if job is None:  # its start is before the part of the log that was read
            job = self.row(event, "job", "", at - (duration or 0), None)
            self.group(job)
        job["duration_us"] = at - job["start_us"] if duration is None else duration
        job["start_us"] = at - job["duration_us"]
        job["label"] = self.job_label(event, str(event.get("outcome") or "?"))
        job["open"] = False
        if self.job is not None and self.wait is not None:
            # The run is timed from a little before `job.started` is logged (the `r`
            # reply goes first): the wait ends where the run starts.
            if self.waited is not None:
                self.wait["start_us"] = job["start_us"] - self.waited
            self.wait["duration_us"] = max(0, job["start_us"] - self.wait["start_us"])
        self.job = None


def waterfall(i: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace of `i` (`timeline()`'s rows) as the view answers it; see the module."""
    kinds = process_kinds(rows)
    for row in rows:
        row["at_us"] = _us(row)
    # The envelope arrived `duration_us` before `envelope.handled` was logged.
    arrivals = [
        row["at_us"] - (_number(row.get("duration_us")) or 0)
        for row in rows
        if row["at_us"] is not None and row.get("event") == "envelope.handled"
    ]
    offset = min([0, *arrivals])
    built = _Builder(kinds)
    events = []
    for row in rows:
        if row["at_us"] is not None:
            row["at_us"] -= offset
        built.add(row)
        events.append(
            {
                "event": row.get("event"),
                "at_us": row["at_us"],
                "process": row.get("process"),
                "kind": kinds.get(row.get("process")),
                "state": _state_of(row),
                "fields": {k: v for k, v in row.items() if k not in _SHOWN},
            }
        )
    bars = built.rows()
    ends = [r["start_us"] + (r["duration_us"] or 0) for r in bars]
    return {
        "i": i,
        "t": next((row["t"] for row in rows if row.get("t")), None),
        # The request's own line too: `envelope.handled` may be written after the job's.
        "complete": any(s["state"] in TERMINAL for s in built.states)
        and any(row.get("event") == "envelope.handled" for row in rows),
        "state": built.states[-1]["state"] if built.states else None,
        "span_us": max([0, *ends]),
        "processes": [{"process": p, "kind": k} for p, k in kinds.items()],
        "states": built.states,
        "rows": bars,
        "events": events,
    }
