"""One trace over HTTP, for a development console's waterfall (never in production).

    # urls.py
    from actors.tracing.views import trace_view
    urlpatterns = [path("envelope/trace/<str:i>", trace_view)]

`GET envelope/trace/<i>` answers the events carrying trace id `i`, read from the trace
logs and laid out as a waterfall (`actors.tracing._waterfall`): rows on one time axis
(the request and its stages, the queue wait, the job's run, pushes and other events as
markers), the states `a`/`q`/`r`/`s`/`f` as they can be read from the events, and the
events themselves, in time order, each with its offset in µs, its process and whether
that process is a server or a worker.

It answers 404 (JSON, with a message saying why) unless `settings.DEBUG` is on: a trace
holds users' ids, connection addresses and payload sizes.

What it reads: `ENVELOPE_TRACE_LOG` (the environment variable, else the setting), plus
the files of `ENVELOPE_TRACE_VIEW_FILES` (a list of paths: workers' logs when they write
elsewhere); a file that does not exist is reported, not an error; with no file at all
it answers 404 saying so. Of each file only the
last `ENVELOPE_TRACE_VIEW_MAX_BYTES` (default 8 MiB) are read, so a long-running log costs
the same as a fresh one; older events of the trace are then not shown and the answer
says the file was cut (`files[].truncated`); one that cannot be read is reported
(`files[].error`). At most `MAX_EVENTS` events are answered.
An `i` with no event (yet: `envelope.handled` is written up to 0.1 s after the reply)
answers 200 with no rows and `complete: false`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from actors.tracing._configure import trace_log_path
from actors.tracing._viewer import read_logs, timeline
from actors.tracing._waterfall import waterfall

FILES_SETTING = "ENVELOPE_TRACE_VIEW_FILES"
MAX_BYTES_SETTING = "ENVELOPE_TRACE_VIEW_MAX_BYTES"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: Events answered at most (the first ones in time order); `omitted` counts the rest.
MAX_EVENTS = 1000
#: The wire's trace ids: at most 64 of these characters (see the protocol).
_TRACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _refused(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def trace_files() -> list[str]:
    """The files the view reads: `ENVELOPE_TRACE_LOG`, then `ENVELOPE_TRACE_VIEW_FILES`."""
    files = [trace_log_path() or "", *getattr(settings, FILES_SETTING, ())]
    return list(dict.fromkeys(str(f) for f in files if f))


def _tail(path: str, max_bytes: int, needle: bytes, report: dict[str, Any]) -> Iterator[bytes]:
    """The lines of the last `max_bytes` of `path` that contain `needle` (the first line,
    cut in the middle, is dropped); what was read goes into `report`."""
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            start = max(0, size - max_bytes)
            stream.seek(start)
            data = stream.read(max_bytes)
    except FileNotFoundError:
        report["missing"] = True
        return
    except OSError as exc:  # a directory, no permission...
        report["error"] = exc.strerror or type(exc).__name__
        return
    report.update(size=size, read_bytes=len(data), truncated=start > 0)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]
    # Only lines that can carry the `i` are parsed: a cheap filter before orjson.
    yield from (line for line in lines if needle in line)


@require_GET
def trace_view(request: HttpRequest, i: str) -> JsonResponse:
    """The waterfall of trace `i` as JSON; see the module docstring."""
    if not settings.DEBUG:
        return _refused(
            404, "not_found", "The trace view is served only when DEBUG is on (development)."
        )
    if not _TRACE_ID.fullmatch(i):
        return _refused(
            400, "bad_trace_id", "A trace id is 1 to 64 characters of A-Z a-z 0-9 . _ : -."
        )
    files = trace_files()
    if not files:
        return _refused(
            404,
            "no_trace_log",
            "No trace log to read: set ENVELOPE_TRACE_LOG (and ENVELOPE_TRACE_VIEW_FILES "
            "for workers that write their own).",
        )
    max_bytes = int(getattr(settings, MAX_BYTES_SETTING, DEFAULT_MAX_BYTES))
    # Every line of the trace holds the id as it is (its characters need no JSON escape).
    needle = i.encode()
    reports: list[dict[str, Any]] = []
    sources = []
    for path in files:
        report: dict[str, Any] = {"path": path, "missing": False, "truncated": False}
        reports.append(report)
        sources.append((path, _tail(path, max_bytes, needle, report)))
    logs = read_logs(sources)
    rows = timeline(logs, i)
    answer = waterfall(i, rows[:MAX_EVENTS])
    answer["omitted"] = max(0, len(rows) - MAX_EVENTS)
    answer["files"] = reports
    answer["max_bytes"] = max_bytes
    answer["malformed"] = logs.malformed
    return JsonResponse(answer)
