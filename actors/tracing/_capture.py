"""`capture_trace()`: the trace events logged inside a block, for tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog


class _Capture:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def __call__(self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> Any:
        self.entries.append(dict(event_dict))
        raise structlog.DropEvent


@contextlib.contextmanager
def capture_trace() -> Iterator[list[dict[str, Any]]]:
    """Capture the structlog events logged inside the block as dicts, printing nothing.

        with capture_trace() as events:
            reply = await client.request("chat.send", {...})
        handled = [e for e in events if e["event"] == "envelope.handled"]
        assert handled[0]["i"] == reply.i

    Each dict has the event's keys plus what is bound in contextvars (`i`, `t` while
    an envelope is handled) and `level`. The configured level still applies: at the
    library's default (INFO) DEBUG stage events are not captured. Unlike
    `structlog.testing.capture_logs`, it keeps the contextvars merge, and it works with
    loggers bound before the block (the processor list is changed in place, and
    `info_writer` sees that and goes through structlog).
    """
    processors = structlog.get_config()["processors"]
    saved = list(processors)
    capture = _Capture()
    processors[:] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        capture,
    ]
    structlog.configure(processors=processors)
    try:
        yield capture.entries
    finally:
        processors[:] = saved
        structlog.configure(processors=processors)
