"""Finding a job's handler on a worker, from the dotted name the server put in the job."""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from envelope import messages
from handlers import HandlerSpec, Router, default_router

#: (call(msg, ctx), the handler's spec or None for a target, the message model)
Resolved = tuple[Callable[[BaseModel, Any], Any], HandlerSpec | None, type[BaseModel]]

_cache: dict[tuple[str, str], Resolved] = {}


def dotted_name(fn: Callable[..., Any]) -> str:
    """`module:qualname` of a module-level function; `ValueError` for anything else."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(
            f"{fn!r} cannot run on a worker: a deferred handler or target= must be a "
            "module-level function, importable by its dotted name"
        )
    return f"{module}:{qualname}"


def import_dotted(name: str) -> Any:
    """`module:qualname` (as made by `dotted_name`) or `package.module.function`."""
    if ":" in name:
        module_name, _, qualname = name.partition(":")
    else:
        module_name, _, qualname = name.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _routers_near(fn: Callable[..., Any]) -> list[Router]:
    """The default router, and the routers visible from the handler's module (a `Router`
    global, or one in an imported module): where `@router.handler` must have found it."""
    found = [default_router]
    module = importlib.import_module(fn.__module__)
    for value in list(vars(module).values()):
        if isinstance(value, Router):
            found.append(value)
        elif isinstance(value, types.ModuleType):
            found.extend(v for v in list(vars(value).values()) if isinstance(v, Router))
    return found


def find_spec(fn: Callable[..., Any], t: str) -> HandlerSpec:
    for router in _routers_near(fn):
        spec = router.get(t)
        if spec is not None and spec.fn is fn:
            return spec
    raise LookupError(
        f"no router visible from {fn.__module__} registers {fn.__qualname__} for {t!r}; "
        "keep the Router in the handler's module (or import it there by name)"
    )


def resolve(req: dict[str, Any]) -> Resolved:
    """(call, spec or None, model) for a job request; cached per process."""
    key = (req["fn"], req["t"])
    hit = _cache.get(key)
    if hit is not None:
        return hit
    fn = import_dotted(req["fn"])
    if req.get("target"):
        model = messages.get(req["t"])
        if model is None:
            raise LookupError(f"no @message model named {req['t']!r} is imported on this worker")
        out: Resolved = (fn, None, model)
    else:
        spec = find_spec(fn, req["t"])
        out = (spec.call, spec, spec.model)
    _cache[key] = out
    return out
