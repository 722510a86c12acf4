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
from collections.abc import Callable, Sequence
from contextvars import ContextVar, copy_context
from typing import Any, NamedTuple

import structlog

from actors.tracing import _sink
from actors.tracing._configure import (
    is_enabled,
    logger,
    render_json_line,
    rendered_nowhere,
)
from actors.tracing._processors import UTCTimeStamper, add_process, bound_vars
from actors.tracing._sink import TraceLogSink, json_line
from actors.tracing._writer import handled_event

Write = Callable[[dict[str, Any]], None]
#: `write(conn, user, i, t, state, code, duration_us, stages_us)`: `envelope.handled`.
HANDLED_FIELDS = ("conn", "user", "i", "t", "state", "code", "duration_us", "stages_us")
WriteHandled = Callable[[Any, Any, Any, Any, Any, Any, Any, Any], None]

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


class _LibraryChain(NamedTuple):
    """What the library's own processor chain (`default_processors`) was made with."""

    stamp: UTCTimeStamper
    sink: TraceLogSink | None
    json_console: bool  # JSON lines to the console too, or the trace log only


def _library_chain(chain: list[Any]) -> _LibraryChain | None:
    """`chain` read as the library's own, or None for any other."""
    if (
        len(chain) < 5
        or chain[0] is not _merge
        or chain[1] is not _add_log_level
        or not isinstance(chain[2], UTCTimeStamper)
        or chain[3] is not add_process
    ):
        return None
    rest = chain[4:]
    sink = rest.pop(0) if isinstance(rest[0], TraceLogSink) else None
    if rest == [rendered_nowhere]:
        return _LibraryChain(chain[2], sink, False)
    if rest == [_format_exc_info, render_json_line]:
        return _LibraryChain(chain[2], sink, True)
    return None  # the console renderer is for people, not for speed


def _gathering(chain: list[Any]) -> tuple[UTCTimeStamper, TraceLogSink] | None:
    """`chain` read as the library's own to the trace log only, with a sink that gathers
    (`flush_seconds` > 0): its stamper and that sink, what `handled_writer` and
    `handled_recorder` hand events to; None for any other."""
    found = _library_chain(chain)
    if found is None or found.json_console or found.sink is None:
        return None
    return (found.stamp, found.sink) if found.sink.flush_seconds > 0 else None


def _direct(processors: list[Any], factory: Any, fallback: Write, later: bool) -> Write:
    """The direct writer for the library's own chain, or `fallback` for any other."""
    chain = list(processors)
    found = _library_chain(chain)
    if found is None:
        return fallback
    stamp, sink, json_console = found
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


def handled_writer() -> WriteHandled:
    """`write(conn, user, i, t, state, code, duration_us, stages_us)`: the
    `envelope.handled` event, at INFO, gathered by the trace log for up to its
    `flush_seconds` - what `info_writer(later=True)` writes for the event's dict, the same
    bytes.

    While structlog runs the library's chain to the trace log only (the production set-up
    `configure_logging(console=False)` makes), the event is built as one dict, in the
    order the chain would give it, and handed to the sink; what `merge_contextvars` would
    add (what the application bound besides `conn`, `user`, `i`, `t`) is looked for only
    when the context holds a variable not seen to add nothing before. Otherwise this
    builds the dict and calls `info_writer`.
    """
    if not is_enabled(logging.INFO):
        return _ignore_handled
    general = info_writer(later=True)

    def through_dict(*fields: Any) -> None:
        general({**dict(zip(HANDLED_FIELDS, fields, strict=True)), "event": "envelope.handled"})

    processors = structlog.get_config()["processors"]
    chain = list(processors)
    gathering = _gathering(chain)
    if gathering is None:
        return through_dict
    stamp, sink = gathering
    now = stamp.now
    gather = sink.gather
    log = logger.bind()
    quiet = _QuietVars()

    def write(
        conn: Any, user: Any, i: Any, t: Any, state: Any, code: Any, us: Any, stages: Any
    ) -> None:
        if processors != chain:  # changed in place (`capture_trace`)
            through_dict(conn, user, i, t, state, code, us, stages)
            return
        event = handled_event(conn, user, i, t, state, code, us, stages, now(), _sink._PID)
        if not quiet.superset(copy_context()):  # something bound the line may carry
            bound = quiet.bound()
            if "exc_info" in bound:  # a traceback bound (!): structlog's chain formats it
                log.info("envelope.handled", **{key: event[key] for key in HANDLED_FIELDS})
                return
            # As the chain: what the event lacks after its own keys, then the level and
            # the time (written over a bound key of that name, in its place), the pid
            # unless one is bound.
            ends = (event.pop("level"), event.pop("timestamp"), event.pop("process"))
            for key, value in bound.items():
                event.setdefault(key, value)
            event["level"], event["timestamp"] = ends[:2]
            event.setdefault("process", ends[2])
        gather(event)

    return write


def _ignore_handled(*_args: Any) -> None:
    return None


#: `record(conn, user, i, t, state, code, marks, names, now) -> bool`: see `handled_recorder`.
RecordHandled = Callable[[Any, Any, Any, Any, Any, Any, Sequence[int], Sequence[str], int], bool]


def handled_recorder() -> RecordHandled | None:
    """`record(conn, user, i, t, state, code, marks, names, now)`: `envelope.handled`
    handed to the trace log as a record (`TraceLogSink.gather_handled`), from the timed
    chain's `marks` and stage `names` and the `perf_counter_ns` reading `now`; the line -
    the same bytes `handled_writer` writes - is made from it when the trace log is
    written, by its writer process when it has one. The cheapest way to log an envelope:
    a tuple. `marks` is kept as it is (the timed chain's list of the request, which
    nothing writes after its answer), and `state` must be a `State`.

    None when the configuration cannot take records: anything but the library's chain to
    the trace log only, gathered. `record` answers False, taking nothing, when the chain
    was changed in place (`capture_trace`) or the context binds something the line must
    carry besides `conn`, `user`, `i` and `t`: the caller writes the event with
    `handled_writer` then.
    """
    if not is_enabled(logging.INFO):
        return None
    processors = structlog.get_config()["processors"]
    chain = list(processors)
    gathering = _gathering(chain)
    if gathering is None:
        return None
    gather = gathering[1].gather_handled
    quiet = _QuietVars()

    def record(
        conn: Any,
        user: Any,
        i: Any,
        t: Any,
        state: Any,
        code: Any,
        marks: Sequence[int],
        names: Sequence[str],
        now: int,
    ) -> bool:
        if processors != chain:
            return False
        if not quiet.superset(copy_context()) and not quiet.OWN.issuperset(quiet.bound()):
            return False  # something bound that the line carries
        # A State's value: looking the member up would hash it in Python (Enum.__hash__).
        gather((conn, user, i, t, state._value_, code, marks, names, now))
        return True

    return record


class _QuietVars:
    """Context variables that add nothing to an `envelope.handled` line: the ones
    `bind_contextvars` sets for its own keys (`conn`, `user`, `i`, `t`, which the event
    carries itself), and variables that are not structlog's. Checking that a context
    holds only these (`superset`, in C) costs a quarter of `merge_contextvars`' loop.

    Which variables are structlog's is told by their name, with the prefix taken from
    a variable `bind_contextvars` made; when that cannot be told, only the four are
    known, and every other context takes the slow path, which is always right: it asks
    structlog (`get_contextvars`).
    """

    LIMIT = 256  # variables remembered, at most (then forgotten, and learnt again)
    #: The keys the event carries itself.
    OWN = frozenset(("conn", "user", "i", "t"))

    def __init__(self) -> None:
        own = bound_vars(*sorted(self.OWN))
        self._own = frozenset(own.values())
        probe = own["conn"].name
        self._prefix = probe[: -len("conn")] if probe.endswith("conn") else None
        self._vars: set[ContextVar[Any]] = set(self._own)
        self.superset = self._vars.issuperset

    def bound(self) -> dict[str, Any]:
        """What `merge_contextvars` would add now, as structlog tells it; the variables
        of the context that are not structlog's are remembered as adding nothing."""
        prefix = self._prefix
        if prefix is not None:
            found = self._vars
            if len(found) > self.LIMIT:
                found.clear()
                found.update(self._own)
            found.update(var for var in copy_context() if not var.name.startswith(prefix))
        return structlog.contextvars.get_contextvars()
