"""Find the `EnvelopeConsumer`s an ASGI application serves, and at which paths.

Walks what Channels builds: `ProtocolTypeRouter` (its `websocket` entry), middleware
that wrap an inner app (`inner`, `application`, `app`), `URLRouter` routes (nested
ones too) down to the apps `EnvelopeConsumer.as_asgi()` returned.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from actors._config import ConsumerConfig

_WRAPPED = ("inner", "application", "app")


@dataclass(frozen=True, slots=True)
class ServedConsumer:
    path: str  # e.g. "/ws/"; patterns keep their placeholders ("/ws/<room>/")
    config: ConsumerConfig


def load_object(dotted: str) -> Any:
    """`"package.module:attribute"` (or `"package.module.attribute"`) -> the object."""
    module_name, sep, attribute = dotted.partition(":")
    if not sep:
        module_name, _, attribute = dotted.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{dotted!r}: give module:attribute, e.g. example.asgi:application")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def served_consumers(app: Any) -> list[ServedConsumer]:
    """Every `EnvelopeConsumer` reachable from `app`, with its websocket path."""
    found: list[ServedConsumer] = []
    _walk(app, "/", found, set())
    return found


def _walk(app: Any, prefix: str, found: list[ServedConsumer], seen: set[int]) -> None:
    if id(app) in seen:
        return
    seen.add(id(app))
    initkwargs = getattr(app, "consumer_initkwargs", None)
    if isinstance(initkwargs, dict) and isinstance(initkwargs.get("config"), ConsumerConfig):
        found.append(ServedConsumer(prefix, initkwargs["config"]))
        return
    mapping = getattr(app, "application_mapping", None)
    if isinstance(mapping, dict):
        if "websocket" in mapping:
            _walk(mapping["websocket"], prefix, found, seen)
        return
    routes = getattr(app, "routes", None)
    if isinstance(routes, list | tuple):
        for route in routes:
            _walk_route(route, prefix, found, seen)
        return
    for attribute in _WRAPPED:
        inner = getattr(app, attribute, None)
        if inner is not None and inner is not app:
            _walk(inner, prefix, found, seen)
            return


def _walk_route(route: Any, prefix: str, found: list[ServedConsumer], seen: set[int]) -> None:
    pattern = str(getattr(route, "pattern", "")).lstrip("^").rstrip("$")
    path = prefix + pattern
    callback = getattr(route, "callback", None)
    if callback is not None:
        _walk(callback, path, found, seen)
        return
    for nested in getattr(route, "url_patterns", ()) or ():
        _walk_route(nested, path, found, seen)
