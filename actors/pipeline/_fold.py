"""Folding the stages into one callable, once per consumer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from actors import stages
from actors.request import RequestContext

Stage = Callable[[RequestContext, Callable[[RequestContext], Awaitable[None]]], Awaitable[None]]
Chain = Callable[[RequestContext], Awaitable[None]]


async def _end(ctx: RequestContext) -> None:
    return None


def load_stages(pipeline: Iterable[str | Stage]) -> list[Stage]:
    loaded: list[Stage] = []
    for item in pipeline:
        if isinstance(item, str):
            try:
                item = import_string(item)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"ENVELOPE_PIPELINE: cannot import {item!r} ({exc})"
                ) from exc
        if not callable(item):
            raise ImproperlyConfigured(f"ENVELOPE_PIPELINE: {item!r} is not callable")
        loaded.append(item)
    _check_order(loaded)
    return loaded


def _check_order(loaded: Sequence[Any]) -> None:
    required = [stages.respond, stages.parse, stages.validate, stages.dispatch]
    positions = []
    for stage in required:
        if stage not in loaded:
            raise ImproperlyConfigured(
                f"ENVELOPE_PIPELINE lacks actors.stages.{stage.__name__}; it is required "
                "(extend the default pipeline rather than replacing it)"
            )
        positions.append(loaded.index(stage))
    if positions != sorted(positions):
        raise ImproperlyConfigured(
            "ENVELOPE_PIPELINE must keep respond, parse, validate, dispatch in that order"
        )


def link(stage: Stage, next: Chain) -> Chain:
    """`stage` bound to the rest of the chain, as a plain function: calling it returns the
    stage's coroutine directly, so a link costs no coroutine frame of its own (and a
    closure is cheaper to call than an object's `__call__`)."""

    def call(ctx: RequestContext) -> Awaitable[None]:
        return stage(ctx, next)

    call.__qualname__ = f"link({getattr(stage, '__qualname__', stage)!s})"
    return call
