"""Trace logging: structlog, configured here only when the application has not done it."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

#: The library's logger; every event carries the envelope's `i` when there is one.
logger: Any = structlog.get_logger("envelope")


def default_processors(json: bool) -> list[Any]:
    """contextvars merge, level, ISO UTC timestamp, exception info, then a renderer."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if json else structlog.processors.ExceptionPrettyPrinter(),
        renderer,
    ]


def configure_logging(level: int | str = logging.INFO, *, json: bool | None = None) -> None:
    """Configure structlog for Envelope Router, unless the application already has.

    JSON lines when stderr is not a terminal (production, workers), readable
    console lines otherwise.
    """
    if structlog.is_configured():
        return
    if isinstance(level, str):
        level = logging.getLevelNamesMapping()[level.upper()]
    if json is None:
        json = not sys.stderr.isatty()
    structlog.configure(
        processors=default_processors(json),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
