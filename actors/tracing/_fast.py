"""The writer of the one event logged per envelope, `envelope.handled`: through structlog,
or - while structlog runs the library's own chain - straight through its processors.

Through structlog an event costs its call machinery (the level method, the keywords'
dict, the context copy, the processor loop, handing the result to the output logger),
together more than the work itself; at one event per envelope that is a measurable part
of a busy server's throughput. So while the configured chain is the one
`default_processors` makes (for JSON lines, or the trace log only), `info_writer` calls
those very processors itself, in order, and hands the line to the sink and the output
the chain ends in: the same bytes (`tests/actors/test_logging.py` compares them), for
about half the cost; the trace log may gather the event and render it with others.

It checks the chain on every event: when the list of processors was changed in place
(as `capture_trace` does), or the event carries `exc_info`, it goes through structlog.
Under any other configuration (the application's own) events go through structlog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import structlog

from actors.tracing._configure import (
    is_enabled,
    logger,
    render_json_line,
    rendered_nowhere,
)
from actors.tracing._processors import UTCTimeStamper, add_process
from actors.tracing._sink import TraceLogSink, json_line

Write = Callable[[dict[str, Any]], None]

_merge = structlog.contextvars.merge_contextvars
_add_log_level = structlog.processors.add_log_level
_format_exc_info = structlog.processors.format_exc_info


def info_writer(*, later: bool = False) -> Write:
    """`write(event_dict)`: the library's logger at INFO for an event logged very often,
    `event_dict` holding the event's context and keywords and its `event` name. Made
    once, called often: like a bound logger it keeps the configuration in force when it
    was made. `later=True`: a trace log may gather the line for up to its
    `flush_seconds` (as it does `envelope.handled`)."""
    if not is_enabled(logging.INFO):
        return _ignore
    log = logger.bind()

    def through_structlog(event_dict: dict[str, Any]) -> None:
        log.info(event_dict.pop("event"), **event_dict)

    config = structlog.get_config()
    return _direct(config["processors"], config["logger_factory"], through_structlog, later)


def _ignore(_event_dict: dict[str, Any]) -> None:
    return None


def _direct(processors: list[Any], factory: Any, fallback: Write, later: bool) -> Write:
    """The direct writer for the library's own chain, or `fallback` for any other."""
    chain = list(processors)
    if (
        len(chain) < 5
        or chain[0] is not _merge
        or chain[1] is not _add_log_level
        or not isinstance(chain[2], UTCTimeStamper)
        or chain[3] is not add_process
    ):
        return fallback
    stamp = chain[2]
    rest = chain[4:]
    sink = rest.pop(0) if isinstance(rest[0], TraceLogSink) else None
    if rest == [rendered_nowhere]:
        json_console = False
    elif rest == [_format_exc_info, render_json_line]:
        json_console = True
    else:
        return fallback  # the console renderer is for people, not for speed
    output = factory()
    later = later and sink is not None and sink.flush_seconds > 0
    # To the trace log only, and allowed to wait: gathered, rendered with others.
    gather = sink.gather if sink is not None and later and not json_console else None

    def write(event_dict: dict[str, Any]) -> None:
        if processors != chain or "exc_info" in event_dict:
            fallback(event_dict)  # changed in place (`capture_trace`), or a traceback
            return
        _merge(None, "info", event_dict)
        event_dict["level"] = "info"  # add_log_level, for the one level written here
        stamp(None, "info", event_dict)
        add_process(None, "info", event_dict)
        if gather is not None:
            gather(event_dict)
            return
        line = json_line(event_dict)
        if sink is not None:
            sink.add(line, later)
        if json_console:
            output.info(line[:-1].decode())

    return write
